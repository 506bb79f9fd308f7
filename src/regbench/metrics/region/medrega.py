"""``region_aligned`` in ``mode: medrega``: MedRegA's released evaluators, which produced the paper's numbers.

The evaluation code released with the MedRegA paper (Wang et al. 2024; github.com/xmed-lab/MedRegA,
``src/eval/regt2r``):

- outputs are read by the released parser, the ``medrega_released`` box format
  (:mod:`regbench.parsing.medrega_released`; ``MedregaRegion.reads``): only
  ``[[int, int, int, int], ...]`` lists, on the 999 grid, named by all the text before each list;
- one ``linear_sum_assignment(1 - IoU)``, thresholded afterwards: hits at IoU >= 0.5, >= 0.75
  in single-object multi-region; names aligned by lower-case substring either way (reference
  names only lower-cased);
- "precision" divides by the reference count and "recall" by the predicted count;
- single-object single-region samples: that evaluator's own IoU (the best box if more
  predictions than references, else the first) and accuracy at IoU > 0.5;
- IoU pooled over the split.

Per-sample records (samples.jsonl ``stats``) keep the released evaluators' names; the constants
below say what each holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from regbench import accel
from regbench.metrics.base import Stats, StatsColumns, weighted_means
from regbench.metrics.geometry import iou_matrix
from regbench.metrics.matching import assign_padded, isolated
from regbench.metrics.region.blocks import ordered_sum, padded_blocks, padded_ids
from regbench.metrics.region.columns import MULTI_REGION, SINGLE_REGION, BoxColumns, name_ids
from regbench.metrics.region.plugin import RegionAligned
from regbench.metrics.region.scores import LEVELS, Value, column, precision_recall_f1
from regbench.parsing.medrega_released import NAME as RELEASED
from regbench.parsing.readings import ParsedColumns, ReadItems
from regbench.types import Parsed, Sample

HITS = "C"
"""Assigned pairs with IoU at or over the subtask's threshold."""
ALIGNED = "A"
"""Assigned pairs, of any IoU, whose names align."""
ALIGNED_HITS = "CA"
"""Assigned pairs that are hits and whose names align."""
IOU_SUM = "iou_sum"
"""IoU summed over the assigned pairs."""
PAIRS = "pairs"
"""Assigned pairs."""
COUNTS = (HITS, ALIGNED, ALIGNED_HITS, IOU_SUM, PAIRS)
"""What the multi-box evaluators count per sample."""
SINGLE_REGION_IOU = "ss_iou"
"""The single-object single-region evaluator's IoU (its samples have this and ``accuracy`` instead of the counts)."""
_LEVEL_COUNTS = dict(zip(LEVELS, (HITS, ALIGNED, ALIGNED_HITS), strict=True))


class MedregaRegion(RegionAligned, mode="medrega"):
    """Region / object / alignment P, R, F1, IoU and accuracy as MedRegA's released evaluators compute them."""

    reads = RELEASED
    aggregation = "corpus"  # the pooled IoU needs the whole split in finalize

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> StatsColumns:
        # (iterating the pairs would read each output of a ParsedColumns again)
        samples = list(items.samples) if isinstance(items, ReadItems) else [sample for _, sample in items]
        rows = self.rows(samples)
        pred = released_columns(items)
        ref = self.reference_columns(samples, rows, 4, str.lower)  # reference names only lower-cased, as released
        return released_records(pred, ref, self.subtasks(samples, rows), threshold=self.opts.iou_threshold)

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        scores: dict[str, float | None] = dict.fromkeys(self.keys)
        scores["accuracy"] = stats.get("accuracy")
        if SINGLE_REGION_IOU in stats:  # the single-region evaluator reports accuracy and IoU only
            scores["iou"] = stats[SINGLE_REGION_IOU]
            return scores
        multi_region = stats["subtask"] == MULTI_REGION
        for level, key in _LEVEL_COUNTS.items():
            if level != "region" and multi_region:
                continue  # that evaluator ignores names
            values = released_precision_recall_f1(stats[key], stats["n_pred"], stats["n_ref"])
            scores.update(zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), values, strict=True))
        pooled_over = stats[PAIRS] if multi_region else stats["n_ref"]
        scores["iou"] = stats[IOU_SUM] / pooled_over if pooled_over else None
        return scores

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray]:
        """The aggregates under each row of bootstrap draw counts: means of the per-sample values, and the
        IoU pooled as the released evaluators pool it (:func:`pooled_iou`)."""
        records = _RecordColumns.of(stats)
        values = released_scores(records)
        out = dict(zip(values, weighted_means(np.column_stack(list(values.values())), weights).T, strict=True))
        out["iou"] = pooled_iou(records, weights)
        return out


def released_precision_recall_f1(count: Value, n_pred: Value, n_ref: Value) -> tuple[Value, Value, Value]:
    """The released "precision" (count / reference boxes), "recall" (count / predicted boxes) and F1: the
    standard recall and precision under each other's names, 0 when there is nothing to divide by."""
    precision, recall, f1 = precision_recall_f1(count, n_pred, n_ref, both_empty=None)
    return recall, precision, f1


def released_columns(items: Sequence[tuple[Parsed, Sample]]) -> BoxColumns:
    """The predicted boxes as the released parser read them: the batch columns of the reading as they
    are, or the objects of each ``Parsed`` (which must come from the ``medrega_released`` reading)."""
    parsed = items.parsed if isinstance(items, ReadItems) else [p for p, _ in items]
    if isinstance(parsed, ParsedColumns):
        return BoxColumns.from_reading(parsed)
    other = [p.box_format for p in parsed if p.ok and p.box_format != RELEASED]
    if other:  # another reading's boxes would be scored silently as if the released parser had read them
        raise ValueError(
            f"region_aligned (mode: medrega) scores outputs read with the {RELEASED} box format, "
            f"got box format {other[0]!r} (read them with regbench.parsing.readings.read_outputs)"
        )
    return BoxColumns.from_regions((p.objects for p in parsed), 4, str)


def names_align(pred: str, ref: str) -> bool:
    """The released name check: an empty predicted name, or one name inside the other."""
    return pred == "" or pred in ref or ref in pred


def released_counts(pred: BoxColumns, ref: BoxColumns, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`COUNTS` per sample, as ``linear_sum_assignment(1 - IoU)`` gives them.

    ``thresholds`` holds each sample's hit threshold (>=). The assignment maximises total IoU,
    and the pairs are exactly scipy's, ties included: which zero-IoU pairs it adds decides
    the released "object" counts. Samples whose positive IoUs are isolated and already fill
    ``min(N, M)`` pairs have a unique optimum and need no solver.
    """
    out = {key: np.zeros(len(pred)) for key in COUNTS}
    pred_vocabulary: dict[str, int] = {}
    ref_vocabulary: dict[str, int] = {}
    (pred_ids,) = name_ids([pred], pred_vocabulary)
    (ref_ids,) = name_ids([ref], ref_vocabulary)
    # one extra row and column of False for the padding id -1
    aligns = np.zeros((len(pred_vocabulary) + 1, len(ref_vocabulary) + 1), dtype=bool)
    for name, i in pred_vocabulary.items():
        aligns[i, :-1] = [names_align(name, other) for other in ref_vocabulary]
    if accel.enabled(len(pred)) and pred.boxes.shape[1] == 4 and ref.boxes.shape[1] == 4:
        from regbench.metrics import _kernels  # imports numba: only when the compiled path runs

        found = _kernels.released_counts(
            np.ascontiguousarray(pred.boxes, dtype=np.float64),
            pred.counts.astype(np.int64),
            np.ascontiguousarray(ref.boxes, dtype=np.float64),
            ref.counts.astype(np.int64),
            pred_ids.astype(np.int64),
            ref_ids.astype(np.int64),
            aligns,
            np.asarray(thresholds, dtype=np.float64),
        )
        return dict(zip(COUNTS, found, strict=True))
    for block in padded_blocks(pred, ref):
        members, n_pred, n_ref = block.members, block.n_pred, block.n_ref
        iou = iou_matrix(block.pred_boxes, block.ref_boxes)
        positive = iou > 0
        assigned = positive.copy()
        hard = np.flatnonzero(~(isolated(positive) & (positive.sum(axis=(1, 2)) == np.minimum(n_pred, n_ref))))
        if hard.size:
            assigned[hard] = assign_padded(1.0 - iou[hard], n_pred[hard], n_ref[hard])
        pred_names = padded_ids(pred_ids, block.pred_index, -1)
        align = aligns[pred_names[:, :, None], padded_ids(ref_ids, block.ref_index, -1)[:, None, :]]
        hit = iou >= thresholds[members][:, None, None]
        out[HITS][members] = (assigned & hit).sum(axis=(1, 2))
        out[ALIGNED][members] = (assigned & align).sum(axis=(1, 2))
        out[ALIGNED_HITS][members] = (assigned & hit & align).sum(axis=(1, 2))
        out[IOU_SUM][members] = ordered_sum(assigned * iou)
        out[PAIRS][members] = assigned.sum(axis=(1, 2))
    return out


def single_region_iou(pred: BoxColumns, ref: BoxColumns) -> np.ndarray:
    """The single-object single-region evaluator's IoU: best box if more predictions than references, else the first."""
    out = np.zeros(len(pred))
    has = np.flatnonzero((pred.counts > 0) & (ref.counts > 0))
    if has.size == 0:
        return out
    pred_boxes, pred_index = pred.padded(has, int(pred.counts[has].max()))
    ref_boxes, _ = ref.padded(has, 1)
    iou = np.where(pred_index >= 0, iou_matrix(pred_boxes, ref_boxes)[:, :, 0], 0.0)
    more = pred.counts[has] > ref.counts[has]
    out[has] = np.where(more, iou.max(axis=1), iou[:, 0])
    return out


def released_records(
    pred: BoxColumns, ref: BoxColumns, subtasks: Sequence[str], *, threshold: float | None = None
) -> StatsColumns:
    """Per-sample records of the released evaluator of each sample's subtask: :data:`COUNTS` for the
    multi-box subtasks, :data:`SINGLE_REGION_IOU` and ``accuracy`` (IoU > threshold, strictly) for
    single-object single-region."""
    kinds = np.empty(len(subtasks), dtype=object)
    kinds[:] = subtasks
    thresholds = np.where(kinds == MULTI_REGION, 0.75, 0.5) if threshold is None else np.full(len(kinds), threshold)
    counts = released_counts(pred, ref, thresholds)
    single = kinds == SINGLE_REGION
    ss_iou = np.zeros(len(kinds))
    if single.any():
        members = np.flatnonzero(single)
        ss_iou[members] = single_region_iou(_take(pred, members), _take(ref, members))
    accuracy = (ss_iou > (threshold or 0.5)).astype(np.float64)  # strict, as in the released single-region evaluator
    multi = ~single
    return StatsColumns(
        {
            "subtask": kinds,
            "n_pred": pred.counts,
            "n_ref": ref.counts,
            **{key: counts[key] for key in COUNTS},
            SINGLE_REGION_IOU: ss_iou,
            "accuracy": accuracy,
        },
        present={**dict.fromkeys(COUNTS, multi), SINGLE_REGION_IOU: single, "accuracy": single},
    )


def _take(columns: BoxColumns, members: np.ndarray) -> BoxColumns:
    """The boxes of samples ``members`` only."""
    boxes, index = columns.padded(members, int(columns.counts[members].max()) if members.size else 0)
    keep = index >= 0
    return BoxColumns(boxes[keep], columns.counts[members], [columns.names[k] for k in index[keep].tolist()])


@dataclass
class _RecordColumns:
    """The record columns the aggregates use, each key read once (reading is most of finalize)."""

    kinds: np.ndarray
    """Each record's subtask (an object array)."""
    single_region: np.ndarray
    """Records of the single-object single-region evaluator."""
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, stats: Sequence[Stats]) -> _RecordColumns:
        keys = ("n_ref", "n_pred", *COUNTS, "accuracy", SINGLE_REGION_IOU)
        kinds = np.empty(len(stats), dtype=object)
        if isinstance(stats, StatsColumns):  # as stats_batch made them: no records to read
            kinds[:] = stats.columns["subtask"]
            return cls(kinds, stats.present[SINGLE_REGION_IOU], {key: stats.column(key) for key in keys})
        kinds[:] = [row["subtask"] for row in stats]
        single = np.fromiter(map(dict.__contains__, stats, repeat(SINGLE_REGION_IOU)), dtype=bool, count=len(stats))
        return cls(kinds, single, {key: column(stats, key) for key in keys})

    def kind(self, name: str) -> np.ndarray:
        return np.asarray(self.kinds == name, dtype=bool)


def released_scores(records: _RecordColumns) -> dict[str, np.ndarray]:
    """:meth:`MedregaRegion.sample_scores` of every record as columns (NaN where a value does not apply)."""
    single, multi_region = records.kind(SINGLE_REGION), records.kind(MULTI_REGION)
    n_pred, n_ref = records.columns["n_pred"], records.columns["n_ref"]
    out = {}
    for level, key in _LEVEL_COUNTS.items():
        count = np.nan_to_num(records.columns[key])
        values = released_precision_recall_f1(count, n_pred, n_ref)
        unused = single | multi_region if level != "region" else single
        for name, value in zip(("precision", "recall", "f1"), values, strict=True):
            out[f"{level}_{name}"] = np.where(unused, np.nan, value)
    out["accuracy"] = records.columns["accuracy"]
    return out


def pooled_iou(records: _RecordColumns, weights: np.ndarray) -> np.ndarray:
    """The IoU under each row of draw counts: summed IoU of assigned pairs / summed reference boxes (assigned
    pairs in single-object multi-region); the single-region evaluator's per-sample IoU weighted in by its
    samples."""
    single, multi_region, columns = records.single_region, records.kind(MULTI_REGION), records.columns
    iou_sum = np.where(single, 0.0, np.nan_to_num(columns[IOU_SUM]))
    boxes = np.where(single, 0.0, np.where(multi_region, columns[PAIRS], columns["n_ref"]))
    ss_iou = np.where(single, np.nan_to_num(columns[SINGLE_REGION_IOU]), 0.0)
    n_pooled, n_single, den = weights @ ~single, weights @ single, weights @ np.nan_to_num(boxes)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(den > 0, (weights @ iou_sum) / den, 0.0)
        singles = (weights @ ss_iou) / n_single
        mixed = (pooled * n_pooled + singles * n_single) / (n_pooled + n_single)
    return np.where(n_single == 0, np.where(n_pooled > 0, pooled, np.nan), np.where(n_pooled == 0, singles, mixed))
