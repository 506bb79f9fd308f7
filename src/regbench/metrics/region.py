"""Region-aligned metrics (MedRegA §5.2, Algorithm 1), first simple form: standard mode, 2D.

To be replaced by the full implementation (modes, 3D, subtasks, vectorised batches).
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from regbench.metrics.base import Metric, Stats, register_metric
from regbench.types import Parsed, Region, Sample


def pairwise_iou(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """IoU of every predicted box (rows) with every reference box (columns), 2D ``[x1, y1, x2, y2]``."""
    if len(pred) == 0 or len(ref) == 0:
        return np.zeros((len(pred), len(ref)))
    lo = np.maximum(pred[:, None, :2], ref[None, :, :2])
    hi = np.minimum(pred[:, None, 2:], ref[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=-1)
    area_p = (pred[:, 2:] - pred[:, :2]).prod(axis=-1)
    area_r = (ref[:, 2:] - ref[:, :2]).prod(axis=-1)
    union = area_p[:, None] + area_r[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(iou: np.ndarray, threshold: float, allowed: np.ndarray | None = None) -> tuple[int, float]:
    """One-to-one matching that maximises the hits (IoU >= threshold), then the total IoU.

    Returns the number of hits and the total IoU of the assignment.
    """
    if iou.size == 0:
        return 0, 0.0
    usable = iou if allowed is None else np.where(allowed, iou, 0.0)
    hit = (usable >= threshold) & (usable > 0)
    # A hit outweighs any amount of IoU: each pair's IoU is < 1, and there are at most min(N, M) pairs.
    weight = hit * (min(iou.shape) + 1.0) + usable
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return int(hit[rows, cols].sum()), float(usable[rows, cols].sum())


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower()).rstrip(".,;:")


def _flatten(regions: list[Region]) -> tuple[np.ndarray, list[str]]:
    boxes = [box for region in regions for box in region.boxes if len(box) == 4]
    names = [_normalise(region.name) for region in regions for box in region.boxes if len(box) == 4]
    return np.asarray(boxes, dtype=float).reshape(-1, 4), names


def _prf(hits: float, n_pred: int, n_ref: int) -> tuple[float, float, float]:
    if n_pred == 0 and n_ref == 0:
        return 1.0, 1.0, 1.0
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@register_metric("region_aligned")
class RegionAligned(Metric):
    """Region, object and alignment precision / recall / F1 and IoU (standard definitions)."""

    keys = {
        **{f"{level}_{m}": True for level in ("region", "object", "alignment") for m in ("precision", "recall", "f1")},
        "iou": True,
    }

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        iou_threshold: float = Field(0.5, gt=0, le=1)
        subtask: str | None = None

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        threshold = self.options.iou_threshold  # type: ignore[attr-defined]
        pred, pred_names = _flatten(parsed.objects)
        ref, ref_names = _flatten(sample.objects)
        iou = pairwise_iou(pred, ref)
        hits, total_iou = match(iou, threshold)
        same_name = np.array([[p == r for r in ref_names] for p in pred_names], dtype=bool).reshape(iou.shape)
        aligned, _ = match(iou, threshold, allowed=same_name)
        pred_set, ref_set = set(pred_names), set(ref_names)
        row: Stats = {}
        for level, (h, n, m) in {
            "region": (hits, len(pred), len(ref)),
            "object": (len(pred_set & ref_set), len(pred_set), len(ref_set)),
            "alignment": (aligned, len(pred), len(ref)),
        }.items():
            p, r, f = _prf(h, n, m)
            row.update({f"{level}_precision": p, f"{level}_recall": r, f"{level}_f1": f})
        denominator = max(len(pred), len(ref))
        row["iou"] = total_iou / denominator if denominator else 1.0
        return row
