"""One-to-one box matching for a whole batch of samples at once.

The standard matching first maximises the number of pairs with IoU >= threshold, then the
total IoU; both are one maximum-weight assignment with weights ``hit * (K + 1) + iou``
(``K = min(N, M)``: one more hit is worth more than any amount of IoU, see
:func:`threshold_weights`). MedRegA's released code maximises the total IoU only
(``linear_sum_assignment(1 - iou)``) and thresholds afterwards, which can count fewer hits:
for IoU ``[[1.0, 0.5], [0.5, 0.05]]`` at 0.5 the total prefers the diagonal (1.05 > 1.0), one
hit, where the anti-diagonal has two.

Samples are tiny (a handful of boxes) and many, so calling scipy once per sample is the slow
part of scoring. :func:`linear_sum_assignment_batch` runs scipy's own algorithm (the shortest
augmenting path method of Crouse 2016, as in ``scipy/optimize/rectangular_lsap``) on every
sample of a padded batch in lock step, one numpy expression per step. It makes the same
floating-point comparisons in the same order, so it returns the very pairs scipy returns,
ties included (tested against the installed scipy on tie-heavy matrices): MedRegA's "object"
counts depend on which zero-IoU pairs scipy picks among equals. With numba installed, a
compiled port of the same algorithm (:func:`regbench.metrics._kernels.lsap`) replaces it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from regbench import accel

# Above this many rows, the lock-step assignment costs more Python steps than scipy per sample.
LOCKSTEP_MAX_ROWS = 16


def threshold_weights(iou: np.ndarray, hit: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Weights whose maximum assignment has the most hits, then the most IoU.

    ``hit`` marks the pairs that count as hits (IoU at or over the threshold, see
    :func:`regbench.metrics.geometry.reaches`); ``allowed`` (same shape, boolean) restricts the
    pairs that may score at all (name-constrained matching for the alignment level).
    """
    if allowed is not None:
        hit, iou = hit & allowed, np.where(allowed, iou, 0.0)
    k = min(iou.shape[-2:]) if iou.ndim >= 2 else 1
    return np.where(hit, k + 1.0, 0.0) + iou


def isolated(positive: np.ndarray) -> np.ndarray:
    """Samples of a ``(B, N, M)`` boolean batch with at most one ``True`` per row and per column.

    When only the ``True`` pairs have positive weight and they are isolated, they are a
    maximum-weight assignment by themselves (the rest only adds zero-weight pairs).
    """
    return (positive.sum(axis=2) <= 1).all(axis=1) & (positive.sum(axis=1) <= 1).all(axis=1)


def linear_sum_assignment_batch(cost: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``scipy.optimize.linear_sum_assignment(cost[b])`` for every ``b`` of a ``(B, R, C)`` batch, R <= C.

    Parameters
    ----------
    cost : float array ``(B, R, C)``; padding columns must be ``+inf`` (never chosen).
    rows : real rows of each sample (``(B,)``, default ``R``); rows past it are skipped.

    Returns
    -------
    ``col4row`` ``(B, R)``: the column assigned to each row, ``-1`` for skipped rows.

    Notes
    -----
    Padding is exact: scipy scans the remaining columns starting from the highest index, so
    padding columns (highest indices, infinite cost) sit in front of the scan, are never the
    minimum, and leave the order in which real columns are met unchanged.

    This follows scipy 1.17's ``rectangular_lsap.cpp``, which transposes a tall matrix (here the
    caller does, :func:`assign_padded`) and works on the costs as given. scipy's development
    branch subtracts the smallest cost first, which rounds differently and can break a few ties
    the other way; ``tests/test_matching.py`` compares with the installed scipy and would say so.
    """
    cost = np.asarray(cost, dtype=np.float64)
    batch, n_rows, n_cols = cost.shape
    rows = np.full(batch, n_rows) if rows is None else np.asarray(rows)
    u = np.zeros((batch, n_rows))
    v = np.zeros((batch, n_cols))
    col4row = np.full((batch, n_rows), -1, dtype=np.intp)
    row4col = np.full((batch, n_cols), -1, dtype=np.intp)
    start = np.arange(n_cols)[::-1]  # position of column j in scipy's list of remaining columns
    for current in range(n_rows):
        act = np.flatnonzero(rows > current)
        k = act.size
        if k == 0:
            break
        # the samples that have this row, as local arrays (views when it is all of them)
        every = k == batch
        costs = cost if every else cost[act]
        u_, v_ = (u, v) if every else (u[act], v[act])
        c4r, r4c = (col4row, row4col) if every else (col4row[act], row4col[act])
        found = _shortest_paths(costs, u_, v_, r4c, current, start)
        min_val, lengths = found.min_val, found.lengths
        # dual update, as scipy does it
        u_[:, current] += min_val
        other = found.seen_rows
        other[:, current] = False
        delta = min_val[:, None] - lengths[np.arange(k)[:, None], np.maximum(c4r, 0)]
        np.add(u_, delta, out=u_, where=other)
        np.subtract(v_, min_val[:, None] - lengths, out=v_, where=found.seen_cols)
        # augment along the path
        col = found.sink.copy()
        going = np.arange(k)
        while going.size:
            j = col[going]
            i = found.path[going, j]
            r4c[going, j] = i
            previous = c4r[going, i]
            c4r[going, i] = j
            col[going] = previous
            going = going[i != current]
        if not every:
            u[act], v[act], col4row[act], row4col[act] = u_, v_, c4r, r4c
    return col4row


class _Paths(NamedTuple):
    """What scipy's ``augmenting_path`` leaves behind, for a batch."""

    min_val: np.ndarray
    sink: np.ndarray
    lengths: np.ndarray
    """``shortestPathCosts``."""
    path: np.ndarray
    seen_rows: np.ndarray
    seen_cols: np.ndarray


def _shortest_paths(
    cost: np.ndarray, u: np.ndarray, v: np.ndarray, row4col: np.ndarray, current: int, start: np.ndarray
) -> _Paths:
    """scipy's ``augmenting_path`` from row ``current``, for every sample of the batch in lock step."""
    k, n_rows, n_cols = cost.shape
    lengths = np.full((k, n_cols), np.inf)
    path = np.full((k, n_cols), -1, dtype=np.intp)
    seen_rows = np.zeros((k, n_rows), dtype=bool)
    seen_cols = np.zeros((k, n_cols), dtype=bool)
    position = np.tile(start, (k, 1))  # -1 once a column leaves the remaining list
    row = np.full(k, current, dtype=np.intp)
    min_val = np.zeros(k)
    sink = np.full(k, -1, dtype=np.intp)
    live = np.arange(k)
    while live.size:  # one step for every sample still searching
        full = live.size == k
        i = row[live]
        seen_rows[live, i] = True
        if full:
            reduced = ((min_val[:, None] + cost[live, i]) - u[live, i][:, None]) - v
            pos, best, trail, owner = position, lengths, path, row4col
        else:
            reduced = ((min_val[live, None] + cost[live, i]) - u[live, i][:, None]) - v[live]
            pos, best, trail, owner = position[live], lengths[live], path[live], row4col[live]
        remaining = pos >= 0
        better = remaining & (reduced < best)  # scipy's order of operations, so the same floats
        np.copyto(best, reduced, where=better)
        np.copyto(trail, i[:, None], where=better)
        lowest = np.where(remaining, best, np.inf).min(axis=1)
        is_min = remaining & (best == lowest[:, None])
        free_min = is_min & (owner == -1)
        has_free = free_min.any(axis=1)
        # scipy keeps the first minimum met, but moves on to any later one that is a free column
        col = np.where(
            has_free,
            np.argmax(np.where(free_min, pos, -1), axis=1),
            np.argmin(np.where(is_min, pos, n_cols), axis=1),
        )
        here = np.arange(live.size)
        last = np.argmax(pos, axis=1)  # scipy moves its last remaining column into the hole
        pos[here, last] = pos[here, col]
        pos[here, col] = -1
        if not full:
            position[live], lengths[live], path[live] = pos, best, trail
        min_val[live] = lowest
        seen_cols[live, col] = True
        sink[live[has_free]] = col[has_free]
        row[live[~has_free]] = owner[here[~has_free], col[~has_free]]
        live = live[~has_free]
    return _Paths(min_val, sink, lengths, path, seen_rows, seen_cols)


def assign_padded(cost: np.ndarray, n: np.ndarray, m: np.ndarray, *, maximize: bool = False) -> np.ndarray:
    """Exactly scipy's assignment of every sample of a padded batch, as a boolean mask.

    With numba installed (:mod:`regbench.metrics.accel`), a compiled port of scipy's algorithm
    runs per sample in one loop. Otherwise blocks of up to ``LOCKSTEP_MAX_ROWS`` rows (or
    columns) run in lock step, and larger samples (rare) go to scipy one by one.

    Parameters
    ----------
    cost : ``(B, N, M)``; sample ``b`` uses ``cost[b, :n[b], :m[b]]`` (the rest is ignored).
    n, m : real rows and columns of each sample.
    maximize : as scipy's ``maximize`` (the cost is negated).

    Returns
    -------
    ``(B, N, M)`` boolean mask of the ``min(n, m)`` assigned pairs of each sample.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if accel.enabled(len(cost)):
        from regbench.metrics import _kernels  # imports numba: only when the compiled path runs

        n, m = np.asarray(n, dtype=np.int64), np.asarray(m, dtype=np.int64)
        return _kernels.assign_batch(np.ascontiguousarray(cost), n, m, maximize)
    if min(cost.shape[1], cost.shape[2]) <= LOCKSTEP_MAX_ROWS:
        return _lockstep_assign(cost, np.asarray(n), np.asarray(m), maximize=maximize)
    mask = np.zeros(cost.shape, dtype=bool)
    for b in range(len(cost)):
        rows, cols = linear_sum_assignment(cost[b, : n[b], : m[b]], maximize=maximize)
        mask[b, rows, cols] = True
    return mask


def _lockstep_assign(cost: np.ndarray, n: np.ndarray, m: np.ndarray, *, maximize: bool) -> np.ndarray:
    batch, size_n, size_m = cost.shape
    mask = np.zeros(cost.shape, dtype=bool)
    if batch == 0 or size_n == 0 or size_m == 0:
        return mask
    # scipy solves a tall matrix transposed; give every sample at most as many rows as columns
    transposed = n > m
    rows, cols = np.minimum(n, m), np.maximum(n, m)
    size_r, size_c = int(rows.max()), int(cols.max())
    square = np.empty((batch, size_r, size_c))
    for members, block in ((np.flatnonzero(~transposed), cost), (np.flatnonzero(transposed), None)):
        if members.size == 0:
            continue
        part = cost[members] if block is not None else cost[members].swapaxes(1, 2)
        part = part[:, :size_r, :size_c]
        square[members, : part.shape[1], : part.shape[2]] = -part if maximize else part
    # columns past a sample's own are padding: +inf is never chosen (rows past it are skipped)
    np.copyto(square, np.inf, where=np.arange(size_c)[None, None, :] >= cols[:, None, None])
    col4row = linear_sum_assignment_batch(square, rows)
    b, r = np.nonzero(col4row >= 0)
    c = col4row[b, r]
    flip = transposed[b]
    mask[b[~flip], r[~flip], c[~flip]] = True
    mask[b[flip], c[flip], r[flip]] = True
    return mask


def max_weight_assignment(weights: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A maximum-weight assignment of every sample of a padded ``(B, N, M)`` batch (weights >= 0), as a mask.

    Samples whose positive weights are isolated (boxes that overlap only their own
    counterpart) keep just those pairs: zero-weight pairs add nothing. The others get
    scipy's assignment (:func:`assign_padded`).
    """
    positive = weights > 0
    mask = positive.copy()
    hard = np.flatnonzero(~isolated(positive))
    if hard.size:
        mask[hard] = assign_padded(weights[hard], n[hard], m[hard], maximize=True)
    return mask
