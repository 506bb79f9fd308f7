"""The loader interface every dataset reader implements, and the registry of readers.

A reader is a :class:`Loader` subclass registered by name (:func:`register_loader`, or the
``regbench.loaders`` entry-point group of another package). Its ``Options`` pydantic model
validates the task's ``dataset.options``: an unknown or invalid option is an error naming
``dataset.options.<key>`` in the task YAML (docs/datasets.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from regbench.data.check import reference_problems
from regbench.errors import DataError, SpecError, UnknownNameError
from regbench.registry import Registry
from regbench.spec import DatasetSpec, TaskSpec, spec_error_from
from regbench.types import Sample


class NoLoaderOptions(BaseModel):
    """A reader without options: any ``dataset.options`` key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Loader(ABC):
    """Reads one dataset into samples.

    Subclasses set ``name`` (the decorator does), optionally ``Options`` (a pydantic model of
    ``dataset.options``, ``extra="forbid"``), and implement ``load``. ``self.options`` holds
    the validated options.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoLoaderOptions

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def load(self, spec: DatasetSpec, *, base: Path) -> Iterator[Sample]:
        """The samples of the dataset ``spec`` names, in its order (``base``: the task YAML's directory)."""

    @property
    def n_skipped(self) -> int:
        """Malformed records the last ``load`` skipped so far (readers of public formats skip; the
        canonical JSONL stops at the first bad line instead)."""
        return 0

    @property
    def skipped(self) -> list[str]:
        """The skipped records of the last ``load``, one ``file: line N: reason`` line each."""
        return []

    def finish(self) -> None:
        """Called once loading stops (also early, with ``--limit``): readers report their skips here."""

    def location(self, number: int) -> str | None:
        """Where the ``number``-th sample of the last ``load`` (from 1) came from, as ``file:line``;
        None when the reader cannot say (readers of public formats skip bad records themselves)."""
        return None


LOADERS: Registry[type[Loader]] = Registry(
    "dataset loader", entry_point_group="regbench.loaders", base=Loader, named=True
)

L = TypeVar("L", bound=type[Loader])


def register_loader(name: str) -> Any:
    """Class decorator: register a reader under ``name`` (also sets ``cls.name``)."""

    def decorate(cls: L) -> L:
        cls.name = name
        LOADERS.add(name, cls)
        return cls

    return decorate


def build_loader(task: TaskSpec) -> Loader:
    """The task's reader with its ``dataset.options`` validated; errors name the task file and field."""
    file = str(task.source or task.task)
    try:
        loader_type = LOADERS.get(task.dataset.loader)
    except UnknownNameError as exc:
        raise SpecError(file, "dataset.loader", str(exc)) from None
    try:
        options = loader_type.Options.model_validate(task.dataset.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden":
            takes = ", ".join(loader_type.Options.model_fields) or "no options"
            field = "dataset.options." + ".".join(str(p) for p in first["loc"])
            message = f"unknown option of the {task.dataset.loader} loader (it takes {takes})"
            raise SpecError(file, field, message) from None
        raise spec_error_from(exc, file=file, prefix="dataset.options") from None
    return loader_type(options)


@dataclass
class LoadedSplit:
    """What loading a task's dataset gives: its samples, and how many malformed records were skipped."""

    samples: list[Sample]
    n_skipped: int = 0
    """Records skipped as malformed (docs/datasets.md; with ``limit``: among the records read)."""
    skipped: list[str] = field(default_factory=list)
    """Each skipped record as ``file: line N: reason``."""


def load_samples(task: TaskSpec, *, limit: int | None = None) -> list[Sample]:
    """All samples of a task (the first ``limit`` of them), ids checked unique."""
    return load_split(task, limit=limit).samples


def load_split(task: TaskSpec, *, limit: int | None = None, validate: bool = False) -> LoadedSplit:
    """The samples of a task (the first ``limit`` of them), ids checked unique, and the skip count.

    ``validate``: a reference that lacks what the task's family scores against, or has a box out of
    0–1 or with corners swapped, is a :class:`DataError` (``run`` and ``score``; ``data check`` lists them).
    """
    base = task.source.parent if task.source else Path.cwd()
    loader = build_loader(task)
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    try:
        _read_into(samples, seen, loader, task, base, limit)
    finally:
        loader.finish()
    if not samples:
        raise DataError(f"task {task.task}: the dataset has no samples")
    if validate:
        _validate_references(samples, loader, task, base)
    return LoadedSplit(samples, loader.n_skipped, loader.skipped)


class SplitChunks:
    """A task's samples read in chunks of ``size`` (the first ``limit`` of them), for a run that never holds
    the whole split: each chunk is checked as :func:`load_split` checks the split (ids unique across the
    split, references with ``validate``), and the skip counts are final once the chunks are exhausted."""

    def __init__(self, task: TaskSpec, *, size: int, limit: int | None = None, validate: bool = False) -> None:
        self.task, self.size, self.limit, self.validate = task, max(1, size), limit, validate
        self.n_skipped = 0
        self.skipped: list[str] = []
        self.n_read = 0

    def __iter__(self) -> Iterator[list[Sample]]:
        task, base = self.task, self.task.source.parent if self.task.source else Path.cwd()
        loader = build_loader(task)
        seen: dict[str, int] = {}
        where = base / task.dataset.path if task.dataset.path else f"the {task.dataset.loader} dataset"
        chunk: list[Sample] = []
        try:
            for number, sample in enumerate(loader.load(task.dataset, base=base), start=1):
                if (first := seen.setdefault(sample.id, number)) != number:
                    raise DataError(
                        f"{where}: sample id {sample.id!r} appears twice (samples {first} and {number}; "
                        f"task {task.task})"
                    )
                chunk.append(sample)
                if len(chunk) >= self.size or (self.limit is not None and number >= self.limit):
                    yield self._checked(chunk, loader, base)
                    chunk = []
                    if self.limit is not None and number >= self.limit:
                        break
            if chunk or not self.n_read:
                yield self._checked(chunk, loader, base)
        finally:
            loader.finish()
            self.n_skipped, self.skipped = loader.n_skipped, loader.skipped

    def _checked(self, chunk: list[Sample], loader: Loader, base: Path) -> list[Sample]:
        if not chunk and not self.n_read:
            raise DataError(f"task {self.task.task}: the dataset has no samples")
        if self.validate:
            _validate_references(chunk, loader, self.task, base, start=self.n_read + 1)
        self.n_read += len(chunk)
        return chunk


def _validate_references(samples: list[Sample], loader: Loader, task: TaskSpec, base: Path, start: int = 1) -> None:
    for number, sample in enumerate(samples, start=start):
        problems = reference_problems(task.family, sample)
        if not problems:
            continue
        field, problem = problems[0]
        where = loader.location(number) or (
            str(base / task.dataset.path) if task.dataset.path else f"the {task.dataset.loader} dataset"
        )
        more = f" ({len(problems) - 1} more in this sample)" if len(problems) > 1 else ""
        raise DataError(
            f"{where}: field {field}: sample {sample.id!r}: {problem}{more}; task {task.task} "
            f"({task.family}) cannot score it (`regbench data check {task.task}` lists every problem)"
        )


def _read_into(
    samples: list[Sample], seen: dict[str, int], loader: Loader, task: TaskSpec, base: Path, limit: int | None
) -> None:
    for number, sample in enumerate(loader.load(task.dataset, base=base), start=1):
        if sample.id in seen:
            where = base / task.dataset.path if task.dataset.path else f"the {task.dataset.loader} dataset"
            raise DataError(
                f"{where}: sample id {sample.id!r} appears twice (samples {seen[sample.id]} and {number}; "
                f"task {task.task})"
            )
        seen[sample.id] = number
        samples.append(sample)
        if limit is not None and len(samples) >= limit:
            break
