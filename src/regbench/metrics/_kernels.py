"""numba kernels for region scoring; imported through :func:`regbench.metrics.accel.kernels` only.

Each kernel replaces a numpy or regex step with one compiled loop over all samples and
returns exactly what that step returns (same floating-point operations in the same order):

- :func:`medrega_scan`: MedRegA's released output pattern (``PATTERN_REGCAP``) over the UTF-8
  bytes of all outputs at once. An output where the pattern would have to read a non-ASCII
  character inside a box list (``\\d`` and ``\\s`` also match other scripts' digits and
  spaces) or a number of 2**53 or more is flagged, and the caller parses it with the regex.
- :func:`lsap`: scipy's ``linear_sum_assignment`` (the shortest augmenting path method of
  ``rectangular_lsap``, the one :mod:`regbench.metrics.matching` follows in lock step), so the
  same pairs come out, ties included.
- :func:`medrega_counts`: IoU (torchvision's arithmetic, as :func:`~regbench.metrics.geometry.iou_matrix`),
  the assignment of ``1 - IoU`` and the released counts, per sample.
- :func:`assign_batch`: :func:`~regbench.metrics.matching.assign_padded` for a padded batch.

``cache=True``: numba keeps the machine code on disk, so compiling is paid once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPEN, _CLOSE, _COMMA = 91, 93, 44  # "[", "]", ","
_LIMIT = 2**53  # integers up to here are exact in a float64, so v / 999 equals Python's int(v) / 999

# Outcomes of matching a box list.
_FAIL, _OK, _UNSURE = 0, 1, 2


@njit(cache=True, inline="always")
def _is_space(byte: int) -> bool:
    """ASCII characters that ``\\s`` matches in a str pattern: \\t-\\r, \\x1c-\\x1f and the space."""
    return byte == 32 or 9 <= byte <= 13 or 28 <= byte <= 31


@njit(cache=True)
def _number(buf: np.ndarray, p: int, end: int) -> tuple[int, int, int]:
    """``\\d+`` at ``p``: (outcome, position after, value)."""
    value = 0
    start = p
    while p < end:
        byte = buf[p]
        if 48 <= byte <= 57:
            value = value * 10 + (byte - 48)
            if value >= _LIMIT:
                return _UNSURE, p, 0
            p += 1
        elif byte >= 128:
            return _UNSURE, p, 0  # maybe a digit of another script
        else:
            break
    if p == start:
        return _FAIL, p, 0
    return _OK, p, value


@njit(cache=True)
def _spaces(buf: np.ndarray, p: int, end: int) -> tuple[int, int]:
    """``\\s*`` at ``p``: (outcome, position after)."""
    while p < end:
        byte = buf[p]
        if _is_space(byte):
            p += 1
        elif byte >= 128:
            return _UNSURE, p  # maybe a space of another script
        else:
            break
    return _OK, p


@njit(cache=True)
def _box(buf: np.ndarray, p: int, end: int, out: np.ndarray, row: int) -> tuple[int, int]:
    """``\\[\\d+,\\s*\\d+,\\s*\\d+,\\s*\\d+\\]`` at ``p`` (an opening bracket), numbers / 999 into ``out[row]``."""
    p += 1
    for k in range(4):
        if k:
            if p >= end or buf[p] != _COMMA:
                return (_UNSURE if p < end and buf[p] >= 128 else _FAIL), p
            status, p = _spaces(buf, p + 1, end)
            if status != _OK:
                return status, p
        status, p, value = _number(buf, p, end)
        if status != _OK:
            return status, p
        if row < out.shape[0]:
            out[row, k] = value / 999.0
    if p >= end or buf[p] != _CLOSE:
        return _FAIL, p
    return _OK, p + 1


@njit(cache=True)
def _box_list(buf: np.ndarray, p: int, end: int, out: np.ndarray, row: int) -> tuple[int, int, int]:
    """The released list pattern at ``p``: (outcome, position after, boxes). The repetition is greedy and
    nothing after it can give a repetition back (``]`` never starts one), so no backtracking is needed."""
    if p + 1 >= end or buf[p] != _OPEN or buf[p + 1] != _OPEN:
        return _FAIL, p, 0
    status, p = _box(buf, p + 1, end, out, row)
    if status != _OK:
        return status, p, 0
    count = 1
    while p < end and buf[p] == _COMMA:
        status, q = _spaces(buf, p + 1, end)
        if status != _OK:
            return status, q, 0
        if q >= end or buf[q] != _OPEN:
            break
        status, q = _box(buf, q, end, out, row + count)
        if status == _UNSURE:
            return status, q, 0
        if status == _FAIL:
            break
        p = q
        count += 1
    if p < end and buf[p] == _CLOSE:
        return _OK, p + 1, count
    return _FAIL, p, 0


@njit(cache=True)
def byte_ends(buf: np.ndarray, char_ends: np.ndarray) -> np.ndarray:
    """Byte offsets of character offsets ``char_ends`` (ascending) in UTF-8 ``buf``."""
    out = np.empty(len(char_ends), dtype=np.int64)
    chars = 0
    k = 0
    for p in range(len(buf) + 1):
        while k < len(char_ends) and char_ends[k] == chars:
            out[k] = p
            k += 1
        if p < len(buf) and (buf[p] & 0xC0) != 0x80:
            chars += 1
    return out


@njit(cache=True, inline="always")
def _count_chars(buf: np.ndarray, begin: int, end: int, chars: int) -> int:
    """``chars`` plus the characters that start in ``buf[begin:end]`` (UTF-8 lead bytes)."""
    for p in range(begin, end):
        if (buf[p] & 0xC0) != 0x80:
            chars += 1
    return chars


@njit(cache=True)
def medrega_scan(
    buf: np.ndarray, ends: np.ndarray, ascii_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``re.findall(PATTERN_REGCAP, output)`` for every output in ``buf`` (UTF-8; output ``k`` ends at ``ends[k]``).

    The pattern's name part (``[^\\[\\]]*``) stops at the first bracket, so a match can only start
    where the last one ended or just after a bracket where the list failed, and it takes all the
    text from there. Returns boxes (``(K, 4)``, / 999), boxes per output, each group's box
    count, its name's span (``(2, G)`` byte offsets, and ``(2, G)`` character offsets into the
    joined text), and a flag per output that the regex must decide (its boxes and groups are
    left out).
    """
    size = len(buf)
    boxes = np.empty((size // 9 + 1, 4))  # a box takes at least 9 bytes, a group 11
    group_boxes = np.empty(size // 11 + 1, dtype=np.int64)
    spans = np.empty((2, size // 11 + 1), dtype=np.int64)
    char_spans = np.empty((2, size // 11 + 1), dtype=np.int64)
    counts = np.zeros(len(ends), dtype=np.int64)
    unsure = np.zeros(len(ends), dtype=np.bool_)
    n_boxes = 0
    n_groups = 0
    cursor = 0  # character offsets of byte positions, counted forwards (positions asked for only grow)
    chars = 0
    begin = 0
    for k in range(len(ends)):
        end = ends[k]
        first_box, first_group = n_boxes, n_groups
        start = begin
        while start < end:
            q = start
            while q < end and buf[q] != _OPEN and buf[q] != _CLOSE:
                q += 1
            if q == end:
                break
            status, after, found = _box_list(buf, q, end, boxes, n_boxes)
            if status == _UNSURE:
                unsure[k] = True
                break
            if status == _FAIL:
                start = q + 1
                continue
            spans[0, n_groups], spans[1, n_groups] = start, q
            if not ascii_only:
                chars = _count_chars(buf, cursor, start, chars)
                char_spans[0, n_groups] = chars
                chars = _count_chars(buf, start, q, chars)
                char_spans[1, n_groups] = chars
                cursor = q
            group_boxes[n_groups] = found
            n_groups += 1
            n_boxes += found
            start = after
        if unsure[k]:
            n_boxes, n_groups = first_box, first_group
        else:
            counts[k] = n_boxes - first_box
        begin = end
    spans = spans[:, :n_groups].copy()
    return (
        boxes[:n_boxes].copy(),
        counts,
        group_boxes[:n_groups].copy(),
        spans,
        spans if ascii_only else char_spans[:, :n_groups].copy(),
        unsure,
    )


@njit(cache=True)
def _same_bytes(buf: np.ndarray, a: int, a_end: int, b: int, b_end: int) -> bool:
    if a_end - a != b_end - b:
        return False
    for k in range(a_end - a):  # noqa: SIM110 (a plain loop is what numba compiles best)
        if buf[a + k] != buf[b + k]:
            return False
    return True


@njit(cache=True)
def distinct_spans(buf: np.ndarray, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the distinct byte strings ``buf[spans[0, g]:spans[1, g]]`` (in order of first appearance) and
    each id's first span: names repeat, so only the distinct ones need become Python strings.

    An open-addressing table on FNV-1a hashes; equal hashes are confirmed byte by byte.
    """
    n = spans.shape[1]
    ids = np.empty(n, dtype=np.int64)
    firsts = np.empty(n, dtype=np.int64)
    hashes = np.empty(n, dtype=np.uint64)
    capacity = 16
    while capacity < 2 * n:
        capacity *= 2
    slots = np.full(capacity, -1, dtype=np.int64)
    mask = np.uint64(capacity - 1)
    n_ids = 0
    for g in range(n):
        a, a_end = spans[0, g], spans[1, g]
        h = np.uint64(14695981039346656037)
        for p in range(a, a_end):
            h = (h ^ np.uint64(buf[p])) * np.uint64(1099511628211)
        slot = np.int64(h & mask)
        while True:
            i = slots[slot]
            if i == -1:
                slots[slot] = n_ids
                hashes[n_ids] = h
                firsts[n_ids] = g
                ids[g] = n_ids
                n_ids += 1
                break
            first = firsts[i]
            if hashes[i] == h and _same_bytes(buf, spans[0, first], spans[1, first], a, a_end):
                ids[g] = i
                break
            slot = np.int64((slot + 1) & (capacity - 1))
    return ids, firsts[:n_ids].copy()


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
def medrega_counts(
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

    As :func:`regbench.metrics.region.medrega_columns`: isolated positive IoUs filling
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
