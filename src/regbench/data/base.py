"""The loader interface every dataset reader implements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from regbench.errors import DataError
from regbench.registry import Registry
from regbench.spec import DatasetSpec, TaskSpec
from regbench.types import Sample


class Loader(Protocol):
    """Reads a dataset into samples. ``base`` is the task YAML's directory."""

    def __call__(self, spec: DatasetSpec, *, base: Path) -> Iterator[Sample]: ...


LOADERS: Registry[Loader] = Registry("dataset loader")


def load_samples(task: TaskSpec, *, limit: int | None = None) -> list[Sample]:
    """All samples of a task (the first ``limit`` of them), ids checked unique."""
    base = task.source.parent if task.source else Path.cwd()
    loader = LOADERS.get(task.dataset.loader)
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for number, sample in enumerate(loader(task.dataset, base=base), start=1):
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
    if not samples:
        raise DataError(f"task {task.task}: the dataset has no samples")
    return samples
