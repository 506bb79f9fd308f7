"""Box geometry, vectorised over all pairs: IoU (2D and 3D), M3D's enclosing-box "IoU", GIoU, l1.

Boxes are ``[x1, y1, x2, y2]`` or ``[x1, y1, z1, x2, y2, z2]`` (corners, 0–1). Every
function takes arrays of shape ``(..., N, 2d)`` and ``(..., M, 2d)`` and returns ``(..., N, M)``,
so a batch of samples padded to the same ``N`` and ``M`` is one call. A degenerate box
(zero width, height or depth) has IoU 0 with everything, itself included.
"""

from __future__ import annotations

import numpy as np


def _corners(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    d = pred.shape[-1] // 2
    if pred.shape[-1] != ref.shape[-1] or pred.shape[-1] not in (4, 6):
        raise ValueError(f"boxes must both be 2D (4 numbers) or 3D (6 numbers), got {pred.shape} and {ref.shape}")
    p_lo, p_hi = pred[..., :, None, :d], pred[..., :, None, d:]
    r_lo, r_hi = ref[..., None, :, :d], ref[..., None, :, d:]
    return p_lo, p_hi, r_lo, r_hi


def _volume(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip(hi - lo, 0.0, None).prod(axis=-1)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def iou_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Intersection over union of every predicted box with every reference box (2D or 3D)."""
    p_lo, p_hi, r_lo, r_hi = _corners(pred, ref)
    inter = _volume(np.maximum(p_lo, r_lo), np.minimum(p_hi, r_hi))
    p_vol, r_vol = _volume(p_lo, p_hi), _volume(r_lo, r_hi)
    union = p_vol + r_vol - inter
    # Degenerate boxes score 0 even against themselves (0 / 0).
    return _safe_divide(inter, np.where((p_vol > 0) & (r_vol > 0), union, 0.0))


def enclosing_iou_matrix(pred: np.ndarray, ref: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """M3D's released ``calculate_iou``: intersection over the *enclosing box* volume (+1e-6).

    Always <= the true IoU (equal only when one box contains the other).
    """
    p_lo, p_hi, r_lo, r_hi = _corners(pred, ref)
    inter = _volume(np.maximum(p_lo, r_lo), np.minimum(p_hi, r_hi))
    hull = _volume(np.minimum(p_lo, r_lo), np.maximum(p_hi, r_hi))
    return inter / (hull + eps)


def giou_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Generalised IoU: IoU - (hull - union) / hull, in [-1, 1]."""
    p_lo, p_hi, r_lo, r_hi = _corners(pred, ref)
    inter = _volume(np.maximum(p_lo, r_lo), np.minimum(p_hi, r_hi))
    union = _volume(p_lo, p_hi) + _volume(r_lo, r_hi) - inter
    hull = _volume(np.minimum(p_lo, r_lo), np.maximum(p_hi, r_hi))
    return _safe_divide(inter, union) - _safe_divide(hull - union, hull)


def l1_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the corner coordinates (VividMed's l1, 0–1 units)."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return np.abs(pred[..., :, None, :] - ref[..., None, :, :]).mean(axis=-1)
