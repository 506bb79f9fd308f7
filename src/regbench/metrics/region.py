"""Region-centric metrics: MedRegA's Region-Aligned evaluation (2D and 3D), grounding, box regression.

``region_aligned`` (MedRegA §5.2, Appendix D, Algorithm 1; METRICS.md):

- ``mode: standard`` (default). Threshold-aware one-to-one matching (most hits, then most
  IoU); precision = hits / predicted boxes, recall = hits / reference boxes; names
  normalised and compared exactly (plus task synonyms) for ``object_*`` (distinct names) and
  ``alignment_*`` (a pair matches only when names agree); ``iou`` = total IoU of the region
  assignment / max(N, M); ``accuracy`` on single-object single-region samples. Per-sample
  values, averaged. True IoU in 2D and 3D.
- ``mode: medrega``: MedRegA's released evaluators (research note anchors-seed-code §1),
  which produced the paper's numbers: outputs read by the released parser (the
  ``medrega_released`` box format: only ``[[int, int, int, int], ...]`` lists, on the 999
  grid, named by all the text before each list); names aligned by lower-case substring
  either way; one ``linear_sum_assignment(1 - IoU)`` then thresholding; "precision" divides
  by the reference count and "recall" by the predicted count; hits at IoU >= 0.5, >= 0.75 in
  single-object multi-region, > 0.5 (with its own IoU rule) in single-object single-region;
  IoU pooled over the split.
- ``mode: m3d``: M3D's enclosing-box "IoU" and hits at IoU > 0.2.

Subtasks (``single_object_single_region`` ...) come from the options or from each reference.

Scoring is column-wise: a batch of samples becomes flat box arrays (:class:`BoxColumns`),
padded into ``(B, N, M)`` IoU blocks of similar sizes, matched all at once
(:mod:`regbench.metrics.matching`), and only the final per-sample records are Python dicts.
With numba installed (``regbench[fast]``), ``medrega`` mode counts per sample in compiled
loops instead (:mod:`regbench.metrics.accel`), with identical results.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from regbench.metrics import accel
from regbench.metrics.base import Metric, Stats, StatsColumns, register_metric, weighted_means
from regbench.metrics.geometry import enclosing_iou_matrix, giou_matrix, iou_matrix, l1_matrix, reaches
from regbench.metrics.matching import assign_padded, isolated, max_weight_assignment, threshold_weights
from regbench.parsing.medrega_released import NAME as RELEASED
from regbench.parsing.readings import ParsedColumns, ReadItems
from regbench.types import Parsed, Region, Sample

Subtask = Literal[
    "single_object_single_region",
    "single_object_multi_region",
    "multi_object_single_region",
    "multi_object_multi_region",
]
SINGLE = "single_object_single_region"
SUBTASKS: tuple[Subtask, ...] = (
    SINGLE,
    "single_object_multi_region",
    "multi_object_single_region",
    "multi_object_multi_region",
)
LEVELS = ("region", "object", "alignment")
PRF_KEYS = tuple(f"{level}_{m}" for level in LEVELS for m in ("precision", "recall", "f1"))
_MEDREGA_COUNTS = ("C", "A", "CA", "iou_sum", "pairs")

_SPACES = re.compile(r"\s+")


def derive_subtask(reference: Sequence[Region], name: Callable[[str], str] | None = None) -> str:
    """The text-to-region subtask a reference belongs to: objects x boxes per object."""
    names = {(name or normalise_name)(r.name) for r in reference}
    boxes = sum(len(r.boxes) for r in reference)
    if len(names) <= 1:
        return "single_object_multi_region" if boxes > 1 else SINGLE
    return "multi_object_multi_region" if any(len(r.boxes) > 1 for r in reference) else "multi_object_single_region"


def normalise_name(name: str, synonyms: dict[str, str] | None = None) -> str:
    """Lower case, trimmed, inner whitespace collapsed, trailing punctuation dropped, synonyms mapped."""
    name = _SPACES.sub(" ", name.strip().lower()).rstrip(".,;:!?。，；：")
    return (synonyms or {}).get(name, name)


def prf(hits: float, n_pred: float, n_ref: float) -> tuple[float, float, float]:
    """Precision, recall, F1 with regbench's edge rules: N = 0 gives P = 0; N = M = 0 gives 1, 1, 1."""
    if n_pred == 0 and n_ref == 0:
        return 1.0, 1.0, 1.0
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def prf_columns(hits: np.ndarray, n_pred: np.ndarray, n_ref: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`prf` for whole columns of counts (same edge rules)."""
    hits, n_pred, n_ref = (np.asarray(a, dtype=np.float64) for a in (hits, n_pred, n_ref))
    precision = np.divide(hits, n_pred, out=np.zeros_like(hits), where=n_pred > 0)
    recall = np.divide(hits, n_ref, out=np.zeros_like(hits), where=n_ref > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    empty = (n_pred == 0) & (n_ref == 0)
    return tuple(np.where(empty, 1.0, column) for column in (precision, recall, f1))


@dataclass
class BoxColumns:
    """The boxes of many samples, flat: sample ``b`` owns ``counts[b]`` consecutive boxes and names."""

    boxes: np.ndarray
    """``(total, 4)`` or ``(total, 6)`` float64 corners."""
    counts: np.ndarray
    """Boxes per sample, ``(B,)``."""
    names: list[str]
    """One name per box."""
    ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Optionally the names as ids, ``names[i] == vocabulary[ids[i]]``: saves :func:`name_ids` a lookup per box."""
    vocabulary: list[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_lists(
        cls, boxes: Sequence[Sequence[Sequence[float]]], names: Sequence[Sequence[str]], dims: int
    ) -> BoxColumns:
        """From per-sample lists of boxes and of names (one name per box)."""
        counts = np.fromiter(map(len, boxes), dtype=np.intp, count=len(boxes))
        total = int(counts.sum()) * dims
        flat = np.fromiter(chain.from_iterable(chain.from_iterable(boxes)), dtype=np.float64, count=total)
        np.nan_to_num(flat, copy=False, nan=0.0, posinf=1.0, neginf=0.0)  # a NaN box would poison the matching
        return cls(flat.reshape(-1, dims), counts, list(chain.from_iterable(names)))

    @classmethod
    def from_regions(
        cls, samples: Iterable[Sequence[Region]], dims: int, name: Callable[[str], str] = normalise_name
    ) -> BoxColumns:
        """Every box of the right dimension, named ``name(region.name)``."""
        samples = list(samples)
        read = RegionRead.of(samples, dims)
        if read is None:
            return cls._from_regions_filtered(samples, dims, name)
        return read.columns(name)

    @classmethod
    def _from_regions_filtered(
        cls, samples: Iterable[Sequence[Region]], dims: int, name: Callable[[str], str]
    ) -> BoxColumns:
        """:meth:`from_regions` box by box, leaving out boxes of another dimension."""
        boxes: list[list[list[float]]] = []
        names: list[list[str]] = []
        for regions in samples:
            kept = [(b, r.name) for r in regions for b in r.boxes if len(b) == dims]
            boxes.append([b for b, _ in kept])
            names.append([name(n) for _, n in kept])
        return cls.from_lists(boxes, names, dims)

    def __len__(self) -> int:
        return len(self.counts)

    def padded(self, members: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes of ``members`` as ``(len(members), size, dims)`` (zero boxes after the last) and flat box indices
        (``-1`` for padding)."""
        counts = self.counts[members]
        starts = (np.cumsum(self.counts) - self.counts)[members]
        slots = np.arange(size)
        index = np.where(slots[None, :] < counts[:, None], starts[:, None] + slots[None, :], -1)
        if not len(self.boxes):
            return np.zeros((len(members), size, self.boxes.shape[1])), index
        boxes = np.where((index >= 0)[:, :, None], self.boxes[np.maximum(index, 0)], 0.0)
        return boxes, index


def _padded_ids(ids: np.ndarray, index: np.ndarray, fill: int) -> np.ndarray:
    """Name ids laid out like :meth:`BoxColumns.padded` boxes, ``fill`` where there is no box."""
    return np.where(index >= 0, ids[np.maximum(index, 0)], fill) if len(ids) else np.full(index.shape, fill)


@dataclass
class RegionRead:
    """The boxes and names of many samples' Region objects, read in one pass, names as ids of distinct raw names.

    Reading boxes out of pydantic objects is the fixed cost of scoring, and it is bound by
    memory more than by Python: every object is visited as few times as possible, and all
    numbers are read in one ``np.fromiter``.
    """

    boxes: np.ndarray
    """``(total, dims)`` corners, NaN read as 0 and infinities clipped (a NaN box would poison the matching)."""
    counts: np.ndarray
    """Boxes per sample."""
    box_ids: np.ndarray
    """Per box, the index of its region's raw name in ``raw_names``."""
    raw_names: list[str]
    region_sample: np.ndarray
    """Per region (in sample order), the sample it belongs to."""
    region_ids: np.ndarray
    region_boxes: np.ndarray
    """Per region, its number of boxes."""

    @classmethod
    def of(cls, samples: Sequence[Sequence[Region]], dims: int) -> RegionRead | None:
        """The read, or None when some box has the other dimension (then boxes must be filtered one by one)."""
        regions = list(chain.from_iterable(samples))
        box_lists = list(map(attrgetter("boxes"), regions))
        per_region = np.fromiter(map(len, box_lists), dtype=np.intp, count=len(box_lists))
        numbers = chain.from_iterable(chain.from_iterable(box_lists))
        try:  # boxes hold 4 or 6 numbers (Region validates it): a box of the other dimension miscounts them
            flat = np.fromiter(numbers, dtype=np.float64, count=int(per_region.sum()) * dims)
        except ValueError:  # too few numbers: some box is shorter
            return None
        if next(numbers, None) is not None:  # too many: some box is longer
            return None
        np.nan_to_num(flat, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        distinct: dict[str, int] = {}  # names repeat: each distinct one is mapped once
        names = map(attrgetter("name"), regions)
        region_ids = np.array([distinct.setdefault(n, len(distinct)) for n in names], dtype=np.intp)
        region_sample = np.repeat(np.arange(len(samples)), np.fromiter(map(len, samples), np.intp, len(samples)))
        counts = np.bincount(region_sample, weights=per_region, minlength=len(samples)).astype(np.intp)
        box_ids = np.repeat(region_ids, per_region)
        return cls(flat.reshape(-1, dims), counts, box_ids, list(distinct), region_sample, region_ids, per_region)

    def columns(self, name: Callable[[str], str], rows: np.ndarray | None = None) -> BoxColumns:
        """The boxes of samples ``rows`` (all by default, in order), named ``name(raw name)``."""
        vocabulary = list(map(name, self.raw_names))
        boxes, counts, ids = self.boxes, self.counts, self.box_ids
        if rows is not None and not (len(rows) == len(counts) and np.array_equal(rows, np.arange(len(rows)))):
            counts = self.counts[rows]
            starts = (np.cumsum(self.counts) - self.counts)[rows]
            index = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
            boxes, ids = boxes[index], ids[index]
        return BoxColumns(boxes, counts, _lookup(vocabulary, ids), ids, vocabulary)

    def subtasks(self) -> np.ndarray:
        """:func:`derive_subtask` of every sample at once (names normalised)."""
        size = len(self.counts)
        normalised: dict[str, int] = {}
        name_ids = np.array([normalised.setdefault(normalise_name(n), len(normalised)) for n in self.raw_names])
        width = max(len(normalised), 1)
        keys = np.unique(self.region_sample * width + name_ids[self.region_ids]) if len(self.region_ids) else []
        names = np.bincount(np.asarray(keys, dtype=np.intp) // width, minlength=size)
        multi_box = np.bincount(self.region_sample, weights=self.region_boxes > 1, minlength=size) > 0
        single_object = np.where(self.counts > 1, 1, 0)  # index into SUBTASKS
        code = np.where(names <= 1, single_object, np.where(multi_box, 3, 2))
        return np.array(SUBTASKS, dtype=object)[code]


@dataclass
class ReferenceIndex:
    """The reference boxes of a split as columns, read before generation (:meth:`RegionAligned.prepare`).

    Reading the reference objects is about half the cost of scoring a large split in
    ``medrega`` mode; done while nothing waits for it, scoring only looks the samples up
    (:meth:`rows`: any subset, in any order, by identity). The index holds the samples, so
    their ids cannot be reused by other objects while it lives. Samples are not changed after
    loading (nothing in regbench does); one changed later would be scored by its old boxes.
    """

    samples: list[Sample]
    dims: int
    read: RegionRead
    _ids: np.ndarray = field(repr=False)
    _order: np.ndarray = field(repr=False)

    @functools.cached_property
    def subtasks(self) -> np.ndarray:
        """Each sample's derived subtask (when the task does not name one)."""
        return self.read.subtasks()

    @classmethod
    def build(cls, samples: Sequence[Sample]) -> ReferenceIndex | None:
        """The index, or None when the split has boxes of both dimensions (those are read per call)."""
        samples = list(samples)
        objects = list(map(attrgetter("objects"), samples))
        dims = next((len(b) for regions in objects for r in regions for b in r.boxes), 4)
        read = RegionRead.of(objects, dims)
        if read is None:
            return None
        ids = np.fromiter(map(id, samples), dtype=np.uint64, count=len(samples))
        order = np.argsort(ids, kind="stable")
        return cls(samples, dims, read, ids[order], order)

    def rows(self, samples: Sequence[Sample]) -> np.ndarray | None:
        """Each sample's row, or None if any of them is not in the index."""
        ids = np.fromiter(map(id, samples), dtype=np.uint64, count=len(samples))
        if not len(self._ids):
            return None if len(ids) else np.zeros(0, dtype=np.intp)
        position = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return self._order[position] if np.array_equal(self._ids[position], ids) else None


def name_ids(columns: Sequence[BoxColumns], vocabulary: dict[str, int]) -> list[np.ndarray]:
    """Each column set's names as integer ids; new names extend ``vocabulary``."""
    out = []
    for c in columns:
        if c.ids is not None and c.vocabulary is not None:
            local = [vocabulary.setdefault(name, len(vocabulary)) for name in c.vocabulary]
            out.append(np.array(local, dtype=np.intp)[c.ids] if len(c.ids) else np.zeros(0, dtype=np.intp))
            continue
        for name in dict.fromkeys(c.names):
            vocabulary.setdefault(name, len(vocabulary))
        out.append(np.fromiter(map(vocabulary.__getitem__, c.names), dtype=np.intp, count=len(c.names)))
    return out


def _buckets(n: np.ndarray, m: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """Samples grouped by (N, M) rounded up to powers of two: padding wastes at most 4x, few numpy calls."""

    def ceil2(a: np.ndarray) -> np.ndarray:
        return np.where(a <= 1, a, 1 << np.ceil(np.log2(np.maximum(a, 1))).astype(np.intp))

    keys = ceil2(n) * (1 << 20) + ceil2(m)
    out = []
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        out.append((members, int(n[members].max()), int(m[members].max())))
    return out


# ---------------------------------------------------------------- standard and m3d modes


def standard_columns(
    pred: BoxColumns,
    ref: BoxColumns,
    *,
    threshold: float,
    strict: bool = False,
    enclosing: bool = False,
) -> dict[str, np.ndarray]:
    """Per-sample counts of the standard matching, as columns.

    Returns ``hits`` (region level), ``aligned`` (pairs matched under the name constraint),
    ``iou_sum`` (IoU of the region assignment's pairs), ``best_iou`` (best predicted box
    against the first reference box), and distinct-name counts ``names_pred``, ``names_ref``,
    ``names_both``. ``strict`` counts a hit at IoU > threshold (M3D) instead of >=;
    ``enclosing`` uses M3D's enclosing-box IoU.
    """
    size = len(pred)
    out = {key: np.zeros(size) for key in ("hits", "aligned", "iou_sum", "best_iou")}
    vocabulary: dict[str, int] = {}
    pred_ids, ref_ids = name_ids([pred, ref], vocabulary)
    for members, size_n, size_m in _buckets(pred.counts, ref.counts):
        if size_n == 0 or size_m == 0:
            continue
        n, m = pred.counts[members], ref.counts[members]
        p_boxes, p_index = pred.padded(members, size_n)
        r_boxes, r_index = ref.padded(members, size_m)
        # padding boxes are all zeros: degenerate, so IoU 0 with everything
        iou = enclosing_iou_matrix(p_boxes, r_boxes) if enclosing else iou_matrix(p_boxes, r_boxes)
        hit = reaches(iou, threshold, strict=strict)
        same = _padded_ids(pred_ids, p_index, -1)[:, :, None] == _padded_ids(ref_ids, r_index, -2)[:, None, :]
        region = max_weight_assignment(threshold_weights(iou, hit), n, m)
        aligned = max_weight_assignment(threshold_weights(iou, hit, same), n, m)
        out["hits"][members] = (region & hit).sum(axis=(1, 2))
        out["aligned"][members] = (aligned & hit & same).sum(axis=(1, 2))
        out["iou_sum"][members] = _ordered_sum(region * iou)
        out["best_iou"][members] = iou[:, :, 0].max(axis=1)
    out.update(_distinct_names(pred, ref, pred_ids, ref_ids, len(vocabulary)))
    return out


def _ordered_sum(values: np.ndarray) -> np.ndarray:
    """Sum of an assignment's values per sample, added in predicted-box order.

    A plain ``sum`` over a padded block adds in an order that depends on the padding, so the
    same sample could differ in the last bit depending on the batch it came in (and a merged
    or resumed run would not be bit-identical). Each row holds at most one assigned value, so
    the row sums are exact; the rows are then added one by one.
    """
    rows = values.sum(axis=2)
    total = np.zeros(len(values))
    for r in range(rows.shape[1]):
        total += rows[:, r]
    return total


def _distinct_names(
    pred: BoxColumns, ref: BoxColumns, pred_ids: np.ndarray, ref_ids: np.ndarray, vocabulary: int
) -> dict[str, np.ndarray]:
    """Distinct names per sample: predicted, reference, and in both."""
    size = len(pred)
    width = max(vocabulary, 1)
    p_keys = np.unique(np.repeat(np.arange(size), pred.counts) * width + pred_ids)
    r_keys = np.unique(np.repeat(np.arange(size), ref.counts) * width + ref_ids)
    both = np.intersect1d(p_keys, r_keys, assume_unique=True)
    return {
        "names_pred": np.bincount(p_keys // width, minlength=size).astype(np.float64),
        "names_ref": np.bincount(r_keys // width, minlength=size).astype(np.float64),
        "names_both": np.bincount(both // width, minlength=size).astype(np.float64),
    }


def standard_rows(
    columns: dict[str, np.ndarray],
    n: np.ndarray,
    m: np.ndarray,
    subtasks: Sequence[str],
    *,
    threshold: float,
    strict: bool,
) -> list[Stats]:
    """Per-sample records (sufficient statistics) of the standard and m3d modes.

    Counts only: :meth:`RegionAligned.sample_scores` turns a record into the metric values and
    :meth:`RegionAligned.finalize` does the same for whole columns. Single-object
    single-region samples also carry ``accuracy``.
    """
    keys = ("hits", "aligned", "iou_sum", "names_pred", "names_ref", "names_both")
    rows = _records({"n_pred": n, "n_ref": m, **{k: columns[k] for k in keys}}, subtasks)
    best = columns["best_iou"]
    accurate = reaches(best, threshold, strict=strict)
    for i in np.flatnonzero((np.asarray(subtasks) == SINGLE) & (np.asarray(m) > 0)).tolist():
        rows[i]["accuracy"] = float(accurate[i])  # (nothing to find: no accuracy)
    return rows


def _records(values: dict[str, np.ndarray], subtasks: Sequence[str]) -> list[Stats]:
    """Columns to per-sample dicts (plain Python numbers, JSON-ready)."""
    keys = ["subtask", *values]
    columns = [list(subtasks), *(np.asarray(v).tolist() for v in values.values())]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


# ---------------------------------------------------------------- medrega mode (released code)


def released_columns(items: Sequence[tuple[Parsed, Sample]]) -> BoxColumns:
    """The predicted boxes of MedRegA's released reading (the ``medrega_released`` box format): its batch
    columns as they are, or each ``Parsed``'s objects."""
    parsed = items.parsed if isinstance(items, ReadItems) else [p for p, _ in items]
    if isinstance(parsed, ParsedColumns):
        boxes = parsed.boxes
        if not np.isfinite(boxes).all():  # a number too large for a float, as from_regions reads it
            boxes = np.nan_to_num(boxes, nan=0.0, posinf=1.0, neginf=0.0)
        return BoxColumns(boxes, parsed.counts, parsed.names, parsed.name_ids, parsed.vocabulary)
    other = [p.box_format for p in parsed if p.ok and p.box_format != RELEASED]
    if other:  # another reading's boxes would be scored silently as if the released parser had read them
        raise ValueError(
            f"region_aligned (mode: medrega) scores outputs read with the {RELEASED} box format, "
            f"got box format {other[0]!r} (read them with regbench.parsing.readings.read_outputs)"
        )
    return BoxColumns.from_regions((p.objects for p in parsed), 4, str)


def _lookup(vocabulary: list[str], ids: np.ndarray) -> list[str]:
    """``[vocabulary[i] for i in ids]``, by one take on an object array."""
    table = np.empty(len(vocabulary), dtype=object)
    table[:] = vocabulary
    return table[ids].tolist()


def medrega_align(pred: str, ref: str) -> bool:
    """The released name check: an empty predicted name, or one name inside the other."""
    return pred == "" or pred in ref or ref in pred


def medrega_columns(pred: BoxColumns, ref: BoxColumns, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """C, A, CA, the assigned IoU sum and pair count per sample, as ``linear_sum_assignment(1 - IoU)`` gives them.

    ``thresholds`` holds each sample's hit threshold (>=). The assignment maximises total IoU,
    and the pairs are exactly scipy's, ties included: which zero-IoU pairs it adds decides
    the released "object" counts. Samples whose positive IoUs are isolated and already fill
    ``min(N, M)`` pairs have a unique optimum and need no solver.
    """
    size = len(pred)
    out = {key: np.zeros(size) for key in _MEDREGA_COUNTS}
    p_vocab: dict[str, int] = {}
    r_vocab: dict[str, int] = {}
    (pred_ids,) = name_ids([pred], p_vocab)
    (ref_ids,) = name_ids([ref], r_vocab)
    # one extra row and column of False for the padding id -1
    table = np.zeros((len(p_vocab) + 1, len(r_vocab) + 1), dtype=bool)
    for a, i in p_vocab.items():
        table[i, :-1] = [medrega_align(a, b) for b in r_vocab]
    if accel.enabled(len(pred)) and pred.boxes.shape[1] == 4 and ref.boxes.shape[1] == 4:
        found = accel.kernels().released_counts(
            np.ascontiguousarray(pred.boxes, dtype=np.float64),
            pred.counts.astype(np.int64),
            np.ascontiguousarray(ref.boxes, dtype=np.float64),
            ref.counts.astype(np.int64),
            pred_ids.astype(np.int64),
            ref_ids.astype(np.int64),
            table,
            np.asarray(thresholds, dtype=np.float64),
        )
        return dict(zip(_MEDREGA_COUNTS, found, strict=True))
    for members, size_n, size_m in _buckets(pred.counts, ref.counts):
        if size_n == 0 or size_m == 0:
            continue
        n, m = pred.counts[members], ref.counts[members]
        p_boxes, p_index = pred.padded(members, size_n)
        r_boxes, r_index = ref.padded(members, size_m)
        iou = iou_matrix(p_boxes, r_boxes)  # padding boxes are all zeros: IoU 0
        positive = iou > 0
        assigned = positive.copy()
        hard = np.flatnonzero(~(isolated(positive) & (positive.sum(axis=(1, 2)) == np.minimum(n, m))))
        if hard.size:
            assigned[hard] = assign_padded(1.0 - iou[hard], n[hard], m[hard])
        align = table[_padded_ids(pred_ids, p_index, -1)[:, :, None], _padded_ids(ref_ids, r_index, -1)[:, None, :]]
        hit = iou >= thresholds[members][:, None, None]
        out["C"][members] = (assigned & hit).sum(axis=(1, 2))
        out["A"][members] = (assigned & align).sum(axis=(1, 2))
        out["CA"][members] = (assigned & hit & align).sum(axis=(1, 2))
        out["iou_sum"][members] = _ordered_sum(assigned * iou)
        out["pairs"][members] = assigned.sum(axis=(1, 2))
    return out


def medrega_single_region_iou(pred: BoxColumns, ref: BoxColumns) -> np.ndarray:
    """The single-object single-region evaluator's IoU: best box if more predictions than references, else the first."""
    out = np.zeros(len(pred))
    has = np.flatnonzero((pred.counts > 0) & (ref.counts > 0))
    if has.size == 0:
        return out
    p_boxes, p_index = pred.padded(has, int(pred.counts[has].max()))
    r_boxes, _ = ref.padded(has, 1)
    iou = np.where(p_index >= 0, iou_matrix(p_boxes, r_boxes)[:, :, 0], 0.0)
    more = pred.counts[has] > ref.counts[has]
    out[has] = np.where(more, iou.max(axis=1), iou[:, 0])
    return out


def medrega_rows(
    pred: BoxColumns, ref: BoxColumns, subtasks: Sequence[str], *, threshold: float | None = None
) -> StatsColumns:
    """Per-sample records (counts) of MedRegA's released evaluator for each sample's subtask.

    Multi-box subtasks: ``C`` (hits), ``A`` (assigned pairs with aligned names, any IoU),
    ``CA`` (both), ``iou_sum`` and ``pairs`` of the assignment. Single-object single-region:
    that evaluator's ``ss_iou`` and ``accuracy`` (IoU > threshold, strictly).
    """
    kinds = np.empty(len(subtasks), dtype=object)
    kinds[:] = subtasks
    thresholds = np.where(kinds == "single_object_multi_region", 0.75, 0.5) if threshold is None else None
    counts = medrega_columns(pred, ref, np.full(len(kinds), threshold) if thresholds is None else thresholds)
    single = kinds == SINGLE
    ss_iou = np.zeros(len(kinds))
    if single.any():
        members = np.flatnonzero(single)
        ss_iou[members] = medrega_single_region_iou(_take(pred, members), _take(ref, members))
    accuracy = (ss_iou > (threshold or 0.5)).astype(np.float64)  # strict, as in the released single-region evaluator
    multi = ~single
    return StatsColumns(
        {
            "subtask": kinds,
            "n_pred": pred.counts,
            "n_ref": ref.counts,
            **{key: counts[key] for key in _MEDREGA_COUNTS},
            "ss_iou": ss_iou,
            "accuracy": accuracy,
        },
        present={**dict.fromkeys(_MEDREGA_COUNTS, multi), "ss_iou": single, "accuracy": single},
    )


def _take(columns: BoxColumns, members: np.ndarray) -> BoxColumns:
    boxes, index = columns.padded(members, int(columns.counts[members].max()) if members.size else 0)
    keep = index >= 0
    return BoxColumns(boxes[keep], columns.counts[members], [columns.names[k] for k in index[keep].tolist()])


# ---------------------------------------------------------------- the plugin


class RegionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["standard", "medrega", "m3d"] = "standard"
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

    @property
    def opts(self) -> RegionOptions:
        return self.options  # type: ignore[return-value]

    def __init__(self, options: BaseModel | None = None, context: object = None) -> None:
        super().__init__(options, context)  # type: ignore[arg-type]
        self._index: ReferenceIndex | None = None
        # Pooled IoU (medrega) needs the whole list in finalize; the others are per-sample means.
        self.aggregation = "corpus" if self.opts.mode == "medrega" else "mean"  # type: ignore[misc]
        self.reads = RELEASED if self.opts.mode == "medrega" else None  # type: ignore[misc]

    def threshold(self) -> tuple[float, bool]:
        """(threshold, strict) of the standard and m3d modes (medrega's are per subtask, in medrega_rows)."""
        if self.opts.mode == "m3d":
            return self.opts.iou_threshold or 0.2, True
        return self.opts.iou_threshold or 0.5, False

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        self._index = ReferenceIndex.build(samples) if samples else None

    def close(self) -> None:
        self._index = None

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> Sequence[Stats]:
        # (iterating the items would read each output of a ParsedColumns one by one)
        samples = list(items.samples) if isinstance(items, ReadItems) else list(map(itemgetter(1), items))
        index = self._index
        rows = index.rows(samples) if index is not None else None
        # names repeat across samples: normalise each distinct one once
        reference_name = functools.cache(normalise_name)
        subtasks: np.ndarray = np.empty(len(items), dtype=object)
        if self.opts.subtask:
            subtasks[:] = self.opts.subtask
        elif index is not None and rows is not None:
            subtasks = index.subtasks[rows]
        else:
            subtasks[:] = [derive_subtask(s.objects, reference_name) for s in samples]
        if self.opts.mode == "medrega":
            pred = released_columns(items)
            # reference names only lower-cased, as released
            if index is not None and rows is not None and index.dims == 4:
                ref = index.read.columns(str.lower, rows)
            else:
                ref = BoxColumns.from_regions([s.objects for s in samples], 4, str.lower)
            return medrega_rows(pred, ref, subtasks, threshold=self.opts.iou_threshold)
        synonyms = {normalise_name(k): normalise_name(v) for k, v in self.opts.synonyms.items()}
        predicted_name = functools.cache(lambda n: normalise_name(n, synonyms))
        threshold, strict = self.threshold()
        if index is not None and rows is not None:  # a sample without boxes counts as 2D, as below
            dims = np.where(index.read.counts[rows] > 0, index.dims, 4).tolist()
        else:
            dims = [next((len(b) for r in s.objects for b in r.boxes), 4) for s in samples]
        records: list[Stats] = [{} for _ in items]
        for d in sorted(set(dims)):  # 2D and 3D samples are scored apart
            idx = [i for i, x in enumerate(dims) if x == d]
            pred = BoxColumns.from_regions((items[i][0].objects for i in idx), d, predicted_name)
            if index is None or rows is None:
                ref = BoxColumns.from_regions((samples[i].objects for i in idx), d, reference_name)
            elif d == index.dims:
                ref = index.read.columns(reference_name, rows[idx])
            else:  # (only samples without reference boxes)
                ref = BoxColumns.from_lists([[]] * len(idx), [[]] * len(idx), d)
            columns = standard_columns(pred, ref, threshold=threshold, strict=strict, enclosing=self.opts.mode == "m3d")
            found = standard_rows(columns, pred.counts, ref.counts, subtasks[idx], threshold=threshold, strict=strict)
            for i, row in zip(idx, found, strict=True):
                records[i] = row
        return records

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        scores: dict[str, float | None] = dict.fromkeys(self.keys)
        scores["accuracy"] = stats.get("accuracy")
        if self.opts.mode == "medrega":
            if "ss_iou" in stats:  # the single-region evaluator reports accuracy and IoU only
                scores["iou"] = stats["ss_iou"]
                return scores
            g, p = stats["n_ref"], stats["n_pred"]
            multi_region = stats["subtask"] == "single_object_multi_region"
            for level, count in zip(LEVELS, (stats["C"], stats["A"], stats["CA"]), strict=True):
                if level != "region" and multi_region:
                    continue  # that evaluator ignores names
                precision = count / g if g else 0.0  # the released (swapped) naming
                recall = count / p if p else 0.0
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                scores.update(
                    zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), (precision, recall, f1), strict=True)
                )
            den = stats["pairs"] if multi_region else g
            scores["iou"] = stats["iou_sum"] / den if den else None
            return scores
        n, m = stats["n_pred"], stats["n_ref"]
        levels = {
            "region": (stats["hits"], n, m),
            "object": (stats["names_both"], stats["names_pred"], stats["names_ref"]),
            "alignment": (stats["aligned"], n, m),
        }
        for level, counts in levels.items():
            scores.update(zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), prf(*counts), strict=True))
        scores["iou"] = stats["iou_sum"] / max(n, m) if max(n, m) else 1.0
        return scores

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        """Means of the per-sample values (as ``sample_scores`` gives them), computed on columns.

        In ``medrega`` mode the IoU is pooled as the released evaluators pool it: summed IoU of
        assigned pairs over summed reference boxes (assigned pairs in single-object
        multi-region); a split mixing in single-object single-region samples weights each
        evaluator's IoU by its samples.
        """
        if not stats:
            return {}
        values = self.finalize_weighted(stats, np.ones((1, len(stats))))
        return {key: float(column[0]) for key, column in values.items() if np.isfinite(column[0])}

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`finalize` under each row of bootstrap draw counts (every aggregate is built from per-sample sums)."""
        if self.opts.mode != "medrega":
            values = _standard_columns_of(stats)
            return dict(zip(values, weighted_means(np.column_stack(list(values.values())), weights).T, strict=True))
        read = _MedregaRead.of(stats)
        values = _medrega_columns_of(read)
        out = dict(zip(values, weighted_means(np.column_stack(list(values.values())), weights).T, strict=True))
        out["iou"] = _medrega_pooled_iou(read, weights)
        return out

    def signature(self, key: str | None = None) -> str:
        from regbench import __version__

        opts = self.opts
        parts = [key or self.name, f"plugin:{self.name}", f"mode:{opts.mode}"]
        parts.append(f"iou:{opts.iou_threshold}" if opts.iou_threshold else f"iou:{_THRESHOLDS[opts.mode]}")
        parts.append(f"subtask:{opts.subtask or 'derived'}")
        parts.append("match:" + ("iou-max" if opts.mode == "medrega" else "hits-then-iou"))
        if opts.mode == "medrega":
            parts.append("pr:swapped|names:substring|parse:double-bracket|scale:999|iou_agg:pooled")
        if opts.mode == "m3d":
            parts.append("iou_def:enclosing")
        if opts.synonyms:
            parts.append(f"synonyms:{len(opts.synonyms)}")
        return "|".join([*parts, f"regbench:{__version__}"])


def _column(stats: Sequence[Stats], key: str) -> np.ndarray:
    """One key of every record as floats (absent or ``None`` -> NaN)."""
    try:  # the common case, every record has a number: no intermediate list
        return np.fromiter(map(itemgetter(key), stats), dtype=np.float64, count=len(stats))
    except (KeyError, TypeError):
        return np.array([row.get(key) for row in stats], dtype=np.float64)


def _standard_columns_of(stats: Sequence[Stats]) -> dict[str, np.ndarray]:
    n, m = _column(stats, "n_pred"), _column(stats, "n_ref")
    levels = {
        "region": (_column(stats, "hits"), n, m),
        "object": (_column(stats, "names_both"), _column(stats, "names_pred"), _column(stats, "names_ref")),
        "alignment": (_column(stats, "aligned"), n, m),
    }
    out = {}
    for level, counts in levels.items():
        out.update(zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), prf_columns(*counts), strict=True))
    largest = np.maximum(n, m)
    out["iou"] = np.divide(_column(stats, "iou_sum"), largest, out=np.ones(len(n)), where=largest > 0)
    out["accuracy"] = _column(stats, "accuracy")
    return out


@dataclass
class _MedregaRead:
    """The record columns the medrega aggregates use, each key read once (reading is most of finalize)."""

    kinds: np.ndarray
    """Each record's subtask (an object array)."""
    has_ss_iou: np.ndarray
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, stats: Sequence[Stats]) -> _MedregaRead:
        keys = ("n_ref", "n_pred", *_MEDREGA_COUNTS, "accuracy", "ss_iou")
        kinds = np.empty(len(stats), dtype=object)
        if isinstance(stats, StatsColumns):  # as stats_batch made them: no records to read
            kinds[:] = stats.columns["subtask"]
            return cls(kinds, stats.present["ss_iou"], {key: stats.column(key) for key in keys})
        kinds[:] = [row["subtask"] for row in stats]
        has_ss_iou = np.fromiter(map(dict.__contains__, stats, repeat("ss_iou")), dtype=bool, count=len(stats))
        return cls(kinds, has_ss_iou, {key: _column(stats, key) for key in keys})

    def kind(self, name: str) -> np.ndarray:
        return np.asarray(self.kinds == name, dtype=bool)


def _medrega_columns_of(read: _MedregaRead) -> dict[str, np.ndarray]:
    single, multi_region = read.kind(SINGLE), read.kind("single_object_multi_region")
    g, p = read.columns["n_ref"], read.columns["n_pred"]
    out = {}
    for level, key in zip(LEVELS, ("C", "A", "CA"), strict=True):
        count = np.nan_to_num(read.columns[key])
        precision = np.divide(count, g, out=np.zeros_like(count), where=g > 0)
        recall = np.divide(count, p, out=np.zeros_like(count), where=p > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(count), where=total > 0)
        unused = single | multi_region if level != "region" else single
        for name, column in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"{level}_{name}"] = np.where(unused, np.nan, column)
    out["accuracy"] = read.columns["accuracy"]
    return out


def _medrega_pooled_iou(read: _MedregaRead, weights: np.ndarray) -> np.ndarray:
    """Pooled IoU under each row of draw counts: summed assigned IoU / summed boxes (pairs in
    single-object multi-region); single-region samples (their own per-sample IoU) weighted in by count."""
    single, multi_region, columns = read.has_ss_iou, read.kind("single_object_multi_region"), read.columns
    iou_sum = np.where(single, 0.0, np.nan_to_num(columns["iou_sum"]))
    boxes = np.where(single, 0.0, np.where(multi_region, columns["pairs"], columns["n_ref"]))
    ss_iou = np.where(single, np.nan_to_num(columns["ss_iou"]), 0.0)
    n_pooled, n_single, den = weights @ ~single, weights @ single, weights @ np.nan_to_num(boxes)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(den > 0, (weights @ iou_sum) / den, 0.0)
        singles = (weights @ ss_iou) / n_single
        mixed = (pooled * n_pooled + singles * n_single) / (n_pooled + n_single)
    return np.where(n_single == 0, np.where(n_pooled > 0, pooled, np.nan), np.where(n_pooled == 0, singles, mixed))


_THRESHOLDS = {"standard": "0.5", "medrega": "0.5,sm:0.75,ss:>0.5", "m3d": ">0.2"}


# ---------------------------------------------------------------- grounding and box regression


class GroundingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["standard", "m3d"] = "standard"
    hit_threshold: float | None = Field(None, gt=0, le=1)
    """``hit_rate`` threshold: default 0.5 (>=); in m3d mode 0.2 (>), with M3D's enclosing-box IoU."""


@register_metric("grounding")
class Grounding(Metric):
    """Single-box grounding (M4CXR phrase grounding, M3D REC): Acc@0.5, mIoU, hit rate of the first box."""

    keys = {"acc_iou50": True, "miou": True, "hit_rate": True}
    Options = GroundingOptions

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        opts: GroundingOptions = self.options  # type: ignore[assignment]
        ref = next((b for r in sample.objects for b in r.boxes), None)
        pred = next((b for r in parsed.objects for b in r.boxes if ref is not None and len(b) == len(ref)), None)
        iou = 0.0
        if ref is not None and pred is not None:
            matrix = enclosing_iou_matrix if opts.mode == "m3d" else iou_matrix
            iou = float(matrix(np.array([pred]), np.array([ref]))[0, 0])
        threshold = opts.hit_threshold or (0.2 if opts.mode == "m3d" else 0.5)
        hit = reaches(iou, threshold, strict=opts.mode == "m3d")
        return {"iou": iou, "acc_iou50": float(reaches(iou, 0.5)), "miou": iou, "hit_rate": float(hit)}


@register_metric("box_regression")
class BoxRegression(Metric):
    """VividMed box metrics on Hungarian-matched pairs (cost l1 + 1 - GIoU): l1, GIoU, 1 - GIoU."""

    keys = {"l1": False, "giou": True, "giou_loss": False}

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        dims = next((len(b) for r in sample.objects for b in r.boxes), 4)
        pred = BoxColumns.from_regions([parsed.objects], dims).boxes
        ref = BoxColumns.from_regions([sample.objects], dims).boxes
        if len(pred) == 0 or len(ref) == 0:
            return {"l1": None, "giou": None, "giou_loss": None, "pairs": 0}
        l1, giou = l1_matrix(pred, ref), giou_matrix(pred, ref)
        rows, cols = linear_sum_assignment(l1 + (1 - giou))
        mean_giou = float(giou[rows, cols].mean())
        return {"l1": float(l1[rows, cols].mean()), "giou": mean_giou, "giou_loss": 1 - mean_giou, "pairs": len(rows)}
