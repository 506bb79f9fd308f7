"""The response cache survives reopening; bootstrap intervals are deterministic and exact for means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regbench.aggregate import bootstrap_ci, draw_counts, resample_blocks, resample_indices, weight_blocks
from regbench.cache import ResponseCache
from regbench.metrics import Metric
from regbench.types import Parsed, Response, Sample


def test_cache_round_trip_and_errors_not_cached(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k1", Response(text="hello", usage={"tokens": 3}))
    cache.put("k2", Response(error="HTTP 500"))
    cache.close()
    reopened = ResponseCache(tmp_path / "c.sqlite")
    hit = reopened.get("k1")
    assert hit is not None and hit.text == "hello" and hit.cached and hit.usage == {"tokens": 3}
    assert reopened.get("k2") is None and len(reopened) == 1


class Mean(Metric):
    """Mean of a per-sample value."""

    name = "mean"
    keys = {"value": True}

    def stats(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        return {"value": float(sample.answer)}


class CorpusMean(Mean):
    aggregation = "corpus"

    def finalize(self, stats):  # type: ignore[no-untyped-def]
        return {"value": sum(s["value"] for s in stats) / len(stats)}


def test_vectorised_mean_bootstrap_equals_finalize_bootstrap() -> None:
    rng = np.random.default_rng(0)
    stats = [{"value": float(v)} for v in rng.random(57)]
    fast = bootstrap_ci(Mean(), stats, trials=300, seed=7)["value"]
    slow = bootstrap_ci(CorpusMean(), stats, trials=300, seed=7)["value"]
    assert fast == pytest.approx(slow, abs=1e-12)
    values = np.array([s["value"] for s in stats])
    means = values[resample_indices(57, trials=300, seed=7)].mean(axis=1)
    assert fast == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)


def test_bootstrap_skips_not_applicable_samples() -> None:
    stats = [{"value": 1.0}, {"value": None}, {"value": 0.0}, {"value": None}]
    low, high = bootstrap_ci(Mean(), stats, trials=200, seed=1)["value"]
    assert 0.0 <= low <= high <= 1.0


def test_bootstrap_is_reproducible() -> None:
    stats = [{"value": float(i % 3 == 0)} for i in range(40)]
    assert bootstrap_ci(Mean(), stats, trials=100, seed=3) == bootstrap_ci(Mean(), stats, trials=100, seed=3)
    assert bootstrap_ci(Mean(), stats, trials=100, seed=3) != bootstrap_ci(Mean(), stats, trials=100, seed=4)


@pytest.mark.parametrize(("n", "trials"), [(1, 5), (7, 1000), (57, 300), (1001, 130), (20_011, 65)])
def test_block_by_block_resamples_equal_the_whole_index_array(n: int, trials: int) -> None:
    for seed in (0, 1234, 2**40 + 3):
        whole = list(weight_blocks(resample_indices(n, trials=trials, seed=seed)))
        blocks = list(resample_blocks(n, trials=trials, seed=seed))
        assert [block for block, _ in blocks] == [block for block, _ in whole]
        for (_, expected), (_, found) in zip(whole, blocks, strict=True):
            assert found.dtype == expected.dtype and np.array_equal(found, expected)


def test_draw_counts_count_each_draw() -> None:
    indices = np.random.default_rng(5).integers(0, 13, size=(9, 13))
    expected = np.zeros((9, 13))
    np.add.at(expected, (np.repeat(np.arange(9), 13), indices.ravel()), 1.0)
    assert np.array_equal(draw_counts(indices, 13), expected)
