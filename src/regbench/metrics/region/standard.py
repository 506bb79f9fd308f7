"""``region_aligned`` in ``mode: standard`` (the default) and ``mode: m3d``.

Threshold-aware one-to-one matching: most hits, then most IoU (:mod:`regbench.metrics.matching`);
precision = hits / predicted boxes, recall = hits / reference boxes; names normalised and
compared exactly (plus task synonyms) for ``object_*`` (distinct names) and ``alignment_*``
(a pair matches only when the names agree); ``iou`` = total IoU of the region assignment /
max(N, M); ``accuracy`` on single-object single-region samples (the best predicted box
reaches the threshold). Per-sample values, averaged. True IoU in 2D and 3D; 2D and 3D samples
are scored apart, and boxes of the other dimension than the reference are ignored.

``mode: m3d`` (:class:`M3DRegion`) is the same matching with M3D's enclosing-box "IoU" and
hits at IoU > 0.2.

Per-sample records (samples.jsonl ``stats``): ``subtask``; ``n_pred`` and ``n_ref`` (boxes);
``hits`` (assigned pairs at the threshold); ``aligned`` (hits of the name-constrained
assignment); ``iou_sum`` (IoU summed over the region assignment's pairs); ``names_pred``,
``names_ref``, ``names_both`` (distinct normalised names predicted, in the reference, in both);
``accuracy`` (single-object single-region samples with a reference box).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from operator import itemgetter
from typing import ClassVar

import numpy as np

from regbench.metrics.base import Stats, weighted_means
from regbench.metrics.geometry import enclosing_iou_matrix, iou_matrix, reaches
from regbench.metrics.matching import max_weight_assignment, threshold_weights
from regbench.metrics.region.blocks import ordered_sum, padded_blocks, padded_ids
from regbench.metrics.region.columns import SINGLE_REGION, BoxColumns, name_ids, normalise_name
from regbench.metrics.region.plugin import RegionAligned
from regbench.metrics.region.scores import column, precision_recall_f1, ratio
from regbench.types import Parsed, Sample

_COUNTS = ("hits", "aligned", "iou_sum", "names_pred", "names_ref", "names_both")


class StandardRegion(RegionAligned, mode="standard"):
    """Region / object / alignment P, R, F1, IoU and accuracy by threshold-aware matching (docs/region-metrics.md)."""

    enclosing_iou: ClassVar[bool] = False
    """M3D's enclosing-box IoU instead of the true IoU."""

    def threshold(self) -> tuple[float, bool]:
        """(hit threshold, whether a hit must exceed it rather than reach it)."""
        return self.opts.iou_threshold or 0.5, False

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        samples = list(map(itemgetter(1), items))
        rows = self.rows(samples)
        subtasks = self.subtasks(samples, rows)
        synonyms = {normalise_name(k): normalise_name(v) for k, v in self.opts.synonyms.items()}
        # names repeat across samples: normalise each distinct one once
        predicted_name = functools.cache(lambda n: normalise_name(n, synonyms))
        reference_name = functools.cache(normalise_name)
        threshold, strict = self.threshold()
        if self._index is not None and rows is not None:  # a sample without boxes counts as 2D, as below
            dims = np.where(self._index.read.counts[rows] > 0, self._index.dims, 4).tolist()
        else:
            dims = [next((len(b) for r in s.objects for b in r.boxes), 4) for s in samples]
        records: list[Stats] = [{} for _ in items]
        for d in sorted(set(dims)):  # 2D and 3D samples are scored apart
            idx = [i for i, x in enumerate(dims) if x == d]
            pred = BoxColumns.from_regions((items[i][0].objects for i in idx), d, predicted_name)
            members = [samples[i] for i in idx]
            ref = self.reference_columns(members, None if rows is None else rows[idx], d, reference_name)
            counts = standard_counts(pred, ref, threshold=threshold, strict=strict, enclosing=self.enclosing_iou)
            found = standard_records(counts, pred.counts, ref.counts, subtasks[idx], threshold=threshold, strict=strict)
            for i, row in zip(idx, found, strict=True):
                records[i] = row
        return records

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {**dict.fromkeys(self.keys), **standard_scores(stats)}  # type: ignore[arg-type]

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray]:
        """Means of the per-sample values under each row of bootstrap draw counts, on columns."""
        values = standard_scores({key: column(stats, key) for key in ("n_pred", "n_ref", *_COUNTS, "accuracy")})
        return dict(zip(values, weighted_means(np.column_stack(list(values.values())), weights).T, strict=True))


class M3DRegion(StandardRegion, mode="m3d"):
    """M3D's positioning evaluation: enclosing-box IoU, hits at IoU > 0.2."""

    enclosing_iou = True

    def threshold(self) -> tuple[float, bool]:
        return self.opts.iou_threshold or 0.2, True


def standard_scores(counts: Stats) -> Stats:
    """The metric values of one record, or of columns of records (``counts``: key -> number or column)."""
    n, m = counts["n_pred"], counts["n_ref"]
    levels = {
        "region": (counts["hits"], n, m),
        "object": (counts["names_both"], counts["names_pred"], counts["names_ref"]),
        "alignment": (counts["aligned"], n, m),
    }
    scores: Stats = {}
    for level, (matched, n_pred, n_ref) in levels.items():
        values = precision_recall_f1(matched, n_pred, n_ref)
        scores.update(zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), values, strict=True))
    largest = np.maximum(n, m) if isinstance(n, np.ndarray) else max(n, m)
    scores["iou"] = ratio(counts["iou_sum"], largest, zero=1.0)
    scores["accuracy"] = counts.get("accuracy")
    return scores


def standard_counts(
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
    for block in padded_blocks(pred, ref):
        iou = (enclosing_iou_matrix if enclosing else iou_matrix)(block.pred_boxes, block.ref_boxes)
        hit = reaches(iou, threshold, strict=strict)
        pred_names = padded_ids(pred_ids, block.pred_index, -1)
        same = pred_names[:, :, None] == padded_ids(ref_ids, block.ref_index, -2)[:, None, :]
        region = max_weight_assignment(threshold_weights(iou, hit), block.n_pred, block.n_ref)
        aligned = max_weight_assignment(threshold_weights(iou, hit, same), block.n_pred, block.n_ref)
        members = block.members
        out["hits"][members] = (region & hit).sum(axis=(1, 2))
        out["aligned"][members] = (aligned & hit & same).sum(axis=(1, 2))
        out["iou_sum"][members] = ordered_sum(region * iou)
        out["best_iou"][members] = iou[:, :, 0].max(axis=1)
    out.update(_distinct_names(pred, ref, pred_ids, ref_ids, len(vocabulary)))
    return out


def _distinct_names(
    pred: BoxColumns, ref: BoxColumns, pred_ids: np.ndarray, ref_ids: np.ndarray, vocabulary: int
) -> dict[str, np.ndarray]:
    """Distinct names per sample: predicted, reference, and in both."""
    size = len(pred)
    width = max(vocabulary, 1)
    pred_keys = np.unique(np.repeat(np.arange(size), pred.counts) * width + pred_ids)
    ref_keys = np.unique(np.repeat(np.arange(size), ref.counts) * width + ref_ids)
    both = np.intersect1d(pred_keys, ref_keys, assume_unique=True)
    return {
        "names_pred": np.bincount(pred_keys // width, minlength=size).astype(np.float64),
        "names_ref": np.bincount(ref_keys // width, minlength=size).astype(np.float64),
        "names_both": np.bincount(both // width, minlength=size).astype(np.float64),
    }


def standard_records(
    counts: dict[str, np.ndarray],
    n_pred: np.ndarray,
    n_ref: np.ndarray,
    subtasks: Sequence[str],
    *,
    threshold: float,
    strict: bool,
) -> list[Stats]:
    """Per-sample records (sufficient statistics) of the standard and m3d modes: the counts, and
    ``accuracy`` on single-object single-region samples. :func:`standard_scores` turns them into values."""
    values = {"n_pred": n_pred, "n_ref": n_ref, **{key: counts[key] for key in _COUNTS}}
    keys = ["subtask", *values]
    columns = [list(subtasks), *(np.asarray(v).tolist() for v in values.values())]  # plain Python numbers
    records = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    accurate = reaches(counts["best_iou"], threshold, strict=strict)
    for i in np.flatnonzero((np.asarray(subtasks) == SINGLE_REGION) & (np.asarray(n_ref) > 0)).tolist():
        records[i]["accuracy"] = float(accurate[i])  # (nothing to find: no accuracy)
    return records
