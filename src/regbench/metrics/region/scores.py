"""Precision, recall and F1 from counts, for one sample's record or for columns of records.

One function, :func:`precision_recall_f1`, computes the three values for every mode: the
per-sample values of samples.jsonl and the aggregates of ``finalize`` come from the same
arithmetic (on numbers and on numpy columns), so the two always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TypeVar

import numpy as np

from regbench.metrics.base import Stats

LEVELS = ("region", "object", "alignment")
"""Boxes regardless of names; distinct names; boxes whose names agree."""
PRF_KEYS = tuple(f"{level}_{m}" for level in LEVELS for m in ("precision", "recall", "f1"))

Value = TypeVar("Value", float, np.ndarray)


def ratio(numerator: Value, denominator: Value, *, zero: float = 0.0) -> Value:
    """``numerator / denominator``, or ``zero`` where the denominator is 0 (one number, or columns)."""
    if isinstance(denominator, np.ndarray):
        out = np.full(denominator.shape, zero)
        return np.divide(numerator, denominator, out=out, where=denominator > 0)  # type: ignore[no-any-return]
    return numerator / denominator if denominator else zero  # type: ignore[return-value]


def precision_recall_f1(
    matched: Value, n_pred: Value, n_ref: Value, *, both_empty: float | None = 1.0
) -> tuple[Value, Value, Value]:
    """Precision ``matched / n_pred``, recall ``matched / n_ref``, and F1, their harmonic mean.

    Parameters
    ----------
    matched : the matches (hits, names in both, aligned pairs), one sample's or a column.
    n_pred, n_ref : the predicted and reference counts the matches are out of.
    both_empty : the value of all three where both counts are 0, default=1.0 (regbench's rule:
        nothing to find and nothing found is perfect); ``None`` leaves them 0 (MedRegA's
        released code).

    Notes
    -----
    A count of 0 gives 0 for its ratio (never NaN), and F1 of P = R = 0 is 0 (docs/metrics.md).
    MedRegA's released code names the two ratios the other way round ("precision" = matches /
    references); its plugin swaps the names, not the arithmetic.
    """
    precision = ratio(matched, n_pred)
    recall = ratio(matched, n_ref)
    f1 = ratio(2 * precision * recall, precision + recall)
    if both_empty is None:
        return precision, recall, f1
    empty = (n_pred == 0) & (n_ref == 0)
    if isinstance(empty, np.ndarray):
        return tuple(np.where(empty, both_empty, value) for value in (precision, recall, f1))  # type: ignore[return-value]
    return (both_empty, both_empty, both_empty) if empty else (precision, recall, f1)  # type: ignore[return-value]


def column(stats: Sequence[Stats], key: str) -> np.ndarray:
    """One key of every record as floats (absent or ``None`` -> NaN)."""
    try:  # the common case, every record has a number: no intermediate list
        return np.fromiter(map(itemgetter(key), stats), dtype=np.float64, count=len(stats))
    except (KeyError, TypeError):
        return np.array([row.get(key) for row in stats], dtype=np.float64)
