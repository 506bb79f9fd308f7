"""From per-sample statistics to the documents of a run: aggregates, records, results.json.

Every plugin's ``finalize`` runs on the list of its per-sample stats, with a 95% bootstrap
interval and a signature per key (:func:`aggregate`); each sample's stats and values go
into its samples.jsonl record; :func:`build_results` puts the aggregates, the counts and
the resolved config (credentials masked) together. A run and ``regbench merge`` both come
through here, so a merged run equals an unsharded one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.aggregate import bootstrap_ci
from regbench.metrics import Joint, Metric, Stats
from regbench.metrics.base import StatsColumns
from regbench.parsing.readings import Readings
from regbench.redact import model_config
from regbench.results import Reference, Results, SampleRecord, sample_ids_digest
from regbench.spec import ModelSpec, TaskSpec
from regbench.types import Sample, SampledAnswers


@dataclass(frozen=True)
class Bootstrap:
    """How the 95% intervals are drawn (results.json ``bootstrap``)."""

    trials: int = 1000
    """Resamples per interval (a plugin may cap it); 0: no intervals."""
    seed: int = 1234


@dataclass
class Aggregate:
    """The aggregate part of results.json, from per-plugin stats lists."""

    metrics: dict[str, float | int] = field(default_factory=dict)
    ci95: dict[str, list[float]] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)


def score(
    plugins: Sequence[Metric],
    readings: Readings,
    bootstrap: Bootstrap,
    *,
    phase: Callable[[str], None] | None = None,
    sampled: Sequence[SampledAnswers | None] | None = None,
) -> tuple[dict[str, list[Stats]], Aggregate]:
    """Every plugin's stats of its reading of the outputs (:attr:`Metric.reads`), and the aggregates; the
    plugins are closed after. Joint plugins come last and see the others' per-sample values and
    ``sampled`` (each sample's answers under ``samples_per_question``). ``phase`` is told each step
    (which plugin, and what it waits for)."""
    try:
        stats = stats_of(plugins, readings, phase=phase, sampled=sampled)
        if phase is not None and bootstrap.trials:
            phase("bootstrap intervals")
        return stats, aggregate(plugins, stats, bootstrap)
    finally:
        for plugin in plugins:
            plugin.close()


def stats_of(
    plugins: Sequence[Metric],
    readings: Readings,
    *,
    phase: Callable[[str], None] | None = None,
    sampled: Sequence[SampledAnswers | None] | None = None,
) -> dict[str, list[Stats]]:
    """Every plugin's stats of its reading of the outputs (:attr:`Metric.reads`), of the whole split or of a
    chunk of it (the chunks' stats put together are the split's, :func:`joined`). Joint plugins come last
    and see the others' per-sample values and ``sampled``; ``phase`` is told which plugin scores."""
    stats = {}
    for plugin in plugins:
        if plugin.joint:
            continue
        if phase is not None:
            waiting = plugin.waiting_for()
            phase(f"scoring {plugin.name}" + (f": waiting for {waiting}" if waiting else ""))
        stats[plugin.name] = plugin.stats_batch(readings.items(plugin.reads))
    joints = [p for p in plugins if p.joint]
    if joints:
        rows = [sample_scores([p for p in plugins if not p.joint], stats, i) for i in range(len(readings.samples))]
        joint = Joint(scores=rows, sampled=sampled if sampled is not None else [None] * len(rows))
        for plugin in joints:
            if phase is not None:
                phase(f"scoring {plugin.name}")
            stats[plugin.name] = plugin.stats_joint(readings.items(plugin.reads), joint)
    return stats


def joined(plugin: Metric, parts: Sequence[Sequence[Stats]]) -> Sequence[Stats]:
    """A plugin's stats of a split from those of its consecutive chunks: columns stay columns, and a plugin
    whose per-sample values depend on the whole split recomputes them (:meth:`Metric.rejoin`, as a merge of
    shards does)."""
    whole: Sequence[Stats]
    if parts and all(isinstance(part, StatsColumns) for part in parts):
        whole = StatsColumns.concat(parts)  # type: ignore[arg-type]
    else:
        whole = [row for part in parts for row in part]
    return plugin.rejoin(whole) if len(parts) > 1 and rejoins(plugin) else whole


def rejoins(plugin: Metric) -> bool:
    """Whether the plugin's per-sample values depend on the other samples of the split (CIDEr-D's document
    frequencies): it overrides :meth:`Metric.rejoin`."""
    return type(plugin).rejoin is not Metric.rejoin


def aggregate(plugins: Sequence[Metric], stats: dict[str, list[Stats]], bootstrap: Bootstrap) -> Aggregate:
    """Finalize every plugin on its stats list, with bootstrap intervals and signatures."""
    result = Aggregate()
    for plugin in plugins:
        values = plugin.finalize(stats[plugin.name])
        ci = bootstrap_ci(plugin, stats[plugin.name], trials=bootstrap.trials, seed=bootstrap.seed)
        for key, higher in plugin.output_keys().items():
            if key not in values:
                continue
            value = values[key]
            result.metrics[key] = int(value) if key in plugin.count_keys else float(value)
            result.higher_is_better[key] = higher
            result.signatures[key] = _signature(plugin, key, bootstrap)
            result.plugins[key] = plugin.name
            if key in ci:
                result.ci95[key] = [ci[key][0], ci[key][1]]
    return result


def _signature(plugin: Metric, key: str, bootstrap: Bootstrap) -> str:
    """The plugin's signature for ``key`` with the bootstrap settings, as results.json writes it."""
    signature = plugin.signature(key)
    trials = min(bootstrap.trials, plugin.bootstrap_trials)
    return signature.with_bootstrap(trials, bootstrap.seed).format()


def sample_scores(plugins: Sequence[Metric], stats: dict[str, list[Stats]], index: int) -> dict[str, Any]:
    """The ``scores`` of sample ``index`` in samples.jsonl: every plugin's per-sample values that exist."""
    scores: dict[str, Any] = {}
    for plugin in plugins:
        scores.update({k: v for k, v in plugin.sample_scores(stats[plugin.name][index]).items() if v is not None})
    return scores


def sample_stats(plugins: Sequence[Metric], stats: dict[str, list[Stats]], index: int) -> dict[str, Stats]:
    """The ``stats`` of sample ``index`` in samples.jsonl: plugin name -> its stats of the sample."""
    return {plugin.name: stats[plugin.name][index] for plugin in plugins}


def reference(sample: Sample) -> Reference:
    """The ``reference`` of a sample's record."""
    return {
        "answer": sample.answer,
        "objects": [o.model_dump(exclude_none=True) for o in sample.objects],
        "labels": sample.labels,
        "image": sample.image,
    }


def counts(records: Sequence[SampleRecord]) -> dict[str, int | str]:
    """``n_samples``, ``n_parse_failures``, ``n_errors`` and ``sample_ids`` (which samples) of results.json,
    from the records."""
    return {
        "n_samples": len(records),
        "n_parse_failures": sum(record.parse_failed for record in records),
        "n_errors": sum(record.error is not None for record in records),
        "sample_ids": sample_ids_digest(record.id for record in records),
    }


def build_results(
    task: TaskSpec,
    model: ModelSpec,
    records: Sequence[SampleRecord] | dict[str, int | str],
    totals: Aggregate,
    *,
    bootstrap: Bootstrap,
    run: dict[str, Any],
    n_skipped: int = 0,
) -> Results:
    """results.json of one run: the aggregates, the counts (``records``: the records, or their
    :func:`counts`), and the config (``run``: the run's settings)."""
    return Results(
        task=task.task,
        model=model.model,
        family=task.family,
        language=task.language,
        modality=task.modality,
        **(records if isinstance(records, dict) else counts(records)),
        n_skipped=n_skipped,
        **vars(totals),
        bootstrap=asdict(bootstrap),
        config={
            "task": task.model_dump(mode="json"),
            "model": model_config(model),
            "run": run,
            "data": data_fingerprint(task),
        },
        regbench_version=__version__,
    )


def data_fingerprint(task: TaskSpec) -> dict[str, Any]:
    """sha256 of a file-based dataset, so two results can be checked to come from the same data."""
    if task.dataset.path is None or task.source is None:
        return {}
    path = task.source.parent / task.dataset.path
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"file": Path(task.dataset.path).name, "sha256": digest}
