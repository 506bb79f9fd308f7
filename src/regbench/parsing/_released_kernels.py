"""numba kernels of MedRegA's released reading (:mod:`regbench.parsing.medrega_released`); imported only
when :func:`regbench.accel.enabled` says the compiled path runs.

- :func:`released_scan`: MedRegA's released output pattern (``PATTERN_REGCAP``) over the UTF-8
  bytes of all outputs at once. An output where the pattern would have to read a non-ASCII
  character inside a box list (``\\d`` and ``\\s`` also match other scripts' digits and
  spaces) or a number of 2**53 or more is flagged, and the caller reads it with the regex.
- :func:`byte_ends`: byte offsets of character offsets (outputs that are not all ASCII).
- :func:`distinct_spans`: ids of distinct names, so that only those become Python strings.

Each returns exactly what the regex path returns (tests compare the two). ``cache=True``: numba
keeps the machine code on disk, so compiling is paid once per machine.
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
def released_scan(
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
