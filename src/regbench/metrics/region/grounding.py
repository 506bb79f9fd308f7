"""``grounding`` (one box per query: M4CXR phrase grounding, M3D REC) and ``box_regression`` (VividMed)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.geometry import enclosing_iou_matrix, giou_matrix, iou_matrix, l1_matrix, reaches
from regbench.metrics.region.columns import BoxColumns
from regbench.types import Parsed, Sample


class GroundingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    mode: Literal["standard", "m3d"] = "standard"
    """``m3d``: M3D's enclosing-box "IoU" for 3D boxes (docs/region-metrics.md)."""
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
    key_bounds = {"giou": (-1.0, 1.0), "giou_loss": (0.0, 2.0)}

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
