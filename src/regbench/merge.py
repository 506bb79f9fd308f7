"""``regbench merge``: the shards of one run (``--shard I/N``) put back together.

The per-sample stats of all shards are put back in dataset order and every plugin is
finalized once on the whole list (after its ``rejoin``, for per-sample values that depend
on the split), so the merged results.json and samples.jsonl equal those of an unsharded run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from regbench.collector import gc_paused
from regbench.errors import DataError
from regbench.metrics import build_plugins
from regbench.metrics.judged import JudgedMetric
from regbench.results import Results, read_results, read_samples, write_results, write_samples
from regbench.scoring import Bootstrap, aggregate, counts, sample_scores, sample_stats
from regbench.spec import TaskSpec


def merge_shards(directories: Sequence[Path], destination: Path) -> Results:
    """Merge shard directories of one model and task into one results.json and samples.jsonl in ``destination``."""
    with gc_paused():  # the records read die inside
        return _merge_shards(directories, destination)


def _merge_shards(directories: Sequence[Path], destination: Path) -> Results:
    shards = [(read_results(d), read_samples(d)) for d in directories]
    first = shards[0][0]
    run_config = {k: v for k, v in first.config.get("run", {}).items() if k != "shard"}
    for (results, _), directory in zip(shards, directories, strict=True):
        other_run = {k: v for k, v in results.config.get("run", {}).items() if k != "shard"}
        if (results.task, results.model) != (first.task, first.model) or other_run != run_config:
            raise DataError(f"{directory}: not a shard of {first.model} · {first.task} with the same settings")
        if results.config.get("task") != first.config.get("task"):
            raise DataError(f"{directory}: its task spec differs from that of {directories[0]}")
    _check_complete([results for results, _ in shards], directories)
    for (results, _), directory in zip(shards, directories, strict=True):
        if _model_identity(results) != _model_identity(first):
            raise DataError(
                f"{directory}: its model spec differs from that of {directories[0]} (adapter, checkpoint, served "
                "model, generation, prompts or box format): shards of one run must ask the same model the same way"
            )
        if results.bootstrap != first.bootstrap:
            raise DataError(
                f"{directory}: bootstrap {results.bootstrap} differs from {first.bootstrap} of {directories[0]}: "
                "run every shard with the same --bootstrap and --seed"
            )
    records = sorted((r for _, rs in shards for r in rs), key=lambda r: r.index)
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise DataError(f"sample {record.id!r} appears in more than one shard")
        seen.add(record.id)
    task = TaskSpec.model_validate(first.config["task"])
    bootstrap = Bootstrap(trials=first.bootstrap.get("trials", 1000), seed=first.bootstrap.get("seed", 1234))
    plugins = build_plugins(task)
    for plugin in (p for p in plugins if isinstance(p, JudgedMetric)):  # the judge the shards were scored by
        keys = plugin.output_keys()
        for (results, _), directory in zip(shards, directories, strict=True):
            if any(results.signatures.get(k) != first.signatures.get(k) for k in keys):
                raise DataError(
                    f"{directory}: its {plugin.name} signatures differ from those of {directories[0]}: "
                    "shards judged by different judges or prompts do not merge"
                )
        plugin.use_recorded_signatures(first.signatures)
    try:
        stats = {p.name: p.rejoin([r.stats[p.name] for r in records]) for p in plugins}
        totals = aggregate(plugins, stats, bootstrap)
    finally:
        for plugin in plugins:
            plugin.close()
    for index, record in enumerate(records):  # per-sample values that depend on the split (CIDEr) changed
        record.scores = sample_scores(plugins, stats, index)
        record.stats = sample_stats(plugins, stats, index)
    merged = first.model_copy(
        update={**vars(totals), **counts(records), "config": {**first.config, "run": {**run_config, "shard": None}}}
    )
    write_samples(destination, records)
    write_results(destination, merged)
    return merged


# Where and how fast a model is asked: shards may go to different servers of the same model.
_TRANSPORT = frozenset(
    {"base_url", "api_key_env", "concurrency", "timeout", "max_retries", "start_hint", "description"}
)


def _model_identity(results: Results) -> dict[str, object]:
    """The model spec of a shard without its transport settings: what must be equal across shards."""
    return {k: v for k, v in results.config.get("model", {}).items() if k not in _TRANSPORT}


def _check_complete(shards: Sequence[Results], directories: Sequence[Path]) -> None:
    """Every shard I of one N, each once: a missing shard would silently score a subset."""
    given = [tuple(results.config.get("run", {}).get("shard") or ()) for results in shards]
    for shard, directory in zip(given, directories, strict=True):
        if len(shard) != 2:
            raise DataError(f"{directory}: not a shard (its results.json has no config.run.shard)")
    splits = {n for _, n in given}
    if len(splits) != 1:
        raise DataError(f"the shards come from different splits: {sorted(f'{i}/{n}' for i, n in given)}")
    (n,) = splits
    missing = sorted(set(range(n)) - {i for i, _ in given})
    if missing:
        raise DataError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing: merge needs all {n} shards")
