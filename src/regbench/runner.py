"""One evaluation run: samples → prompts → model (cached) → parse → metrics → results.

This is the only module that wires the pieces together; each step is a small function
so the flow of docs/architecture.md reads top to bottom in :func:`evaluate`. :func:`run_tasks` runs
several tasks on one model (``regbench run`` and ``score``, or a script). Aggregates and
results.json are assembled by :mod:`regbench.scoring`, and written by :mod:`regbench.results`.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from regbench import __version__
from regbench.cache import ResponseCache
from regbench.collector import gc_paused
from regbench.data import SplitChunks
from regbench.errors import DataError, RegbenchError, SpecError, UnknownNameError, WeightsMissingError
from regbench.judging import Judges, JudgeTally, judge_all, judged
from regbench.metrics import Metric, Stats, build_plugins
from regbench.metrics.judged import JudgedMetric
from regbench.models import ModelAdapter, Request, build_adapter
from regbench.parsing import get_box_format, parse_output
from regbench.parsing.readings import Readings, read_outputs
from regbench.prompts import PromptRenderer
from regbench.redact import api_key, without_secret
from regbench.results import (
    SAMPLE_LINE,
    SAMPLES_FILE,
    Results,
    SampleRecord,
    atomic_open,
    sample_ids_digest,
    write_results,
    write_run_info,
)
from regbench.scoring import (
    Bootstrap,
    aggregate,
    build_results,
    joined,
    reference,
    rejoins,
    sample_scores,
    sample_stats,
    stats_of,
)
from regbench.spec import GenerationSpec, ModelSpec, TaskSpec
from regbench.types import Message, Parsed, Region, Response, Sample, SampledAnswers

ProgressCallback = Callable[[int, int], None]
"""Called with (samples done, samples in all) as a task's conversations finish."""
PhaseCallback = Callable[[str | None], None]
"""Called with what a task is doing once its answers are in (``scoring nlg: waiting for ...``), and
with None when the task is done."""
TaskProgress = Callable[[TaskSpec], ProgressCallback]
"""Called as each task of a multi-task run starts; gives that task's progress callback. When the
callback also has a ``phase`` method (a :data:`PhaseCallback`), the scoring steps are reported to it."""


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
    chunk_size: int = field(default_factory=lambda: _chunk_size(os.environ.get("REGBENCH_CHUNK_SIZE")))
    """Samples read, answered, scored and written at a time (default 25,000; the environment's
    ``REGBENCH_CHUNK_SIZE`` sets another): memory grows with this, not with the split, and the outputs do
    not depend on it."""

    @property
    def bootstrap(self) -> Bootstrap:
        """The bootstrap settings of the intervals (``bootstrap_trials`` and ``seed``)."""
        return Bootstrap(trials=self.bootstrap_trials, seed=self.seed)


def _chunk_size(value: str | None) -> int:
    if value is None or not value.strip():
        return 25_000  # region scoring takes its compiled path from 25,000 samples a batch
    if not value.strip().isdigit() or int(value) < 1:
        raise SpecError("REGBENCH_CHUNK_SIZE", "value", f"must be a whole number of samples >= 1, not {value!r}")
    return int(value)


@dataclass
class Conversation:
    """One sample's exchange with the model: the prompts of each turn and the answers."""

    prompts: list[list[dict[str, Any]]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    cached_turns: int = 0
    logprobs: list[float] | None = None
    """The last answer's token log-probabilities, when asked for and sent."""
    sampled: SampledAnswers | None = None
    """The question's M answers under ``samples_per_question`` (answer 0 is ``outputs``)."""

    def record(
        self,
        sample: Sample,
        parsed: Parsed,
        *,
        index: int,
        scores: dict[str, Any],
        stats: dict[str, Stats],
        reading_errors: dict[str, str] | None = None,
    ) -> SampleRecord:
        """The sample's line in samples.jsonl (``index``: its position in the dataset; ``reading_errors``:
        the plugins' own readings that failed, by box format)."""
        return SampleRecord(
            id=sample.id,
            prompt=self.prompts[-1] if self.prompts else [],
            outputs=self.outputs,
            output=self.outputs[-1] if self.outputs and not self.error else None,
            error=self.error,
            parsed=parsed.model_dump(),
            reference=reference(sample),
            scores=scores,
            stats=stats,
            reading_errors=reading_errors,
            index=index,
        )


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
        """The sample's conversation; under ``samples_per_question: M`` it is held M times, answer ``k`` with
        seed ``(generation.seed or 0) + k`` and log-probabilities, and answer 0 is the one scored."""
        m = self.task.samples_per_question
        if m is None:
            return await self.hold(sample, first_turn, self.generation)
        base = self.generation.seed or 0
        generations = [self.generation.model_copy(update={"seed": base + k, "logprobs": True}) for k in range(m)]
        held = await asyncio.gather(*(self.hold(sample, first_turn, g, k) for k, g in enumerate(generations)))
        main = held[0]
        main.cached_turns = sum(c.cached_turns for c in held)
        failed = next(((k, c.error) for k, c in enumerate(held) if c.error is not None), None)
        if failed is not None:  # the question is scored as an error; a rerun asks only the failed answers
            main.error = main.error or f"sample {failed[0]}: {failed[1]}"
        else:
            main.sampled = SampledAnswers(
                texts=[c.outputs[-1] for c in held], token_logprobs=[c.logprobs for c in held]
            )
        return main

    async def hold(
        self, sample: Sample, first_turn: list[Message] | None, generation: GenerationSpec, k: int = 0
    ) -> Conversation:
        """One conversation of the sample with the given generation settings (``k``: which sample it is)."""
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
                sample_id=sample.id, task=self.task.task, turn=turn, sample=k, messages=messages, generation=generation
            )
            conversation.prompts.append([m.model_dump() for m in messages])
            response = await self.ask(request)
            if response.error is not None:
                conversation.error = f"turn {turn}: {response.error}"
                break
            conversation.cached_turns += response.cached
            conversation.outputs.append(response.text)
            conversation.logprobs = response.logprobs
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
            except RegbenchError:  # the model YAML cannot work (e.g. a wrong endpoint): stop, as at start
                raise
            except Exception as exc:  # an adapter bug costs one sample, not the run
                error = without_secret(f"{type(exc).__name__}: {exc}", api_key(self.model))
                response = Response(error=error)
        if self.cache is not None:
            self.cache.put(key, response)
        return response


# ---------------------------------------------------------------- metric plugins


@dataclass
class TaskPlugins:
    """A task's metric plugins, built (options checked, weights found), and the notes building them gave."""

    plugins: list[Metric]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, task: TaskSpec, *, warm_up: bool = True) -> TaskPlugins:
        """The task's plugins, each warmed up (:meth:`Metric.warm_up`) as soon as it is built."""
        with warnings.catch_warnings(record=True) as caught:  # e.g. a chest X-ray metric on a CT task
            warnings.simplefilter("always")
            plugins = build_plugins(task, started=_warm_up if warm_up else None)
        return cls(plugins, [str(w.message) for w in caught])


def _warm_up(plugin: Metric) -> None:
    plugin.warm_up()


def build_all_plugins(tasks: Sequence[TaskSpec]) -> list[TaskPlugins]:
    """Every task's plugins, before any task runs: the weights missing for any of them in one message
    (each file once). A plugin's slow start (METEOR's JVM) begins as soon as it is built, so it
    overlaps the rest of the run (a JVM started for nothing is ended at exit)."""
    built: list[TaskPlugins] = []
    missing: list[str] = []
    needing: list[str] = []
    for task in tasks:
        try:
            built.append(TaskPlugins.build(task, warm_up=not missing))
        except WeightsMissingError as exc:
            needing.append(task.task)
            missing.extend(line for line in str(exc).splitlines() if line not in missing)
    if missing:
        if len(tasks) > 1:
            missing.insert(0, f"weights are missing for task{'s' * (len(needing) > 1)} {', '.join(needing)}:")
        raise WeightsMissingError("\n".join(missing))
    return built


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    """One task's run: its results, where they were written, how long it took, notes for the user."""

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
    phase: PhaseCallback | None = None,
    built: TaskPlugins | None = None,
    judges: Judges | None = None,
) -> RunResult:
    """Run one task on one model and write results.json, samples.jsonl and run.json (``built``: the task's
    plugins from :func:`build_all_plugins`, else built here; ``phase``: told each scoring step; ``judges``:
    the run's started judge adapters (:func:`evaluate_tasks` starts them before the model); without them,
    the task's judges are started here and closed at the end).

    The split goes through in chunks of ``options.chunk_size`` samples: each is rendered, answered, parsed,
    scored and written before the next is read, and what stays for the whole split is what the aggregates
    need (the plugins' stats, the counts), so memory stays nearly flat as the split grows. A split within
    one chunk is checked whole before any model call (template, images, the adapter's check); a larger one
    chunk by chunk, and the adapter's check of every id comes after the last chunk (nothing is written
    before it passes).
    """
    started = time.perf_counter()
    directory = output_dir(options, model.model, task.task)
    if built is None:
        built = build_all_plugins([task])[0]
    plugins = built.plugins
    # joint plugins read the others' per-sample values: with a plugin whose values need the whole split, the
    # split is one chunk
    whole = any(p.joint for p in plugins) and any(rejoins(p) for p in plugins if not p.joint)
    with gc_paused():
        chunks = Chunks(task, options, whole=whole)
        first = chunks.next()
        assert first is not None  # an empty dataset is a DataError
        for plugin in plugins:
            plugin.prepare(first.samples)
        box_format = options.box_format or task.box_format or model.box_format
        try:
            write_box = get_box_format(box_format).write
        except UnknownNameError as exc:  # --box-format and the model's are checked before; this is the task's
            raise SpecError(str(task.source or task.task), "box_format", str(exc)) from None
        renderer = PromptRenderer(task, model, write_box=write_box)
        # a chunk's first turns before any of its model calls, so a template error surfaces first (reused in run_all)
        first_turns = [renderer.messages(sample, 0, []) for sample in first.samples]
        subset = options.limit is not None or options.shard is not None
        checked = None
        if chunks.exhausted:  # every id is known: the adapter checks them before it is asked anything
            checked = adapter.check(task.task, first.ids, subset=subset, turns=renderer.n_turns)
        if adapter.sends_images:  # a missing file would fail every retry and every rerun of its sample
            check_images(task, model, first.samples)
    notes = list(built.notes)
    generation = model.generation.merged(task.generation)
    if task.samples_per_question is not None and generation.temperature == 0:
        notes.append(
            f"task {task.task}: samples_per_question is {task.samples_per_question} but the temperature is 0 "
            "(greedy): the answers differ only if the backend samples anyway; set generation.temperature"
        )
    judged_plugins = judged(plugins)
    own_judges = Judges() if judged_plugins and judges is None else None
    try:
        if judged_plugins:  # a missing or unreachable judge stops the run before the model is asked
            judges = judges or own_judges
            assert judges is not None
            await judges.start(judged_plugins, task=task.task)
        start = [(first, first_turns)]  # handed over so that no frame here keeps the first chunk alive
        del first, first_turns
        return await _stream(
            task,
            model,
            adapter,
            options,
            plugins,
            renderer,
            chunks,
            start,
            notes=notes,
            checked=checked,
            subset=subset,
            box_format=box_format,
            directory=directory,
            started=started,
            progress=progress,
            phase=phase,
            judges=judges if judged_plugins else None,
        )
    finally:
        if own_judges is not None:
            await own_judges.close()


async def _stream(
    task: TaskSpec,
    model: ModelSpec,
    adapter: ModelAdapter,
    options: RunOptions,
    plugins: list[Metric],
    renderer: PromptRenderer,
    chunks: Chunks,
    start: list[tuple[Chunk, list[list[Message]]]],
    *,
    notes: list[str],
    checked: list[str] | None,
    subset: bool,
    box_format: str,
    directory: Path,
    started: float,
    progress: ProgressCallback | None,
    phase: PhaseCallback | None,
    judges: Judges | None,
) -> RunResult:
    """:func:`evaluate` from its first chunk on: each chunk answered, judged, scored and written in turn."""

    # replayed outputs are their own record: no cache file is created for them
    use_cache = options.use_cache and adapter.cacheable
    cache = ResponseCache(options.cache or options.output / "cache.sqlite") if use_cache else None
    seconds_scoring = 0.0
    cache_hits = 0
    tally = JudgeTally() if judges is not None else None
    first, first_turns = start.pop()
    ids: list[str] = list(first.ids) if checked is None else []
    run = {
        "limit": options.limit,
        "seed": options.seed,
        "box_format": box_format,
        "shard": list(options.shard) if options.shard else None,
    }
    scorer = SplitScorer(
        task, model, plugins, options, box_format=box_format, directory=directory, run=run, phase=phase
    )
    try:
        runner = Conversations(task, model, adapter, renderer, box_format=box_format, cache=cache)
        chunk: Chunk | None = first
        del first  # each chunk is let go before the next is read
        while chunk is not None:
            offset, known = chunk.offset, chunks.n_selected

            def update(done: int, total: int, offset: int = offset, known: int = known) -> None:
                assert progress is not None
                progress(offset + done, max(known, offset + total))

            conversations = await runner.run_all(chunk.samples, update if progress else None, first_turns)
            cache_hits += sum(c.cached_turns for c in conversations)
            scoring = time.perf_counter()
            with gc_paused():
                readings = scorer.read(chunk.samples, conversations)
            if judges is not None and tally is not None:
                found = await ask_judges(judged(plugins), readings, conversations, judges, options)
                if found is not None:
                    _add_tally(tally, found)
            with gc_paused():  # the parsed outputs and records die inside, before a collection would traverse them
                scorer.add(chunk.samples, conversations, chunk.indices, readings)
                del readings
                del conversations
                seconds_scoring += time.perf_counter() - scoring
                chunk, first_turns = None, []
                chunk = chunks.next()
                if chunk is not None:
                    for plugin in plugins:
                        plugin.prepare(chunk.samples)
                    first_turns = [renderer.messages(sample, 0, []) for sample in chunk.samples]
                    if checked is None:
                        ids += chunk.ids
                    if adapter.sends_images:
                        check_images(task, model, chunk.samples)
        if checked is None:  # a split of several chunks: every id is known now, before anything is written
            checked = adapter.check(task.task, ids, subset=subset, turns=renderer.n_turns)
        del ids
        scoring = time.perf_counter()
        with gc_paused():
            results = scorer.finish(n_skipped=chunks.n_skipped)
        seconds_scoring += time.perf_counter() - scoring
    finally:
        scorer.close()
        if cache is not None:
            cache.close()
    notes += checked + scorer.notes
    elapsed = time.perf_counter() - started
    write_run_info(
        directory,
        {
            "seconds_total": round(elapsed, 3),
            "seconds_generation": round(elapsed - seconds_scoring, 3),
            "seconds_scoring": round(seconds_scoring, 3),
            "cache_hits": cache_hits,
            **({"judge": vars(tally)} if tally is not None else {}),
            "notes": notes,
            "regbench_version": __version__,
            "python": platform.python_version(),
            "machine": platform.platform(),
        },
    )
    if phase is not None:
        phase(None)
    return RunResult(results=results, directory=directory, seconds=elapsed, cache_hits=cache_hits, notes=notes)


@dataclass
class Chunk:
    """Consecutive samples of the run (of its shard), with their positions in the dataset."""

    samples: list[Sample]
    indices: list[int]
    offset: int
    """Samples of the run before this chunk."""

    @property
    def ids(self) -> list[str]:
        return [sample.id for sample in self.samples]


class Chunks:
    """The run's samples chunk by chunk (``--shard``: its samples only), one chunk read ahead so the last one
    is known as the last."""

    def __init__(self, task: TaskSpec, options: RunOptions, *, whole: bool = False) -> None:
        size = options.chunk_size if not whole else 2**62
        self.split = SplitChunks(task, size=size, limit=options.limit, validate=True)
        self._reader = iter(self.split)
        self._shard = options.shard
        self._read = 0
        self.n_selected = 0
        """Samples of the run read so far (the chunk read ahead included)."""
        self._ahead: Chunk | None = self._take()
        self._first = True
        self.exhausted = False
        """Whether the first chunk is the whole run (known once it has been handed out)."""

    def _take(self) -> Chunk | None:
        samples = next(self._reader, None)
        if samples is None:
            return None
        start = self._read
        self._read += len(samples)
        indices = list(range(start, self._read))
        if self._shard is not None:  # samples i, i+n, i+2n, ... of the dataset
            i, n = self._shard
            indices = indices[(i - start) % n :: n]
            samples = [samples[index - start] for index in indices]
        chunk = Chunk(samples, indices, self.n_selected)
        self.n_selected += len(samples)
        return chunk

    def next(self) -> Chunk | None:
        """The next chunk, or None after the last. Only the first is followed by the next one read ahead
        (so :attr:`exhausted` can tell whether it is the whole run); later chunks are read as they are
        needed, so at most two chunks are held at once, and only at the start."""
        if self._first:
            self._first = False
            chunk, self._ahead = self._ahead, self._take()
            self.exhausted = self._ahead is None
            return chunk
        chunk, self._ahead = self._ahead, None
        return chunk if chunk is not None else self._take()

    @property
    def n_skipped(self) -> int:
        """The dataset's records its reader skipped (final once the chunks are exhausted)."""
        return self.split.n_skipped


def check_images(task: TaskSpec, model: ModelSpec, samples: Sequence[Sample]) -> None:
    """Raise a DataError naming the first sample whose image file does not exist."""
    for sample in samples:
        for image in sample.image:
            if not Path(image).is_file():
                data = f" (dataset.path: {task.dataset.path})" if task.dataset.path else ""
                raise DataError(
                    f"task {task.task}: sample {sample.id!r}: image not found: {image}{data}; the {model.adapter} "
                    f"adapter of model {model.model} sends each sample's images, so every one must exist "
                    f"(`regbench data check {task.task}` lists them all; scoring recorded outputs needs none)"
                )


class SplitScorer:
    """Parses, scores and writes a run's samples chunk by chunk (:meth:`add`), then aggregates and writes
    results.json (:meth:`finish`); :meth:`close` after, in any case (an unfinished samples.jsonl is dropped).

    Kept across the split: each plugin's stats of every chunk (columns where the plugin makes them) and the
    counts. Each chunk's samples.jsonl lines are written as the chunk is scored, unless a plugin's per-sample
    values depend on the whole split (:func:`regbench.scoring.rejoins`): then the chunks' records wait in a
    temporary file and are written once those values are known, byte for byte as from one pass.
    """

    def __init__(
        self,
        task: TaskSpec,
        model: ModelSpec,
        plugins: Sequence[Metric],
        options: RunOptions,
        *,
        box_format: str,
        directory: Path,
        run: dict[str, Any],
        phase: PhaseCallback | None = None,
    ) -> None:
        self.task, self.model, self.plugins, self.options = task, model, plugins, options
        self.phase = phase
        self.box_format, self.directory, self.run = box_format, directory, run
        self.parts: dict[str, list[Sequence[Stats]]] = {plugin.name: [] for plugin in plugins}
        self.counts = {"n_samples": 0, "n_parse_failures": 0, "n_errors": 0}
        self.ids: list[str] = []
        """The samples' ids (results.json's ``sample_ids`` digest)."""
        self.n_chunks = 0
        self._files = ExitStack()
        self._lines: TextIO | None = None
        self._spool: IO[bytes] | None = None
        self._closed = False
        self.notes: list[str] = []
        """The plugins' notes about the split's aggregates (:meth:`Metric.notes`), once finished."""

    def read(self, samples: Sequence[Sample], conversations: Sequence[Conversation]) -> Readings:
        """The chunk's last answers, read once per reading the plugins need."""
        if self.phase is not None:
            self.phase("reading the answers")
        return read_outputs(
            [None if c.error is not None else c.outputs[-1] for c in conversations],
            samples,
            box_format=self.box_format,
            expect_boxes=self.task.boxes_expected,
            reads={plugin.reads for plugin in self.plugins},
        )

    def add(
        self,
        samples: Sequence[Sample],
        conversations: Sequence[Conversation],
        indices: Sequence[int],
        readings: Readings,
    ) -> None:
        """Score the chunk's answers (:meth:`read`, judged where a plugin is) and write (or keep) its
        samples.jsonl records."""
        sampled = [c.sampled for c in conversations]
        stats = stats_of(self.plugins, readings, phase=self.phase, sampled=sampled)
        if self.phase is not None:
            self.phase("writing samples")
        records = [
            conversation.record(
                sample,
                parse,
                index=index,
                scores=sample_scores(self.plugins, stats, i),
                stats=sample_stats(self.plugins, stats, i),
                reading_errors=readings.errors.get(i),
            )
            for i, (sample, conversation, parse, index) in enumerate(
                zip(samples, conversations, readings.parsed, indices, strict=True)
            )
        ]
        add_judge_records(judged(self.plugins), samples, stats, records)
        for plugin in self.plugins:
            self.parts[plugin.name].append(stats[plugin.name])
        self.counts["n_samples"] += len(records)
        self.counts["n_parse_failures"] += sum(record.parse_failed for record in records)
        self.counts["n_errors"] += sum(record.error is not None for record in records)
        self.ids += [record.id for record in records]
        self.n_chunks += 1
        if any(rejoins(plugin) for plugin in self.plugins):
            if self._spool is None:
                self._spool = self._files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
            pickle.dump(records, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            self._write(records)

    def _write(self, records: Sequence[SampleRecord]) -> None:
        if self._lines is None:
            self._lines = self._files.enter_context(atomic_open(self.directory / SAMPLES_FILE))
        if records:  # as write_samples writes them: one line per record
            self._lines.write("\n".join(map(SAMPLE_LINE.encode, map(SampleRecord.to_dict, records))) + "\n")

    def finish(self, *, n_skipped: int = 0) -> Results:
        """The aggregates of the whole split; samples.jsonl, then results.json, written."""
        try:
            stats = {plugin.name: joined(plugin, self.parts[plugin.name]) for plugin in self.plugins}
            self.parts.clear()
            self.notes = [note for plugin in self.plugins for note in plugin.notes(stats[plugin.name])]
            if self.phase is not None and self.options.bootstrap.trials:
                self.phase("bootstrap intervals")
            totals = aggregate(self.plugins, stats, self.options.bootstrap)
        finally:
            for plugin in self.plugins:
                plugin.close()
        if self.phase is not None:
            self.phase("writing results")
        if self._spool is not None:  # the records again, with the values of the whole split
            self._spool.seek(0)
            again = [plugin for plugin in self.plugins if rejoins(plugin)]
            position = 0
            for _ in range(self.n_chunks):
                records: list[SampleRecord] = pickle.load(self._spool)
                for record in records:
                    for plugin in again:
                        record.stats[plugin.name] = stats[plugin.name][position]
                    record.scores = {
                        key: value
                        for plugin in self.plugins
                        for key, value in plugin.sample_scores(record.stats[plugin.name]).items()
                        if value is not None
                    }
                    position += 1
                self._write(records)
        if self.counts["n_samples"] == 0:
            self._write([])
            assert self._lines is not None
            self._lines.write("\n")  # as write_samples writes no records: one empty line
        results = build_results(
            self.task,
            self.model,
            {**self.counts, "sample_ids": sample_ids_digest(self.ids)},
            totals,
            bootstrap=self.options.bootstrap,
            run=self.run,
            n_skipped=n_skipped,
        )
        self._files.close()  # samples.jsonl replaces the old one here
        self._closed = True
        write_results(self.directory, results)
        return results

    def close(self) -> None:
        """Drop what :meth:`finish` did not complete (the temporary samples.jsonl, the kept records)."""
        if not self._closed:
            self._closed = True
            self._files.__exit__(RuntimeError, RuntimeError("run stopped"), None)


async def ask_judges(
    plugins: Sequence[JudgedMetric],
    readings: Readings,
    conversations: Sequence[Conversation],
    judges: Judges,
    options: RunOptions,
) -> JudgeTally | None:
    """Hand every judged plugin its judge's answers about the samples the model answered (cached under
    their own keys in the run's cache file, in ``run`` and ``score`` alike)."""
    if not plugins:
        return None
    cache = ResponseCache(options.cache or options.output / "cache.sqlite") if options.use_cache else None

    def items(plugin: Metric) -> list[tuple[Parsed | None, Sample]]:
        pairs = zip(readings.items(plugin.reads), conversations, strict=True)
        return [(None if c.error is not None else parsed, sample) for (parsed, sample), c in pairs]

    try:
        return await judge_all(plugins, items, judges, cache, sampled=[c.sampled for c in conversations])
    finally:
        if cache is not None:
            cache.close()


def _add_tally(tally: JudgeTally, chunk: JudgeTally) -> None:
    """Add a chunk's judge tally to the run's."""
    tally.cached += chunk.cached
    tally.asked += chunk.asked
    tally.failed += chunk.failed
    for judge, n in chunk.by_judge.items():
        tally.by_judge[judge] = tally.by_judge.get(judge, 0) + n


def add_judge_records(
    plugins: Sequence[JudgedMetric],
    samples: Sequence[Sample],
    stats: dict[str, list[Stats]],
    records: Sequence[SampleRecord],
) -> None:
    """Each record's ``judge`` entries (raw answer, verdict, parse error); a judge that could not be asked
    after its retries is the sample's ``error`` (counted in n_errors: the run is incomplete, a rerun asks it
    again) unless the model's own call failed."""
    if not plugins:
        return
    for i, (sample, record) in enumerate(zip(samples, records, strict=True)):
        record.judge = {}
        for plugin in plugins:
            entry = plugin.judge_record(sample, stats[plugin.name][i])
            if entry is None:
                continue
            record.judge[plugin.name] = entry
            if "error" in entry and record.error is None:
                record.error = f"judge {plugin.judge.model} (metric {plugin.name}): {entry['error']}"


# ---------------------------------------------------------------- several tasks, one model


def run_tasks(
    model: ModelSpec,
    tasks: Sequence[TaskSpec],
    options: RunOptions,
    *,
    concurrency: int | None = None,
    progress: AbstractContextManager[TaskProgress] | None = None,
) -> list[RunResult]:
    """Run tasks one after another on one model, in an event loop of their own; see :func:`evaluate_tasks`.

    ``concurrency`` overrides the model spec's requests in flight.
    """
    adapter = build_adapter(model, concurrency=concurrency)
    return asyncio.run(evaluate_tasks(model, adapter, tasks, options, progress=progress))


async def evaluate_tasks(
    model: ModelSpec,
    adapter: ModelAdapter,
    tasks: Sequence[TaskSpec],
    options: RunOptions,
    *,
    progress: AbstractContextManager[TaskProgress] | None = None,
) -> list[RunResult]:
    """Build every task's plugins (:func:`build_all_plugins`: missing weights stop the run here, and
    METEOR's JVM starts), start the adapter, :func:`evaluate` each task in turn, close the adapter
    (also on an error).

    ``progress`` is entered once the adapter has started (a model that cannot be reached
    shows no progress) and is asked for each task's progress callback.
    """
    results = []
    built = build_all_plugins(tasks)
    judges = Judges()
    try:
        for task, plugins in zip(tasks, built, strict=True):  # every judge answers before the model is asked
            if needed := judged(plugins.plugins):
                await judges.start(needed, task=task.task)
        await adapter.start()
        try:
            with progress if progress is not None else nullcontext(None) as task_progress:
                for task, plugins in zip(tasks, built, strict=True):
                    update = task_progress(task) if task_progress is not None else None
                    phase = getattr(update, "phase", None)
                    results.append(
                        await evaluate(
                            task, model, adapter, options, progress=update, phase=phase, built=plugins, judges=judges
                        )
                    )
        finally:
            await adapter.close()
    finally:
        await judges.close()
    return results
