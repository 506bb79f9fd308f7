"""Aggregate scores and their 95% bootstrap intervals, from per-sample statistics.

Intervals resample *samples* (their stats records) with replacement and recompute the
plugin's ``finalize``, so corpus-level metrics get honest intervals too. For plugins whose
aggregate is a per-sample mean, the resampling is done with bootstrap weight vectors in
numpy instead of calling ``finalize`` a thousand times. Every plugin sees the same
resampled index sets (one seed), which is what a paired comparison needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from regbench.metrics.base import Metric, Stats

_CHUNK = 64  # bootstrap trials per vectorised block (bounds memory at 64 x n_samples)


def resample_indices(n: int, *, trials: int, seed: int) -> np.ndarray:
    """``trials`` bootstrap index sets over ``n`` samples, shape ``(trials, n)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(trials, n))


def bootstrap_ci(plugin: Metric, stats: Sequence[Stats], *, trials: int, seed: int) -> dict[str, tuple[float, float]]:
    """Percentile 95% interval of every key ``plugin.finalize`` reports."""
    n = len(stats)
    if n == 0 or trials <= 0:
        return {}
    trials = min(trials, plugin.bootstrap_trials)
    if plugin.aggregation == "mean":
        draws = _mean_draws(plugin, stats, trials=trials, seed=seed)
    else:
        draws = _finalize_draws(plugin, stats, trials=trials, seed=seed)
    intervals = {}
    for key, values in draws.items():
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = np.percentile(finite, [2.5, 97.5])
            intervals[key] = (float(low), float(high))
    return intervals


def _mean_draws(plugin: Metric, stats: Sequence[Stats], *, trials: int, seed: int) -> dict[str, np.ndarray]:
    rows = [plugin.sample_scores(s) for s in stats]
    keys = sorted({k for row in rows for k, v in row.items() if v is not None})
    if not keys:
        return {}
    values = np.array(
        [[np.nan if row.get(k) is None else float(row[k]) for k in keys] for row in rows], dtype=np.float64
    )
    present = np.isfinite(values)
    filled = np.where(present, values, 0.0)
    indices = resample_indices(len(stats), trials=trials, seed=seed)
    out = np.empty((trials, len(keys)))
    for start in range(0, trials, _CHUNK):
        block = indices[start : start + _CHUNK]
        weights = np.zeros((len(block), len(stats)))
        rows_idx = np.repeat(np.arange(len(block)), block.shape[1])
        np.add.at(weights, (rows_idx, block.ravel()), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + len(block)] = (weights @ filled) / (weights @ present)
    return {key: out[:, j] for j, key in enumerate(keys)}


def _finalize_draws(plugin: Metric, stats: Sequence[Stats], *, trials: int, seed: int) -> dict[str, np.ndarray]:
    indices = resample_indices(len(stats), trials=trials, seed=seed)
    draws: dict[str, list[float]] = {}
    for row in indices:
        for key, value in plugin.finalize([stats[i] for i in row]).items():
            draws.setdefault(key, []).append(value)
    return {key: np.asarray(values, dtype=np.float64) for key, values in draws.items()}
