"""The matching code every mode shares: samples batched into padded ``(B, N, M)`` blocks.

Samples are tiny (a handful of boxes) and many. Grouped by their box counts rounded up to
powers of two, each group becomes one block of padded boxes; IoU, hits and the assignment
(:mod:`regbench.metrics.matching`) are then one numpy call per block, not per sample. Padding
boxes are all zeros: degenerate, so their IoU with anything is 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from regbench.metrics.region.columns import BoxColumns


class Block(NamedTuple):
    """Samples with similar box counts, padded to the same shape."""

    members: np.ndarray
    """The samples (indices into the columns)."""
    n_pred: np.ndarray
    """Predicted boxes of each member."""
    n_ref: np.ndarray
    """Reference boxes of each member."""
    pred_boxes: np.ndarray
    """``(B, N, dims)`` predicted boxes, zero boxes after each member's last."""
    pred_index: np.ndarray
    """``(B, N)`` flat index of each predicted box in the columns, ``-1`` for padding."""
    ref_boxes: np.ndarray
    ref_index: np.ndarray


def padded_blocks(pred: BoxColumns, ref: BoxColumns) -> Iterator[Block]:
    """The samples with boxes on both sides, in blocks (padding wastes at most 4x; few numpy calls).

    Samples without a predicted or without a reference box have nothing to match and are left out.
    """
    n, m = pred.counts, ref.counts
    keys = _ceil2(n) * (1 << 20) + _ceil2(m)
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        size_n, size_m = int(n[members].max()), int(m[members].max())
        if size_n == 0 or size_m == 0:
            continue
        pred_boxes, pred_index = pred.padded(members, size_n)
        ref_boxes, ref_index = ref.padded(members, size_m)
        yield Block(members, n[members], m[members], pred_boxes, pred_index, ref_boxes, ref_index)


def _ceil2(a: np.ndarray) -> np.ndarray:
    """Counts rounded up to powers of two (0 and 1 stay)."""
    return np.where(a <= 1, a, 1 << np.ceil(np.log2(np.maximum(a, 1))).astype(np.intp))


def padded_ids(ids: np.ndarray, index: np.ndarray, fill: int) -> np.ndarray:
    """Name ids laid out like a block's boxes (``index``: its ``pred_index`` or ``ref_index``), ``fill`` where
    there is no box."""
    return np.where(index >= 0, ids[np.maximum(index, 0)], fill) if len(ids) else np.full(index.shape, fill)


def ordered_sum(values: np.ndarray) -> np.ndarray:
    """Sum of an assignment's values per sample of a block, added in predicted-box order.

    A plain ``sum`` over a padded block adds in an order that depends on the padding, so the
    same sample could differ in the last bit depending on the batch it came in (and a merged
    or resumed run would not be bit-identical). Each row holds at most one assigned value, so
    the row sums are exact; the rows are then added one by one.
    """
    rows = values.sum(axis=2)
    total = np.zeros(len(values))
    for r in range(rows.shape[1]):
        total += rows[:, r]
    return total
