"""One-to-one box matching, for one sample or for a batch of samples of the same shape.

The standard matching first maximises the number of pairs with IoU >= threshold, then the
total IoU; both are one maximum-weight assignment with weights ``hit * (K + 1) + iou``
(``K = min(N, M)``: one more hit is worth more than any amount of IoU). MedRegA's released
code maximises the total IoU only (``linear_sum_assignment(1 - iou)``) and thresholds
afterwards, which can count fewer hits: for IoU ``[[1.0, 0.5], [0.5, 0.05]]`` at 0.5 the total
prefers the diagonal (1.05 > 1.0), one hit, where the anti-diagonal has two.

For small samples (``P(max(N, M), min(N, M)) <= MAX_PERMUTATIONS`` injective maps) the batch
function scores every assignment of every sample in one numpy expression; larger ones fall
back to ``scipy.optimize.linear_sum_assignment`` per sample. Both find a maximum-weight
assignment, so counts and sums agree; among equal-weight assignments they may pick
different pairs.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_PERMUTATIONS = 720


def threshold_weights(iou: np.ndarray, threshold: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """Weights whose maximum assignment has the most hits (IoU >= threshold), then the most IoU."""
    usable = iou if allowed is None else np.where(allowed, iou, 0.0)
    k = min(iou.shape[-2:]) if iou.ndim >= 2 else 1
    return (usable >= threshold) * (k + 1.0) + usable


def assign(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a maximum-weight one-to-one assignment (min(N, M) pairs)."""
    if weights.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return linear_sum_assignment(weights, maximize=True)


@functools.cache
def _injections(n: int, m: int) -> np.ndarray:
    """Every injective map from n rows to m columns (n <= m), shape (P(m, n), n)."""
    return np.array(list(itertools.permutations(range(m), n)), dtype=np.intp).reshape(-1, n)


def _count_injections(n: int, m: int) -> int:
    count = 1
    for i in range(n):
        count *= m - i
    return count


def assign_batch(weights: np.ndarray) -> np.ndarray:
    """Maximum-weight assignment of every sample in a ``(B, N, M)`` batch (weights >= 0), as a boolean mask.

    Samples whose positive weights are isolated (at most one per row and per column: boxes
    that overlap only their own counterpart) are assigned directly; the pairs of zero weight
    such an assignment leaves open are not chosen, as they add nothing. Other samples are
    solved exactly, by enumeration or by scipy.
    """
    batch, n, m = weights.shape
    mask = np.zeros(weights.shape, dtype=bool)
    if batch == 0 or n == 0 or m == 0:
        return mask
    positive = weights > 0
    isolated = (positive.sum(axis=2) <= 1).all(axis=1) & (positive.sum(axis=1) <= 1).all(axis=1)
    mask[isolated] = positive[isolated]
    rest = np.flatnonzero(~isolated)
    if rest.size:
        mask[rest] = _assign_dense(weights[rest])
    return mask


def _assign_dense(weights: np.ndarray) -> np.ndarray:
    batch, n, m = weights.shape
    mask = np.zeros(weights.shape, dtype=bool)
    if n > m:
        return _assign_dense(np.swapaxes(weights, 1, 2)).swapaxes(1, 2)
    if _count_injections(n, m) > MAX_PERMUTATIONS:
        for b in range(batch):
            rows, cols = linear_sum_assignment(weights[b], maximize=True)
            mask[b, rows, cols] = True
        return mask
    maps = _injections(n, m)  # (P, n)
    totals = weights[:, np.arange(n)[None, :], maps].sum(axis=-1)  # (B, P)
    best = maps[totals.argmax(axis=1)]  # (B, n)
    mask[np.arange(batch)[:, None], np.arange(n)[None, :], best] = True
    return mask
