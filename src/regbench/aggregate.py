"""Aggregate scores and their 95% bootstrap intervals, from per-sample statistics.

Intervals resample *samples* (their stats records) with replacement and recompute the
plugin's ``finalize``, so corpus-level metrics get honest intervals too. For plugins whose
aggregate is a per-sample mean, the resampling is done with bootstrap weight vectors in
numpy instead of calling ``finalize`` a thousand times; corpus plugins whose aggregate is
built from per-sample sums do the same through ``finalize_weighted``. Every plugin sees the same
resampled index sets (one seed), which is what a paired comparison needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from regbench.metrics.base import Metric, Stats, StatsColumns, weighted_means

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
    blocks = resample_blocks(n, trials=trials, seed=seed)
    if plugin.aggregation == "mean":
        draws = _mean_draws(plugin, stats, blocks, trials)
    else:
        draws = resampled_scores(plugin, stats, (weights for _, weights in blocks))
    intervals = {}
    for key, values in draws.items():
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = np.percentile(finite, [2.5, 97.5])
            intervals[key] = (float(low), float(high))
    return intervals


def resample_blocks(n: int, *, trials: int, seed: int) -> Iterator[tuple[slice, np.ndarray]]:
    """``weight_blocks(resample_indices(n, trials=trials, seed=seed))``, drawn block by block so the
    ``(trials, n)`` index array (800 MB at 100,000 samples) never exists.

    The numbers are the same: for a range below 2**32 numpy draws each bounded integer from the bit
    generator's 32-bit stream, whose state (half-used 64-bit words included) carries over between calls.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, trials, _CHUNK):  # (the block's size is part of the numbers: BLAS sums by blocks)
        rows = min(_CHUNK, trials - start)
        counts = np.empty((rows, n))
        for row in counts:  # drawn row by row: no (rows, n) index array beside the counts (512 MB at 1M samples)
            row[:] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        yield slice(start, start + rows), counts


def weight_blocks(indices: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """The resamples as draw counts per sample, ``_CHUNK`` trials at a time."""
    trials, n = indices.shape
    for start in range(0, trials, _CHUNK):
        block = indices[start : start + _CHUNK]
        yield slice(start, start + len(block)), draw_counts(block, n)


def draw_counts(block: np.ndarray, n: int) -> np.ndarray:
    """How often each row of ``block`` (indices into ``n`` samples) draws each sample, shape ``(rows, n)``."""
    counts = np.empty((len(block), n))
    for row, drawn in zip(counts, block, strict=True):  # row by row, its counters stay in cache: twice as fast
        row[:] = np.bincount(drawn, minlength=n)
    return counts


def _mean_draws(
    plugin: Metric, stats: Sequence[Stats], blocks: Iterable[tuple[slice, np.ndarray]], trials: int
) -> dict[str, np.ndarray]:
    if isinstance(stats, StatsColumns) and type(plugin).sample_scores is Metric.sample_scores:
        # the default sample_scores reads the output keys as they are: read them from the columns
        keys = sorted(
            k for k in plugin.output_keys() if k in stats.columns and (k not in stats.present or stats.present[k].any())
        )
        if not keys:
            return {}
        values = np.column_stack([stats.column(k) for k in keys])
    else:
        rows = [plugin.sample_scores(s) for s in stats]
        keys = sorted({k for row in rows for k, v in row.items() if v is not None})
        if not keys:
            return {}
        values = np.array(
            [[np.nan if row.get(k) is None else float(row[k]) for k in keys] for row in rows], dtype=np.float64
        )
    out = np.empty((trials, len(keys)))
    for block, weights in blocks:
        out[block] = weighted_means(values, weights)
    return {key: out[:, j] for j, key in enumerate(keys)}


def resampled_scores(plugin: Metric, stats: Sequence[Stats], blocks: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
    """``plugin``'s aggregates under each row of draw counts, one value per row (NaN where a
    resample has no value for a key): ``finalize_weighted`` when the plugin has it, else
    ``finalize`` on each resample as a list."""
    found = []
    for weights in blocks:
        values = plugin.finalize_weighted(stats, weights)
        if values is None:
            drawn = [np.repeat(np.arange(len(stats)), row.astype(int)) for row in weights]
            rows = [plugin.finalize([stats[i] for i in index]) for index in drawn]
            values = {k: np.array([row.get(k, np.nan) for row in rows]) for k in {k for row in rows for k in row}}
        found.append((len(weights), values))
    keys = {key for _, values in found for key in values}
    return {
        key: np.concatenate([np.asarray(values.get(key, np.full(size, np.nan)), float) for size, values in found])
        for key in keys
    }
