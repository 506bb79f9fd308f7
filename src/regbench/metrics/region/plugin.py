"""``region_aligned``: one registered plugin, three metrics chosen by ``mode``.

Task YAMLs write ``{name: region_aligned, mode: medrega}``: the registered class,
:class:`RegionAligned`, builds the class of the mode (:class:`~regbench.metrics.region.standard.StandardRegion`,
:class:`~regbench.metrics.region.standard.M3DRegion`, :class:`~regbench.metrics.region.medrega.MedregaRegion`),
each a subclass that keeps the plugin's name and signature. What the modes share is here:
options, the reference index, subtasks, reference columns, ``finalize`` and the signature.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regbench import __version__
from regbench.metrics.base import Metric, MetricContext, Stats, register_metric
from regbench.metrics.region.columns import BoxColumns, ReferenceIndex, Subtask, derive_subtask, normalise_name
from regbench.metrics.region.scores import PRF_KEYS
from regbench.signature import Part, Signature
from regbench.types import Parsed, Sample

Mode = Literal["standard", "medrega", "m3d"]


class RegionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    mode: Mode = "standard"
    """``medrega``: MedRegA's released evaluator; ``m3d``: M3D's 3D rules (docs/region-metrics.md has each)."""
    iou_threshold: float | None = Field(None, gt=0, le=1)
    """Hit threshold; default 0.5 (standard), MedRegA's per-subtask values (medrega), 0.2 strict (m3d)."""
    subtask: Subtask | None = None
    """Force a subtask; by default each sample's reference decides."""
    synonyms: dict[str, str] = Field(default_factory=dict)
    """Predicted name -> reference name, applied after normalisation (standard and m3d modes)."""


@register_metric("region_aligned")
class RegionAligned(Metric):
    """Region / object / alignment precision, recall, F1, IoU, accuracy (MedRegA Region-Aligned evaluation)."""

    keys = {**dict.fromkeys(PRF_KEYS, True), "iou": True, "accuracy": True}
    Options = RegionOptions
    mode: ClassVar[Mode]
    _by_mode: ClassVar[dict[str, type[RegionAligned]]] = {}

    def __init_subclass__(cls, *, mode: Mode | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if mode is not None:
            cls.mode = mode
            RegionAligned._by_mode[mode] = cls

    def __new__(cls, options: BaseModel | None = None, context: MetricContext | None = None) -> RegionAligned:
        """``RegionAligned(options)`` is the metric of ``options.mode``."""
        if cls is RegionAligned:
            mode = (options if isinstance(options, RegionOptions) else RegionOptions()).mode
            cls = RegionAligned._by_mode[mode]
        return super().__new__(cls)

    def __init__(self, options: BaseModel | None = None, context: MetricContext | None = None) -> None:
        super().__init__(options, context)
        self._index: ReferenceIndex | None = None

    @property
    def opts(self) -> RegionOptions:
        return self.options  # type: ignore[return-value]

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        self._index = ReferenceIndex.build(samples) if samples else None

    def close(self) -> None:
        self._index = None

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    # -- shared by the modes' stats_batch ---------------------------------------------------------
    def rows(self, samples: Sequence[Sample]) -> np.ndarray | None:
        """The samples' rows in the reference index, or None (no index, or a sample it does not hold)."""
        return self._index.rows(samples) if self._index is not None else None

    def subtasks(self, samples: Sequence[Sample], rows: np.ndarray | None) -> np.ndarray:
        """Each sample's subtask: the option's, else derived from its reference (names normalised)."""
        subtasks: np.ndarray = np.empty(len(samples), dtype=object)
        if self.opts.subtask:
            subtasks[:] = self.opts.subtask
        elif self._index is not None and rows is not None:
            subtasks = self._index.subtasks[rows]
        else:
            name = functools.cache(normalise_name)  # names repeat across samples: normalise each once
            subtasks[:] = [derive_subtask(s.objects, name) for s in samples]
        return subtasks

    def reference_columns(
        self, samples: Sequence[Sample], rows: np.ndarray | None, dims: int, name: Callable[[str], str]
    ) -> BoxColumns:
        """The reference boxes of ``dims`` dimensions, named ``name(region.name)``: from the index when it
        holds the samples, else read from their objects."""
        index = self._index
        if index is None or rows is None:
            return BoxColumns.from_regions((s.objects for s in samples), dims, name)
        if dims == index.dims:
            return index.read.columns(name, rows)
        return BoxColumns.from_lists([[]] * len(samples), [[]] * len(samples), dims)  # the split's are the other

    # -- aggregate -------------------------------------------------------------------------------
    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        """The aggregates of ``finalize_weighted`` with every sample drawn once."""
        if not stats:
            return {}
        values = self.finalize_weighted(stats, np.ones((1, len(stats))))
        assert values is not None  # every mode computes its aggregates from columns
        return {key: float(column[0]) for key, column in values.items() if np.isfinite(column[0])}

    def signature(self, key: str | None = None) -> Signature:
        """Mode, IoU threshold(s), subtask rule, matching and the mode's conventions."""
        opts = self.opts
        parts: list[Part] = [
            ("mode", opts.mode),
            ("iou", f"{opts.iou_threshold}" if opts.iou_threshold else _THRESHOLDS[opts.mode]),
            ("subtask", opts.subtask or "derived"),
            ("match", "iou-max" if opts.mode == "medrega" else "hits-then-iou"),
        ]
        if opts.mode == "medrega":
            parts += [("pr", "swapped"), ("names", "substring"), ("parse", "double-bracket")]
            parts += [("scale", "999"), ("iou_agg", "pooled")]
        if opts.mode == "m3d":
            parts.append(("iou_def", "enclosing"))
        if opts.synonyms:
            parts.append(("synonyms", f"{len(opts.synonyms)}"))
        return Signature(key=key or self.name, plugin=self.name, parts=tuple(parts), version=__version__)


_THRESHOLDS = {"standard": "0.5", "medrega": "0.5,sm:0.75,ss:>0.5", "m3d": ">0.2"}
