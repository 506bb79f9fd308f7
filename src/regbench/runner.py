"""One evaluation run: samples → prompts → model (cached) → parse → metrics → results.

This is the only module that wires the pieces together; each step is a small function
so the flow of DESIGN.md reads top to bottom in :func:`evaluate`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from regbench import __version__
from regbench.aggregate import bootstrap_ci
from regbench.cache import ResponseCache
from regbench.collector import gc_paused
from regbench.data import load_samples
from regbench.errors import DataError, SpecError, UnknownNameError
from regbench.metrics import METRICS, Metric, MetricContext, Stats
from regbench.models.base import Message, ModelAdapter, Request, Response, url_without_userinfo
from regbench.parsing import get_box_format, parse_output
from regbench.parsing.readings import Readings, read_outputs
from regbench.prompts import PromptRenderer
from regbench.registry import find_spec, spec_index
from regbench.results import Results, read_results, read_samples, write_results, write_run_info, write_samples
from regbench.spec import MetricRef, ModelSpec, SuiteSpec, TaskSpec, load_spec, spec_error_from
from regbench.types import Region, Sample
from regbench.weights import build_all

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """Settings of one invocation (the command line's flags)."""

    output: Path = Path("runs")
    limit: int | None = None
    seed: int = 1234
    bootstrap_trials: int = 1000
    box_format: str | None = None
    """Overrides the task's and the model's box format."""
    cache: Path | None = None
    """Response cache file; default ``<output>/cache.sqlite``."""
    use_cache: bool = True
    shard: tuple[int, int] | None = None
    """``(i, n)``: evaluate samples ``i, i+n, i+2n, ...`` only (merge the shards with ``regbench merge``)."""


@dataclass
class Conversation:
    """One sample's exchange with the model: the prompts of each turn and the answers."""

    prompts: list[list[dict[str, Any]]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    cached_turns: int = 0


# ---------------------------------------------------------------- metrics


def resolve_metrics(task: TaskSpec) -> list[Metric]:
    """Instantiate the task's metric plugins (suites expanded), options validated, keys unique."""
    file = str(task.source or task.task)
    context = MetricContext(
        task=task.task, family=task.family, language=task.language, modality=task.modality, labels=task.labels
    )
    builders: list[Callable[[], Metric]] = []
    names: list[tuple[str, str]] = []
    for index, ref in enumerate(task.metrics):
        for field_name, member in _expand(ref, f"metrics[{index}]", file):
            try:
                plugin_type = METRICS.get(member.name)
            except UnknownNameError as exc:
                raise SpecError(file, field_name, str(exc)) from None
            try:
                options = plugin_type.Options.model_validate(member.options)
            except ValidationError as exc:
                raise spec_error_from(exc, file=file, prefix=field_name) from None
            builders.append(functools.partial(plugin_type, options, context))
            names.append((field_name, member.name))
    plugins = build_all(builders)  # every missing weight named at once
    owner: dict[str, str] = {}
    for plugin, (field_name, name) in zip(plugins, names, strict=True):
        for key in plugin.output_keys():
            if key in owner:
                raise SpecError(file, field_name, f"metric key {key!r} is produced by both {owner[key]} and {name}")
            owner[key] = name
    return plugins


def _expand(ref: MetricRef, field_name: str, file: str) -> list[tuple[str, MetricRef]]:
    if ref.name in METRICS or ref.name not in spec_index("suite"):
        return [(field_name, ref)]  # an unknown name fails in METRICS.get with did-you-mean
    if ref.options:
        raise SpecError(file, field_name, f"{ref.name} is a metric suite; options go on its members")
    suite: SuiteSpec = load_spec(find_spec("suite", ref.name), SuiteSpec)
    return [(f"{field_name}({ref.name}).metrics[{i}]", member) for i, member in enumerate(suite.metrics)]


# ---------------------------------------------------------------- generation


class Conversations:
    """Runs every sample's (possibly multi-turn) conversation through a cached adapter."""

    def __init__(
        self,
        task: TaskSpec,
        model: ModelSpec,
        adapter: ModelAdapter,
        renderer: PromptRenderer,
        *,
        box_format: str,
        cache: ResponseCache | None,
    ) -> None:
        self.task, self.model, self.adapter, self.renderer = task, model, adapter, renderer
        self.box_format = box_format
        self.cache = cache if adapter.cacheable else None
        self.generation = model.generation.merged(task.generation)
        self._model_fingerprint = adapter.fingerprint()
        self._slots = asyncio.Semaphore(adapter.concurrency)

    async def run_all(
        self,
        samples: Sequence[Sample],
        progress: ProgressCallback | None,
        first_turns: Sequence[list[Message]] | None = None,
    ) -> list[Conversation]:
        """Every sample's conversation; ``first_turns``: each sample's turn-0 messages, when already rendered."""
        done = 0

        async def one(sample: Sample, first_turn: list[Message] | None) -> Conversation:
            nonlocal done
            conversation = await self.converse(sample, first_turn)
            done += 1
            if progress is not None:
                progress(done, len(samples))
            return conversation

        firsts = first_turns if first_turns is not None else [None] * len(samples)
        pairs = zip(samples, firsts, strict=True)
        if self.adapter.immediate:  # nothing to overlap: in order, as the tasks below would run
            with gc_paused():
                return [await one(s, f) for s, f in pairs]
        return list(await asyncio.gather(*(one(s, f) for s, f in pairs)))

    async def converse(self, sample: Sample, first_turn: list[Message] | None = None) -> Conversation:
        conversation = Conversation()
        previous_objects: list[Region] = []
        for turn in range(self.renderer.n_turns):
            if turn == 0 and first_turn is not None:
                messages = first_turn
            else:
                try:
                    messages = self.renderer.messages(sample, turn, conversation.outputs, previous_objects)
                except SpecError as exc:  # a later turn built from this sample's answers (no box to name)
                    if turn == 0:
                        raise
                    conversation.error = f"turn {turn}: {exc}"
                    break
            request = Request(
                sample_id=sample.id, task=self.task.task, turn=turn, messages=messages, generation=self.generation
            )
            conversation.prompts.append([m.model_dump() for m in messages])
            response = await self.ask(request)
            if response.error is not None:
                conversation.error = f"turn {turn}: {response.error}"
                break
            conversation.cached_turns += response.cached
            conversation.outputs.append(response.text)
            if turn + 1 < self.renderer.n_turns:
                previous_objects = parse_output(response.text, box_format=self.box_format, sample=sample).objects
        return conversation

    async def ask(self, request: Request) -> Response:
        key = request.fingerprint(self._model_fingerprint) if self.cache is not None else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit
        async with self._slots:
            try:
                response = await self.adapter.generate(request)
            except Exception as exc:  # an adapter bug costs one sample, not the run
                error = _without_secret(f"{type(exc).__name__}: {exc}", os.environ.get(self.model.api_key_env))
                response = Response(error=error)
        if self.cache is not None:
            self.cache.put(key, response)
        return response


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    results: Results
    directory: Path
    seconds: float
    cache_hits: int = 0
    notes: list[str] = field(default_factory=list)


def output_dir(options: RunOptions, model: str, task: str) -> Path:
    directory = options.output / _safe(model) / _safe(task)
    if options.shard is not None:
        directory /= f"shard-{options.shard[0]}-of-{options.shard[1]}"
    return directory


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


async def evaluate(
    task: TaskSpec,
    model: ModelSpec,
    adapter: ModelAdapter,
    options: RunOptions,
    *,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Run one task on one model and write results.json, samples.jsonl and run.json."""
    started = time.perf_counter()
    directory = output_dir(options, model.model, task.task)
    with gc_paused():
        samples = load_samples(task, limit=options.limit)
        indices = list(range(len(samples)))
        if options.shard is not None:
            indices = indices[options.shard[0] :: options.shard[1]]
            samples = [samples[i] for i in indices]
        with warnings.catch_warnings(record=True) as caught:  # e.g. a chest X-ray metric on a CT task
            warnings.simplefilter("always")
            plugins = resolve_metrics(task)
        for plugin in plugins:
            plugin.prepare(samples)
        box_format = options.box_format or task.box_format or model.box_format
        try:
            write_box = get_box_format(box_format).write
        except UnknownNameError as exc:  # --box-format and the model's are checked before; this is the task's
            raise SpecError(str(task.source or task.task), "box_format", str(exc)) from None
        renderer = PromptRenderer(task, model, write_box=write_box)
        # all first turns before any model call, so a template error surfaces first (reused in run_all)
        first_turns = [renderer.messages(sample, 0, []) for sample in samples]
        subset = options.limit is not None or options.shard is not None
        ids = [s.id for s in samples]
        checked = adapter.check(task.task, ids, subset=subset, turns=renderer.n_turns)  # replay reads its file
    notes = [str(w.message) for w in caught] + checked

    cache = ResponseCache(options.cache or options.output / "cache.sqlite") if options.use_cache else None
    try:
        runner = Conversations(task, model, adapter, renderer, box_format=box_format, cache=cache)
        conversations = await runner.run_all(samples, progress, first_turns)
    finally:
        if cache is not None:
            cache.close()
    generated = time.perf_counter()

    with gc_paused():  # the parsed outputs and records die inside, before a collection would traverse them
        results = score_and_write(
            task,
            model,
            samples,
            conversations,
            plugins,
            options,
            box_format=box_format,
            indices=indices,
            directory=directory,
        )
    elapsed = time.perf_counter() - started
    cache_hits = sum(c.cached_turns for c in conversations)
    write_run_info(
        directory,
        {
            "seconds_total": round(elapsed, 3),
            "seconds_generation": round(generated - started, 3),
            "seconds_scoring": round(elapsed - (generated - started), 3),
            "cache_hits": cache_hits,
            "notes": notes,
            "regbench_version": __version__,
            "python": platform.python_version(),
            "machine": platform.platform(),
        },
    )
    return RunResult(results=results, directory=directory, seconds=elapsed, cache_hits=cache_hits, notes=notes)


def score_and_write(
    task: TaskSpec,
    model: ModelSpec,
    samples: Sequence[Sample],
    conversations: Sequence[Conversation],
    plugins: Sequence[Metric],
    options: RunOptions,
    *,
    box_format: str,
    indices: Sequence[int],
    directory: Path,
) -> Results:
    """Parse the last answers, score them, write samples.jsonl and results.json (``indices``: in the dataset)."""
    readings = read_outputs(
        [None if c.error is not None else c.outputs[-1] for c in conversations],
        samples,
        box_format=box_format,
        expect_boxes=task.boxes_expected,
        reads={plugin.reads for plugin in plugins},
    )
    results, records = score(task, model, samples, conversations, readings, plugins, options, box_format)
    results.config["data"] = data_fingerprint(task)
    for index, record in zip(indices, records, strict=True):
        record["index"] = index
    write_samples(directory, records)
    write_results(directory, results)
    return results


@dataclass
class Aggregate:
    """The aggregate part of results.json, from per-plugin stats lists."""

    metrics: dict[str, float] = field(default_factory=dict)
    ci95: dict[str, list[float]] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)


def aggregate(plugins: Sequence[Metric], stats: dict[str, list[Stats]], options: RunOptions) -> Aggregate:
    """Finalize every plugin on its stats list, with bootstrap intervals and signatures."""
    result = Aggregate()
    for plugin in plugins:
        values = plugin.finalize(stats[plugin.name])
        ci = bootstrap_ci(plugin, stats[plugin.name], trials=options.bootstrap_trials, seed=options.seed)
        for key, higher in plugin.output_keys().items():
            if key not in values:
                continue
            result.metrics[key] = float(values[key])
            result.higher_is_better[key] = higher
            result.signatures[key] = _signature(plugin, key, options)
            result.plugins[key] = plugin.name
            if key in ci:
                result.ci95[key] = [ci[key][0], ci[key][1]]
    return result


def score(
    task: TaskSpec,
    model: ModelSpec,
    samples: Sequence[Sample],
    conversations: Sequence[Conversation],
    readings: Readings,
    plugins: Sequence[Metric],
    options: RunOptions,
    box_format: str,
) -> tuple[Results, list[dict[str, Any]]]:
    """Per-sample stats (each plugin scoring its reading of the outputs) → aggregates, intervals and the
    samples.jsonl records."""
    try:
        stats = {plugin.name: plugin.stats_batch(readings.items(plugin.reads)) for plugin in plugins}
        totals = aggregate(plugins, stats, options)
    finally:
        for plugin in plugins:
            plugin.close()

    records = []
    for index, (sample, conversation, parse) in enumerate(zip(samples, conversations, readings.parsed, strict=True)):
        records.append(
            {
                "id": sample.id,
                "prompt": conversation.prompts[-1] if conversation.prompts else [],
                "outputs": conversation.outputs,
                "output": conversation.outputs[-1] if conversation.outputs and not conversation.error else None,
                "error": conversation.error,
                "parsed": parse.model_dump(),
                "reference": {
                    "answer": sample.answer,
                    "objects": [o.model_dump(exclude_none=True) for o in sample.objects],
                    "labels": sample.labels,
                    "image": sample.image,
                },
                "scores": sample_scores(plugins, stats, index),
                "stats": {plugin.name: stats[plugin.name][index] for plugin in plugins},
            }
        )
        if index in readings.errors:
            records[-1]["reading_errors"] = readings.errors[index]

    results = Results(
        task=task.task,
        model=model.model,
        family=task.family,
        language=task.language,
        modality=task.modality,
        n_samples=len(samples),
        n_parse_failures=sum(count_parse_failure(r) for r in records),
        n_errors=sum(r["error"] is not None for r in records),
        **vars(totals),
        bootstrap={"trials": options.bootstrap_trials, "seed": options.seed},
        config={
            "task": task.model_dump(mode="json"),
            "model": _without_secret(_model_config(model), os.environ.get(model.api_key_env)),
            "run": {
                "limit": options.limit,
                "seed": options.seed,
                "box_format": box_format,
                "shard": list(options.shard) if options.shard else None,
            },
        },
        regbench_version=__version__,
    )
    return results, records


def sample_scores(plugins: Sequence[Metric], stats: dict[str, list[Stats]], index: int) -> dict[str, Any]:
    """The ``scores`` of sample ``index`` in samples.jsonl: every plugin's per-sample values that exist."""
    scores: dict[str, Any] = {}
    for plugin in plugins:
        scores.update({k: v for k, v in plugin.sample_scores(stats[plugin.name][index]).items() if v is not None})
    return scores


def data_fingerprint(task: TaskSpec) -> dict[str, Any]:
    """sha256 of a file-based dataset, so two results can be checked to come from the same data."""
    if task.dataset.path is None or task.source is None:
        return {}
    path = task.source.parent / task.dataset.path
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"file": Path(task.dataset.path).name, "sha256": digest}


def count_parse_failure(record: dict[str, Any]) -> bool:
    """A samples.jsonl record whose output came back but could not be parsed: by the task's parse, or by a
    plugin's own reading (``reading_errors``)."""
    return record["error"] is None and (not record["parsed"]["ok"] or bool(record.get("reading_errors")))


def _signature(plugin: Metric, key: str, options: RunOptions) -> str:
    """The plugin's signature for ``key`` with the bootstrap settings before the version."""
    head, _, version = plugin.signature(key).rpartition("|regbench:")
    trials = min(options.bootstrap_trials, plugin.bootstrap_trials)
    return f"{head}|bs:{trials}|rs:{options.seed}|regbench:{version}"


# ---------------------------------------------------------------- shards


def merge_shards(directories: Sequence[Path], destination: Path) -> Results:
    """Merge shard directories of one model and task into one results.json and samples.jsonl.

    The per-sample stats of all shards are put back in dataset order and finalized once,
    so the merged file equals that of an unsharded run.
    """
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
    records = sorted((r for _, rs in shards for r in rs), key=lambda r: r.get("index", 0))
    seen: set[str] = set()
    for record in records:
        if record["id"] in seen:
            raise DataError(f"sample {record['id']!r} appears in more than one shard")
        seen.add(record["id"])
    task = TaskSpec.model_validate(first.config["task"])
    options = RunOptions(bootstrap_trials=first.bootstrap.get("trials", 1000), seed=first.bootstrap.get("seed", 1234))
    plugins = resolve_metrics(task)
    try:
        stats = {p.name: p.rejoin([r["stats"][p.name] for r in records]) for p in plugins}
        totals = aggregate(plugins, stats, options)
    finally:
        for plugin in plugins:
            plugin.close()
    for index, record in enumerate(records):  # per-sample values that depend on the split (CIDEr) changed
        record["scores"] = sample_scores(plugins, stats, index)
        record["stats"] = {plugin.name: stats[plugin.name][index] for plugin in plugins}
    merged = first.model_copy(
        update={
            **vars(totals),
            "n_samples": len(records),
            "n_parse_failures": sum(count_parse_failure(r) for r in records),
            "n_errors": sum(r["error"] is not None for r in records),
            "config": {**first.config, "run": {**run_config, "shard": None}},
        }
    )
    write_samples(destination, records)
    write_results(destination, merged)
    return merged


def _check_complete(shards: Sequence[Results], directories: Sequence[Path]) -> None:
    """Every shard I of one N, each once: a missing shard would silently score a subset."""
    given = [tuple(results.config.get("run", {}).get("shard") or ()) for results in shards]
    for shard, directory in zip(given, directories, strict=True):
        if len(shard) != 2:
            raise DataError(f"{directory}: not a shard (its results.json has no config.run.shard)")
    counts = {n for _, n in given}
    if len(counts) != 1:
        raise DataError(f"the shards come from different splits: {sorted(f'{i}/{n}' for i, n in given)}")
    (n,) = counts
    missing = sorted(set(range(n)) - {i for i, _ in given})
    if missing:
        raise DataError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing: merge needs all {n} shards")


def _model_config(model: ModelSpec) -> dict[str, Any]:
    """The model spec as results.json records it: any ``user:password@`` in ``base_url`` hidden."""
    config = model.model_dump(mode="json")
    if isinstance(config.get("base_url"), str):
        config["base_url"] = url_without_userinfo(config["base_url"])
    elif isinstance(config.get("base_url"), list):
        config["base_url"] = [url_without_userinfo(url) for url in config["base_url"]]
    return config


def _without_secret(value: Any, secret: str | None) -> Any:
    """``value`` with every occurrence of the API key masked: a model YAML may have put it in a
    URL or an option through ``${VAR}``, and results.json must never hold it."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {k: _without_secret(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secret(v, secret) for v in value]
    return value
