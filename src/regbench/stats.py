"""Comparing two runs of one task: paired bootstrap intervals and paired permutation p-values.

Both runs are aligned by sample id. For each metric key both report with the same
signature, the per-sample statistics of both runs are resampled *together* (the same sample
ids in each trial) and re-finalized, giving a 95% interval of the difference B - A; the
p-value comes from a paired permutation test that swaps the two runs' statistics for a
random half of the samples (two-sided, with the +1 correction).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regbench.aggregate import resampled_scores, weight_blocks
from regbench.errors import DataError, RegbenchError
from regbench.metrics import Metric, Stats, build_plugins
from regbench.results import Results, read_results, read_samples, run_directory
from regbench.signature import Signature
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


def paired_test(
    plugin: Metric,
    stats_a: Sequence[Stats],
    stats_b: Sequence[Stats],
    *,
    trials: int,
    seed: int,
) -> dict[str, tuple[tuple[float, float] | None, float | None]]:
    """Per key: 95% interval of finalize(B) - finalize(A) over paired resamples, and the permutation p-value.

    Resamples and permutations are draw-count vectors (over A + B for a permutation), scored
    by ``plugin.finalize_weighted`` when the plugin has it, else by ``finalize`` on each list.
    """
    n = len(stats_a)
    if n == 0:
        return {}
    found_a, found_b = plugin.finalize(stats_a), plugin.finalize(stats_b)
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, n, (trials, n))
    swaps = rng.random((trials, n)) < 0.5
    both = [*stats_a, *stats_b]
    # a permutation swaps A_i and B_i: "A" draws B_i where swapped, "B" draws A_i there
    weights = [weights for _, weights in weight_blocks(resamples)]
    boot_a, boot_b = resampled_scores(plugin, stats_a, weights), resampled_scores(plugin, stats_b, weights)
    permuted = [np.hstack([~block, block]).astype(np.float64) for block in np.array_split(swaps, len(weights))]
    perm_a = resampled_scores(plugin, both, permuted)
    perm_b = resampled_scores(plugin, both, [1.0 - w for w in permuted])
    out: dict[str, tuple[tuple[float, float] | None, float | None]] = {}
    for key in found_a.keys() & found_b.keys():
        observed = found_b[key] - found_a[key]
        if not np.isfinite(observed):
            out[key] = (None, None)
            continue
        differences = boot_b.get(key, np.nan) - boot_a.get(key, np.nan)
        differences = np.atleast_1d(differences)[np.isfinite(differences)]
        shuffled = np.atleast_1d(perm_b.get(key, np.nan) - perm_a.get(key, np.nan))
        exceed = int((np.abs(shuffled[np.isfinite(shuffled)]) >= abs(observed) - 1e-12).sum())
        interval = tuple(np.percentile(differences, [2.5, 97.5]).tolist()) if differences.size else None
        out[key] = (interval, (exceed + 1) / (trials + 1))  # type: ignore[assignment]
    return out


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


def compare_runs(
    dir_a: Path,
    dir_b: Path,
    *,
    trials: int = 1000,
    seed: int = 1234,
    keys: Collection[str] | None = None,
    patch: bool = True,
) -> list[Comparison]:
    """Compare two runs (directories with results.json and samples.jsonl) of the same task.

    When the runs hold different samples (a ``--limit`` run, a failed shard), every column is over
    the samples both have: A and B are recomputed on them and the note says so. ``keys``: compare
    only these metric keys (default: all); ``patch=False``: signatures that differ only in
    regbench's patch version count as equal (:meth:`Signature.comparable`).
    """
    dir_a, dir_b = run_directory(dir_a), run_directory(dir_b)
    results_a, results_b = read_results(dir_a), read_results(dir_b)
    if results_a.task != results_b.task:
        raise RegbenchError(f"cannot compare different tasks: {results_a.task!r} and {results_b.task!r}")
    data_a = results_a.config.get("data", {}).get("sha256")
    data_b = results_b.config.get("data", {}).get("sha256")
    if data_a and data_b and data_a != data_b:
        raise RegbenchError(f"the two runs of {results_a.task!r} used different data files (sha256 differs)")
    samples_a = {r.id: r for r in read_samples(dir_a)}
    samples_b = {r.id: r for r in read_samples(dir_b)}
    ids = [i for i in samples_a if i in samples_b]
    if not ids:
        raise DataError("the two runs share no sample id")
    plugins = _plugins(results_a)
    subset = not len(ids) == len(samples_a) == len(samples_b)
    tested: dict[str, dict[str, tuple[tuple[float, float] | None, float | None]]] = {}
    # per plugin, once for all its keys: the shared samples' stats, and on a subset their aggregates
    shared: dict[str, tuple[list[Stats], list[Stats], dict[str, float], dict[str, float]] | DataError] = {}

    def shared_stats(plugin: Metric) -> tuple[list[Stats], list[Stats], dict[str, float], dict[str, float]]:
        if plugin.name not in shared:
            stats_a = [samples_a[i].stats[plugin.name] for i in ids]
            stats_b = [samples_b[i].stats[plugin.name] for i in ids]
            try:
                if subset:  # per-sample values that depend on the split (CIDEr-D), for the shared samples
                    stats_a, stats_b = plugin.rejoin(stats_a), plugin.rejoin(stats_b)
                    shared[plugin.name] = (stats_a, stats_b, plugin.finalize(stats_a), plugin.finalize(stats_b))
                else:
                    shared[plugin.name] = (stats_a, stats_b, {}, {})
            except DataError as exc:
                shared[plugin.name] = exc
        found = shared[plugin.name]
        if isinstance(found, DataError):
            raise found
        return found

    out = []
    for key in sorted(set(results_a.metrics) | set(results_b.metrics)):
        if keys is not None and key not in keys:
            continue
        higher = results_a.higher_is_better.get(key, results_b.higher_is_better.get(key, True))
        a, b = results_a.metrics.get(key), results_b.metrics.get(key)
        base = Comparison(key, a, b, None, None, None, len(ids), higher)
        if a is None or b is None:
            base.note = "reported by one run only"
        elif Signature.parse(results_a.signatures.get(key, "")).comparable(patch=patch) != Signature.parse(
            results_b.signatures.get(key, "")
        ).comparable(patch=patch):
            base.note = "signatures differ: computed differently, not compared"
        else:
            plugin_name = results_a.plugins.get(key, "")
            plugin = plugins.get(plugin_name)
            if plugin is not None:
                try:
                    stats_a, stats_b, values_a, values_b = shared_stats(plugin)
                except DataError as exc:
                    base.note = f"not compared on the shared samples: {exc}"
                    out.append(base)
                    continue
                runs = min(trials, plugin.bootstrap_trials)
            else:  # the plugin cannot be rebuilt here: compare the per-sample scores' means
                stats_a = [samples_a[i].scores for i in ids]
                stats_b = [samples_b[i].scores for i in ids]
                if subset:
                    values_a, values_b = _mean_finalize(key)(stats_a), _mean_finalize(key)(stats_b)
                runs = trials
                base.note = "per-sample means (plugin unavailable here)"
            if subset:
                base.a, base.b = values_a.get(key), values_b.get(key)
                over = f"over the {len(ids)} shared samples (A has {len(samples_a)}, B {len(samples_b)})"
                base.note = f"{base.note}; {over}" if base.note else over
            base.difference = None if base.a is None or base.b is None else base.b - base.a
            if plugin is None or plugin.aggregation == "mean":
                score = plugin.sample_scores if plugin is not None else (lambda row: row)
                pairs = [(score(x).get(key), score(y).get(key)) for x, y in zip(stats_a, stats_b, strict=True)]
                kept = np.array([(x, y) for x, y in pairs if x is not None and y is not None], dtype=float)
                base.ci95, base.p_value = paired_mean_test(
                    kept[:, 0] if len(kept) else kept, kept[:, 1] if len(kept) else kept, trials=trials, seed=seed
                )
            else:
                assert plugin is not None
                if plugin_name not in tested:  # one pass scores every key of the plugin
                    tested[plugin_name] = paired_test(plugin, stats_a, stats_b, trials=runs, seed=seed)
                base.ci95, base.p_value = tested[plugin_name].get(key, (None, None))
        out.append(base)
    return out


def _plugins(results: Results) -> dict[str, Metric]:
    try:
        task = TaskSpec.model_validate(results.config["task"])
        return {plugin.name: plugin for plugin in build_plugins(task)}
    except (RegbenchError, KeyError, ValueError):
        return {}
