"""The metric plugin interface: per-sample statistics first, aggregate scores last.

A plugin turns each (parsed output, sample) into a small JSON-serialisable ``stats``
record, and ``finalize`` turns a list of stats records into the aggregate scores. Since
the state is just "one stats record per sample", sharding, resuming and bootstrap
resampling are exact for every metric: the runner resamples stats and calls ``finalize``.

Plugins register by name with :func:`register_metric`, or from another package through the
``regbench.metrics`` entry-point group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, overload

import numpy as np
from pydantic import BaseModel, ConfigDict

from regbench.registry import Registry
from regbench.signature import Part, Signature
from regbench.types import Parsed, Sample, SampledAnswers

Stats = dict[str, Any]
Scale = Literal["fraction", "raw"]
"""How reports show a key: ``fraction``, a 0-1 value shown x100 in tables; ``raw``, as it is."""
Bounds = tuple[float | None, float | None]
"""The lowest and highest value a key can take (``None``: unbounded on that side)."""


@dataclass(frozen=True)
class KeyFacts:
    """What reports know about one metric key, read from its plugin class (:meth:`Metric.facts`)."""

    higher_is_better: bool = True
    scale: Scale = "fraction"
    """``fraction``: tables show the value x100; ``raw``: as it is (CIDEr-D, RadCliQ)."""
    bounds: Bounds = (0.0, 1.0)
    """The range of the values; the family radar averages keys bounded by exactly (0, 1)."""


class NoOptions(BaseModel):
    """A plugin without options."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Joint:
    """What a joint plugin (``Metric.joint``) sees besides its reading of the outputs, per sample."""

    scores: Sequence[Mapping[str, Any]]
    """Each sample's per-sample values from the task's other (not joint) plugins (``token_f1``, ...)."""
    sampled: Sequence[SampledAnswers | None]
    """Each sample's M answers under ``samples_per_question`` (``None``: not sampled, or its model call failed)."""


class MetricContext(BaseModel):
    """What a plugin may know about the task it scores (never the model or its outputs)."""

    model_config = ConfigDict(frozen=True)
    task: str = ""
    family: str = ""
    language: str = "en"
    modality: str | None = None
    labels: list[str] | None = None
    samples_per_question: int | None = None
    source: str | None = None
    """The task YAML's path, when it came from a file (judged metrics find their judge and prompt
    files relative to it)."""


class Metric(ABC):
    """Base class of metric plugins.

    Subclasses set ``name``, ``keys`` (metric key -> higher is better), optionally an
    ``Options`` pydantic model, and implement ``stats``. The facts reports need about the
    keys live on the class too: ``scale`` and ``bounds`` of every key, and ``key_scale`` /
    ``key_bounds`` for the keys that differ (nlg's CIDEr-D is ``raw``, 0-10). The default ``finalize`` is the
    per-sample mean of every key in ``sample_scores`` (samples where a key is ``None``,
    e.g. ``closed_accuracy`` on an open question, are left out of that key's mean).
    Corpus-level metrics (BLEU, CIDEr) override ``finalize`` and set
    ``aggregation = "corpus"``.
    """

    name: ClassVar[str]
    keys: ClassVar[dict[str, bool]]
    Options: ClassVar[type[BaseModel]] = NoOptions
    aggregation: ClassVar[Literal["mean", "corpus"]] = "mean"
    bootstrap_trials: ClassVar[int] = 1000
    """Bootstrap resamples for the 95% interval (corpus metrics may use fewer: each costs a finalize)."""
    scale: ClassVar[Scale] = "fraction"
    """How reports show every key (``key_scale`` overrides it per key)."""
    bounds: ClassVar[Bounds] = (0.0, 1.0)
    """The range of every key's values (``key_bounds`` overrides it per key)."""
    key_scale: ClassVar[Mapping[str, Scale]] = {}
    key_bounds: ClassVar[Mapping[str, Bounds]] = {}
    count_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys whose aggregate is a count, written to results.json as an integer (``judge_parse_failures``)."""
    reads: ClassVar[str | None] = None
    """The box format this plugin reads model outputs with, when it needs its own reading (the runner
    reads each output once per distinct reading, :func:`regbench.parsing.readings.read_outputs`), or
    None for the task's parse. Plugins see only what a parser produced; the one exception is
    ``Parsed.raw``, read where a text rule is defined on the raw output: ``region_to_text`` and
    ``vqa`` in ``mode: medrega`` (MedRegA's released token rules) and ``classification``'s
    multi-label split (its line breaks)."""

    joint: ClassVar[bool] = False
    """Whether the plugin's stats need more than one output and its sample: the other plugins'
    per-sample values or the question's sampled answers. Such a plugin is scored after the others,
    through :meth:`stats_joint`."""

    def __init__(self, options: BaseModel | None = None, context: MetricContext | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.context = context or MetricContext()

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        """Get ready before any model is asked anything. Neural plugins load their models here, so a
        wrong checkpoint or tokenizer stops the run at its start, not after the generation; the
        region plugins read the reference boxes of ``samples`` (the split that ``stats_batch`` will
        then see, in any subset or order) into columns."""

    def warm_up(self) -> None:
        """Start what takes long to get ready and needs no samples (a JVM), without waiting for it.
        Called for every task of a run before the first one starts, so it gets ready while other
        work goes on; a missing tool (no Java) is an error here, before any model is asked."""

    def waiting_for(self) -> str | None:
        """What scoring would wait for now, said to the user while it scores (None: nothing slow)."""
        return None

    # -- per sample -------------------------------------------------------------------
    @abstractmethod
    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        """Sufficient statistics of one sample (JSON-serialisable; no I/O, no randomness)."""

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        """Stats for many samples at once (neural metrics override this to batch)."""
        return [self.stats(parsed, sample) for parsed, sample in items]

    def requires(self) -> list[str]:
        """Per-sample keys of the task's other plugins this (joint) plugin reads; checked when the task is built."""
        return []

    def stats_joint(self, items: Sequence[tuple[Parsed, Sample]], joint: Joint) -> list[Stats]:
        """Stats of a joint plugin (``joint = True``), given what :class:`Joint` holds for each sample."""
        return self.stats_batch(items)

    def notes(self, stats: Sequence[Stats]) -> list[str]:
        """What the user should know about these stats' aggregate (a key withheld, a degenerate input),
        shown with the run's notes and kept in run.json."""
        return []

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        """The per-sample values shown in samples.jsonl (and averaged by the default finalize)."""
        return {key: stats.get(key) for key in self.output_keys()}

    def rejoin(self, stats: Sequence[Stats]) -> list[Stats]:
        """The stats of a split put back together from shards (``regbench merge``).

        Per-sample values are independent of the other samples for most metrics, so this is the
        identity; a plugin whose per-sample values depend on the whole split (CIDEr's document
        frequencies) recomputes them here, so merged shards equal an unsharded run.
        """
        return list(stats)

    # -- aggregate ----------------------------------------------------------------------
    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        """Aggregate scores over samples; a key with no applicable sample is left out."""
        return mean_of_sample_scores([self.sample_scores(s) for s in stats])

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray] | None:
        """``finalize`` of many bootstrap resamples at once, or ``None`` (then it is called per resample).

        ``weights[t, i]`` is how often resample ``t`` draws sample ``i``; each returned array holds
        one value per resample (NaN where that resample has no value for the key). Corpus
        metrics whose aggregate is built from per-sample sums override this.
        """
        return None

    # -- identity -----------------------------------------------------------------------
    def output_keys(self) -> dict[str, bool]:
        """The keys this configured plugin reports, each with whether higher is better."""
        return dict(self.keys)

    @classmethod
    def facts(cls, key: str) -> KeyFacts:
        """Direction, scale and bounds of one of the class's ``keys`` (a KeyError for another key)."""
        return KeyFacts(
            higher_is_better=cls.keys[key],
            scale=cls.key_scale.get(key, cls.scale),
            bounds=cls.key_bounds.get(key, cls.bounds),
        )

    def signature(self, key: str | None = None) -> Signature:
        """``key|plugin:NAME|option:value|...|regbench:VERSION``, from the resolved options.

        Plugins whose number depends on more than their options (a tokenizer the language
        chose, a checkpoint's hash) override this with their own parts, through
        :meth:`Signature.for_plugin`.
        """
        return Signature.for_plugin(self.name, key, self.option_parts())

    def option_parts(self) -> list[Part]:
        """Every resolved option as an ``(option, value)`` signature part, in the model's order."""
        return [(option, _compact(value)) for option, value in self.options.model_dump().items()]

    def close(self) -> None:
        """Release resources (JVMs, models). Called once after scoring."""


class StatsColumns(Sequence[Stats]):
    """Per-sample stats held as columns, as a vectorised plugin computes them; a ``Sequence`` of records.

    The plugin's ``finalize`` reads the columns (:meth:`column`); the records, plain dicts
    of Python numbers, are built once, when first asked for (the runner asks when it writes
    samples.jsonl). A key is left out of the records where its ``present`` mask is False.
    """

    def __init__(
        self, columns: Mapping[str, np.ndarray | list[Any]], present: Mapping[str, np.ndarray] | None = None
    ) -> None:
        self.columns = dict(columns)
        self.present = dict(present or {})
        self._size = len(next(iter(self.columns.values()))) if self.columns else 0
        self._records: list[Stats] | None = None

    @classmethod
    def concat(cls, parts: Sequence[StatsColumns]) -> StatsColumns:
        """The columns of consecutive chunks of a split as one (a run scores a split chunk by chunk)."""
        if len(parts) == 1:
            return parts[0]
        keys = list(parts[0].columns)
        masked = {key for part in parts for key in part.present}
        columns: dict[str, np.ndarray | list[Any]] = {}
        for key in keys:
            pieces = [part.columns[key] for part in parts]
            if all(isinstance(p, np.ndarray) for p in pieces):
                columns[key] = np.concatenate(pieces)  # type: ignore[arg-type]
            else:
                columns[key] = [v for p in pieces for v in (p.tolist() if isinstance(p, np.ndarray) else p)]
        present = {
            key: np.concatenate([p.present.get(key, np.ones(len(p), dtype=bool)) for p in parts]) for key in masked
        }
        return cls(columns, present)

    def column(self, key: str) -> np.ndarray:
        """The numbers of ``key`` as floats, NaN where a record has no value."""
        values = np.asarray(self.columns[key], dtype=np.float64)
        return np.where(self.present[key], values, np.nan) if key in self.present else values

    def records(self) -> list[Stats]:
        if self._records is None:
            keys = list(self.columns)
            values = [v.tolist() if isinstance(v, np.ndarray) else list(v) for v in self.columns.values()]
            records = [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
            for key, mask in self.present.items():
                for i in np.flatnonzero(~mask).tolist():
                    del records[i][key]
            self._records = records
        return self._records

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Stats: ...
    @overload
    def __getitem__(self, index: slice) -> list[Stats]: ...
    def __getitem__(self, index: int | slice) -> Stats | list[Stats]:
        return self.records()[index]

    def __iter__(self) -> Iterator[Stats]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:  # equal to any sequence of the same records
        return isinstance(other, Sequence) and self.records() == list(other)

    __hash__ = None  # type: ignore[assignment]


def _compact(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_compact(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_compact(v)}" for k, v in value.items())
    return str(value)


def weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Means of ``values`` columns (``(n, k)``, NaN = no value) under each row of ``weights`` (``(t, n)``)."""
    present = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(present, values, 0.0)) / (weights @ present)


def mean_of_sample_scores(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float]:
    """Per-key mean over rows, skipping ``None``/NaN; keys with no value are omitted."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


METRICS: Registry[type[Metric]] = Registry("metric", entry_point_group="regbench.metrics", base=Metric, named=True)

M = TypeVar("M", bound=type[Metric])


def register_metric(name: str) -> Any:
    """Class decorator: register a plugin under ``name`` (also sets ``cls.name``)."""

    def decorate(cls: M) -> M:
        cls.name = name
        METRICS.add(name, cls)
        return cls

    return decorate


def metric_facts(plugin: str | None, key: str) -> KeyFacts | None:
    """The facts of ``key`` from the class of the plugin that produced it (results.json ``plugins``),
    or ``None`` when this installation cannot say: no plugin named, a plugin that is not
    registered or fails to load, or a key the class does not declare."""
    if not plugin or plugin not in METRICS:
        return None
    try:
        cls = METRICS.get(plugin)
        facts = cls.facts(key)
    except Exception:  # a report must render even when a third-party plugin is broken
        return None
    return facts
