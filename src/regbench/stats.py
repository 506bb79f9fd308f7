"""Comparing two runs of one task: paired bootstrap intervals and paired permutation p-values.

Both runs are aligned by sample id. For each metric key both report with the same
signature, the per-sample statistics of both runs are resampled *together* (the same sample
ids in each trial) and re-finalized, giving a 95% interval of the difference B - A; the
p-value comes from a paired permutation test that swaps the two runs' statistics for a
random half of the samples (two-sided, with the +1 correction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regbench.errors import DataError, RegbenchError
from regbench.metrics.base import Metric, Stats
from regbench.results import Results, read_results, read_samples
from regbench.spec import TaskSpec


@dataclass
class Comparison:
    """One metric key compared between run A and run B."""

    key: str
    a: float | None
    b: float | None
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n: int
    higher_is_better: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _without_bootstrap(signature: str) -> str:
    return "|".join(p for p in signature.split("|") if not p.startswith(("bs:", "rs:")))


def paired_test(
    finalize: Callable[[Sequence[Stats]], dict[str, float]],
    stats_a: Sequence[Stats],
    stats_b: Sequence[Stats],
    key: str,
    *,
    trials: int,
    seed: int,
) -> tuple[tuple[float, float] | None, float | None]:
    """95% interval of finalize(B) - finalize(A) over paired resamples, and the permutation p-value."""
    n = len(stats_a)
    observed = finalize(stats_b).get(key, np.nan) - finalize(stats_a).get(key, np.nan)
    if n == 0 or not np.isfinite(observed):
        return None, None
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(trials):
        index = rng.integers(0, n, n)
        a = finalize([stats_a[i] for i in index]).get(key)
        b = finalize([stats_b[i] for i in index]).get(key)
        if a is not None and b is not None:
            differences.append(b - a)
    exceed = 0
    for _ in range(trials):
        swap = rng.random(n) < 0.5
        a = [stats_b[i] if swap[i] else stats_a[i] for i in range(n)]
        b = [stats_a[i] if swap[i] else stats_b[i] for i in range(n)]
        permuted = finalize(b).get(key, np.nan) - finalize(a).get(key, np.nan)
        exceed += bool(abs(permuted) >= abs(observed) - 1e-12)
    interval = tuple(np.percentile(differences, [2.5, 97.5]).tolist()) if differences else None
    return interval, (exceed + 1) / (trials + 1)  # type: ignore[return-value]


def paired_mean_test(
    a: np.ndarray, b: np.ndarray, *, trials: int, seed: int
) -> tuple[tuple[float, float] | None, float | None]:
    """The same test for per-sample means, vectorised: resampled mean differences and sign flips."""
    n = len(a)
    if n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    delta = b - a
    observed = delta.mean()
    index = rng.integers(0, n, (trials, n))
    interval = tuple(np.percentile(delta[index].mean(axis=1), [2.5, 97.5]).tolist())
    signs = np.where(rng.random((trials, n)) < 0.5, -1.0, 1.0)
    permuted = (signs * delta).mean(axis=1)
    p_value = (int((np.abs(permuted) >= abs(observed) - 1e-12).sum()) + 1) / (trials + 1)
    return interval, p_value  # type: ignore[return-value]


def _mean_finalize(key: str) -> Callable[[Sequence[Stats]], dict[str, float]]:
    def finalize(rows: Sequence[Stats]) -> dict[str, float]:
        values = [r[key] for r in rows if r.get(key) is not None]
        return {key: float(np.mean(values))} if values else {}

    return finalize


def compare_runs(dir_a: Path, dir_b: Path, *, trials: int = 1000, seed: int = 1234) -> list[Comparison]:
    """Compare two runs (directories with results.json and samples.jsonl) of the same task."""
    results_a, results_b = read_results(dir_a), read_results(dir_b)
    if results_a.task != results_b.task:
        raise RegbenchError(f"cannot compare different tasks: {results_a.task!r} and {results_b.task!r}")
    data_a = results_a.config.get("data", {}).get("sha256")
    data_b = results_b.config.get("data", {}).get("sha256")
    if data_a and data_b and data_a != data_b:
        raise RegbenchError(f"the two runs of {results_a.task!r} used different data files (sha256 differs)")
    samples_a = {r["id"]: r for r in read_samples(dir_a)}
    samples_b = {r["id"]: r for r in read_samples(dir_b)}
    ids = [i for i in samples_a if i in samples_b]
    if not ids:
        raise DataError("the two runs share no sample id")
    plugins = _plugins(results_a)
    out = []
    for key in sorted(set(results_a.metrics) | set(results_b.metrics)):
        higher = results_a.higher_is_better.get(key, results_b.higher_is_better.get(key, True))
        a, b = results_a.metrics.get(key), results_b.metrics.get(key)
        base = Comparison(key, a, b, None, None, None, len(ids), higher)
        if a is None or b is None:
            base.note = "reported by one run only"
        elif _without_bootstrap(results_a.signatures.get(key, "")) != _without_bootstrap(
            results_b.signatures.get(key, "")
        ):
            base.note = "signatures differ: computed differently, not compared"
        else:
            plugin_name = results_a.plugins.get(key, "")
            plugin = plugins.get(plugin_name)
            if plugin is not None:
                finalize = plugin.finalize
                stats_a = [samples_a[i]["stats"][plugin_name] for i in ids]
                stats_b = [samples_b[i]["stats"][plugin_name] for i in ids]
                runs = min(trials, plugin.bootstrap_trials)
            else:  # the plugin cannot be rebuilt here: compare the per-sample scores' means
                finalize = _mean_finalize(key)
                stats_a = [samples_a[i]["scores"] for i in ids]
                stats_b = [samples_b[i]["scores"] for i in ids]
                runs = trials
                base.note = "per-sample means (plugin unavailable here)"
            base.difference = (
                b - a
                if len(ids) == results_a.n_samples == results_b.n_samples
                else (finalize(stats_b).get(key, np.nan) - finalize(stats_a).get(key, np.nan))
            )
            if plugin is None or plugin.aggregation == "mean":
                score = plugin.sample_scores if plugin is not None else (lambda row: row)
                pairs = [(score(x).get(key), score(y).get(key)) for x, y in zip(stats_a, stats_b, strict=True)]
                kept = np.array([(x, y) for x, y in pairs if x is not None and y is not None], dtype=float)
                base.ci95, base.p_value = paired_mean_test(
                    kept[:, 0] if len(kept) else kept, kept[:, 1] if len(kept) else kept, trials=trials, seed=seed
                )
            else:
                base.ci95, base.p_value = paired_test(finalize, stats_a, stats_b, key, trials=runs, seed=seed)
        out.append(base)
    return out


def _plugins(results: Results) -> dict[str, Metric]:
    from regbench.runner import resolve_metrics

    try:
        task = TaskSpec.model_validate(results.config["task"])
        return {plugin.name: plugin for plugin in resolve_metrics(task)}
    except (RegbenchError, KeyError, ValueError):
        return {}
