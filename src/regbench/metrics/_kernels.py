"""numba kernels for region scoring; imported only when :func:`regbench.accel.enabled` says so.

Each kernel replaces a numpy step with one compiled loop over all samples and returns exactly
what that step returns (same floating-point operations in the same order):

- :func:`lsap`: scipy's ``linear_sum_assignment`` (the shortest augmenting path method of
  ``rectangular_lsap``, the one :mod:`regbench.metrics.matching` follows in lock step), so the
  same pairs come out, ties included.
- :func:`released_counts`: IoU (torchvision's arithmetic, as :func:`~regbench.metrics.geometry.iou_matrix`),
  the assignment of ``1 - IoU`` and MedRegA's released counts, per sample.
- :func:`assign_batch`: :func:`~regbench.metrics.matching.assign_padded` for a padded batch.

The compiled reading of model outputs is in :mod:`regbench.parsing._released_kernels`.
``cache=True``: numba keeps the machine code on disk, so compiling is paid once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def lsap(
    cost: np.ndarray,
    col4row: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    lengths: np.ndarray,
    path: np.ndarray,
    row4col: np.ndarray,
    seen_rows: np.ndarray,
    seen_cols: np.ndarray,
    remaining: np.ndarray,
) -> bool:
    """scipy's assignment of ``cost`` (rows <= columns) into ``col4row``; the other arrays are work space
    at least as long as the rows or columns. False if no finite assignment exists.

    Every comparison and every floating-point operation is scipy's, in scipy's order: the
    reduced cost ``((min_val + cost) - u) - v``, the first minimum met unless a later equal one
    is a free column, the last remaining column moved into the hole of the one taken.
    """
    n_rows, n_cols = cost.shape
    u[:n_rows] = 0.0
    v[:n_cols] = 0.0
    col4row[:n_rows] = -1
    row4col[:n_cols] = -1
    path[:n_cols] = -1
    for current in range(n_rows):
        min_val = 0.0
        left = n_cols
        for it in range(n_cols):
            remaining[it] = n_cols - it - 1
        seen_rows[:n_rows] = False
        seen_cols[:n_cols] = False
        lengths[:n_cols] = np.inf
        sink = -1
        i = current
        while sink == -1:
            index = -1
            lowest = np.inf
            seen_rows[i] = True
            for it in range(left):
                j = remaining[it]
                reduced = min_val + cost[i, j] - u[i] - v[j]
                if reduced < lengths[j]:
                    path[j] = i
                    lengths[j] = reduced
                if lengths[j] < lowest or (lengths[j] == lowest and row4col[j] == -1):
                    lowest = lengths[j]
                    index = it
            min_val = lowest
            if index == -1 or min_val == np.inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            seen_cols[j] = True
            left -= 1
            remaining[index] = remaining[left]
        u[current] += min_val
        for i in range(n_rows):
            if seen_rows[i] and i != current:
                u[i] += min_val - lengths[col4row[i]]
        for j in range(n_cols):
            if seen_cols[j]:
                v[j] -= min_val - lengths[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == current:
                break
    return True


@njit(cache=True)
def _assign(
    cost: np.ndarray, col_of_row: np.ndarray, square: np.ndarray, work: np.ndarray, flags: np.ndarray, ints: np.ndarray
) -> bool:
    """scipy's assignment of an ``(n, m)`` cost into ``col_of_row``: a tall cost is solved transposed, as
    scipy does. ``square`` (at least ``max(n, m)`` square) and the rest are work space."""
    n, m = cost.shape
    col_of_row[:n] = -1
    tall = n > m
    rows, cols = (m, n) if tall else (n, m)
    block = square[:rows, :cols]
    for i in range(n):
        for j in range(m):
            if tall:
                block[j, i] = cost[i, j]
            else:
                block[i, j] = cost[i, j]
    col4row, row4col, path, remaining = ints[0], ints[1], ints[2], ints[3]
    done = lsap(block, col4row, work[0], work[1], work[2], path, row4col, flags[0], flags[1], remaining)
    for r in range(rows):
        c = col4row[r]
        if c >= 0:
            if tall:
                col_of_row[c] = r
            else:
                col_of_row[r] = c
    return done


@njit(cache=True)
def _iou(p: np.ndarray, r: np.ndarray) -> float:
    """:func:`regbench.metrics.geometry.iou_matrix` of two 2D boxes, the same operations."""
    side_x = max(min(p[2], r[2]) - max(p[0], r[0]), 0.0)
    side_y = max(min(p[3], r[3]) - max(p[1], r[1]), 0.0)
    inter = side_x * side_y
    p_vol = max(p[2] - p[0], 0.0) * max(p[3] - p[1], 0.0)
    r_vol = max(r[2] - r[0], 0.0) * max(r[3] - r[1], 0.0)
    if p_vol > 0 and r_vol > 0:
        return inter / ((p_vol + r_vol) - inter)
    return 0.0


@njit(cache=True)
def released_counts(
    p_boxes: np.ndarray,
    p_counts: np.ndarray,
    r_boxes: np.ndarray,
    r_counts: np.ndarray,
    p_ids: np.ndarray,
    r_ids: np.ndarray,
    align: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Per sample, ``C, A, CA, iou_sum, pairs`` (``(5, B)``) of ``linear_sum_assignment(1 - IoU)``.

    As :func:`regbench.metrics.region.medrega.released_counts`: isolated positive IoUs filling
    ``min(N, M)`` pairs are the assignment as they are; the IoU sum is added in predicted-box
    order; ``align[p_ids[i], r_ids[j]]`` says whether two names align.
    """
    size = len(p_counts)
    out = np.zeros((5, size))
    largest = 1
    for b in range(size):
        largest = max(largest, p_counts[b], r_counts[b])
    iou = np.zeros((largest, largest))
    cost = np.zeros((largest, largest))
    square = np.zeros((largest, largest))
    col_of_row = np.empty(largest, dtype=np.int64)
    work = np.empty((3, largest))
    flags = np.empty((2, largest), dtype=np.bool_)
    ints = np.empty((4, largest), dtype=np.int64)
    row_hits = np.empty(largest, dtype=np.int64)
    col_hits = np.empty(largest, dtype=np.int64)
    p_start = 0
    r_start = 0
    for b in range(size):
        n, m = p_counts[b], r_counts[b]
        if n > 0 and m > 0:
            row_hits[:n] = 0
            col_hits[:m] = 0
            positives = 0
            for i in range(n):
                for j in range(m):
                    value = _iou(p_boxes[p_start + i], r_boxes[r_start + j])
                    iou[i, j] = value
                    cost[i, j] = 1.0 - value
                    if value > 0:
                        positives += 1
                        row_hits[i] += 1
                        col_hits[j] += 1
            easy = positives == min(n, m) and row_hits[:n].max() <= 1 and col_hits[:m].max() <= 1
            if easy:
                col_of_row[:n] = -1
                for i in range(n):
                    for j in range(m):
                        if iou[i, j] > 0:
                            col_of_row[i] = j
            else:
                _assign(cost[:n, :m], col_of_row, square, work, flags, ints)
            hits = aligned = both = pairs = 0
            total = 0.0
            for i in range(n):
                j = col_of_row[i]
                if j < 0:
                    total += 0.0
                    continue
                value = iou[i, j]
                total += value
                pairs += 1
                hit = value >= thresholds[b]
                same = align[p_ids[p_start + i], r_ids[r_start + j]]
                hits += hit
                aligned += same
                both += hit and same
            out[0, b], out[1, b], out[2, b], out[3, b], out[4, b] = hits, aligned, both, total, pairs
        p_start += n
        r_start += m
    return out


@njit(cache=True)
def assign_batch(cost: np.ndarray, n: np.ndarray, m: np.ndarray, maximize: bool) -> np.ndarray:
    """scipy's assignment of ``cost[b, :n[b], :m[b]]`` for every ``b``, as a ``(B, N, M)`` mask."""
    batch, size_n, size_m = cost.shape
    mask = np.zeros((batch, size_n, size_m), dtype=np.bool_)
    largest = max(size_n, size_m, 1)
    col_of_row = np.empty(largest, dtype=np.int64)
    work = np.empty((3, largest))
    flags = np.empty((2, largest), dtype=np.bool_)
    ints = np.empty((4, largest), dtype=np.int64)
    block = np.empty((size_n, size_m))
    square = np.empty((largest, largest))
    for b in range(batch):
        rows, cols = n[b], m[b]
        if rows == 0 or cols == 0:
            continue
        for i in range(rows):
            for j in range(cols):
                block[i, j] = -cost[b, i, j] if maximize else cost[b, i, j]
        _assign(block[:rows, :cols], col_of_row, square, work, flags, ints)
        for i in range(rows):
            if col_of_row[i] >= 0:
                mask[b, i, col_of_row[i]] = True
    return mask
