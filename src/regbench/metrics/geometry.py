"""Box geometry, vectorised over all pairs: IoU (2D and 3D), M3D's enclosing-box "IoU", GIoU, l1.

Boxes are ``[x1, y1, x2, y2]`` or ``[x1, y1, z1, x2, y2, z2]`` (corners, 0–1). Every
function takes arrays of shape ``(..., N, 2d)`` and ``(..., M, 2d)`` and returns ``(..., N, M)``,
so a batch of samples padded to the same ``N`` and ``M`` is one call. A degenerate box
(zero width, height or depth) has IoU 0 with everything, itself included.

The arithmetic follows torchvision's ``box_iou`` (intersection = product of clamped sides,
union = area + area - intersection), so values are bit-identical to it in float64. Work is
done on contiguous coordinate planes: slicing the last axis of a ``(B, N, 4)`` array gives
strided views, on which the same expressions are much slower.
"""

from __future__ import annotations

import numpy as np

IOU_TOLERANCE = 1e-9
"""Rounding allowed when an IoU is compared with a threshold: a pair whose exact IoU equals the
threshold (a half overlap on the 0-999 grid) can come out a hair below it in floating point."""


def reaches(iou: np.ndarray | float, threshold: float, *, strict: bool = False) -> np.ndarray:
    """IoU >= threshold (``strict``: > threshold), up to :data:`IOU_TOLERANCE`.

    >>> bool(reaches(0.4999999999999999, 0.5)), bool(reaches(0.2000000000000001, 0.2, strict=True))
    (True, False)
    """
    if strict:
        return np.greater(iou, threshold + IOU_TOLERANCE)
    return np.greater_equal(iou, threshold - IOU_TOLERANCE)


def _planes(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape[-1] != ref.shape[-1] or pred.shape[-1] not in (4, 6):
        raise ValueError(f"boxes must both be 2D (4 numbers) or 3D (6 numbers), got {pred.shape} and {ref.shape}")
    # (2d, ..., N) and (2d, ..., M): one contiguous array per coordinate.
    return (
        np.ascontiguousarray(np.moveaxis(pred, -1, 0)),
        np.ascontiguousarray(np.moveaxis(ref, -1, 0)),
        pred.shape[-1] // 2,
    )


def _sides(p: np.ndarray, r: np.ndarray, d: int, *, hull: bool) -> np.ndarray:
    """Product over axes of the clamped overlap (or, with ``hull``, the enclosing) extent, shape (..., N, M)."""
    out: np.ndarray | None = None
    for k in range(d):
        if hull:
            side = np.maximum(p[k + d][..., :, None], r[k + d][..., None, :])
            side -= np.minimum(p[k][..., :, None], r[k][..., None, :])
        else:
            side = np.minimum(p[k + d][..., :, None], r[k + d][..., None, :])
            side -= np.maximum(p[k][..., :, None], r[k][..., None, :])
        np.maximum(side, 0.0, out=side)
        if out is None:
            out = side
        else:
            out *= side
    assert out is not None
    return out


def _volumes(planes: np.ndarray, d: int) -> np.ndarray:
    out = np.maximum(planes[d] - planes[0], 0.0)
    for k in range(1, d):
        out *= np.maximum(planes[k + d] - planes[k], 0.0)
    return out


def iou_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Intersection over union of every predicted box with every reference box (2D or 3D).

    Examples
    --------
    >>> iou_matrix([[0, 0, 0.4, 0.4]], [[0.1, 0, 0.5, 0.4], [0.5, 0.5, 0.9, 0.9]]).round(4).tolist()
    [[0.6, 0.0]]
    """
    p, r, d = _planes(pred, ref)
    inter = _sides(p, r, d, hull=False)
    p_vol, r_vol = _volumes(p, d)[..., :, None], _volumes(r, d)[..., None, :]
    union = p_vol + r_vol
    union -= inter
    # Degenerate boxes score 0 even against themselves (0 / 0).
    return np.divide(inter, union, out=np.zeros_like(inter), where=(p_vol > 0) & (r_vol > 0))


def enclosing_iou_matrix(pred: np.ndarray, ref: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """M3D's released ``calculate_iou``: intersection over the *enclosing box* volume (+1e-6).

    Always <= the true IoU (equal only when one box contains the other). For ``[0, 0, 0, .6, .6, .6]``
    and ``[.17, .17, .17, .77, .77, .77]``: true IoU 0.2256, this value 0.1742.
    """
    p, r, d = _planes(pred, ref)
    return _sides(p, r, d, hull=False) / (_sides(p, r, d, hull=True) + eps)


def giou_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Generalised IoU: IoU - (hull - union) / hull, in [-1, 1]."""
    p, r, d = _planes(pred, ref)
    inter = _sides(p, r, d, hull=False)
    union = _volumes(p, d)[..., :, None] + _volumes(r, d)[..., None, :] - inter
    hull = _sides(p, r, d, hull=True)
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou - np.divide(hull - union, hull, out=np.zeros_like(hull), where=hull > 0)


def l1_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the corner coordinates (VividMed's l1, 0–1 units)."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return np.abs(pred[..., :, None, :] - ref[..., None, :, :]).mean(axis=-1)
