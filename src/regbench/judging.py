"""Sending judged metrics' requests to their judge models, through the adapter layer.

A judged metric (:class:`~regbench.metrics.judged.JudgedMetric`) only declares what it wants to ask
(``judge_requests``: requests keyed by ``(sample id, purpose)``) and reads the answers it is handed
(``receive``). :class:`Judges` does the asking: one adapter per judge model YAML (started before the
evaluated model is asked anything, so a missing or unreachable judge stops the run first, exit 2),
answers from the response cache when it has them (under a key of their own: ``judge:`` + the judge's
identity + the rendered request), else from the adapter, at most the judge YAML's ``concurrency``
at once, with the adapter's retries; each answer is cached as soon as it arrives, so a run killed
mid-judging asks none of them again. ``run`` and ``score`` go through here alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from regbench.cache import ResponseCache
from regbench.errors import RegbenchError
from regbench.metrics import Metric
from regbench.metrics.judged import AnswerKey, JudgeAnswer, JudgedMetric, JudgeRequest
from regbench.models import ModelAdapter, Request, build_adapter
from regbench.redact import api_key, without_secret
from regbench.spec import ModelSpec
from regbench.types import Parsed, Response, Sample, SampledAnswers


def judged(plugins: Iterable[Metric]) -> list[JudgedMetric]:
    """The plugins among ``plugins`` that need a judge."""
    return [plugin for plugin in plugins if isinstance(plugin, JudgedMetric) and plugin.needs_judge]


@dataclass
class _Judge:
    spec: ModelSpec
    adapter: ModelAdapter
    fingerprint: str
    slots: asyncio.Semaphore


@dataclass
class JudgeTally:
    """How many judge answers came from the cache and how many were asked (run.json)."""

    cached: int = 0
    asked: int = 0
    failed: int = 0
    by_judge: dict[str, int] = field(default_factory=dict)


class Judges:
    """The started judge adapters of a run, one per judge model (by its cache identity)."""

    def __init__(self) -> None:
        self._judges: dict[str, _Judge] = {}

    async def start(self, plugins: Iterable[JudgedMetric], *, task: str) -> None:
        """Start every judge ``plugins`` name that is not started yet; a judge that cannot be reached or
        does not serve its model is a RegbenchError (exit 2) naming it and the metric."""
        plugins = list(plugins)
        for plugin in plugins:  # every judge and prompt file first: no server is contacted for a typo
            plugin.check()
        for plugin in plugins:
            spec = plugin.judge
            try:
                adapter = build_adapter(spec)
            except RegbenchError as exc:
                raise RegbenchError(f"task {task}: metric {plugin.name}: judge {spec.model}: {exc}") from None
            identity = adapter.fingerprint()
            if identity in self._judges:
                continue
            try:
                await adapter.start()
            except RegbenchError as exc:  # unreachable (exit 3 for a model) is an input error for a judge
                raise RegbenchError(
                    f"task {task}: metric {plugin.name}: the judge {spec.model} cannot be used: {exc}"
                ) from None
            self._judges[identity] = _Judge(spec, adapter, identity, asyncio.Semaphore(adapter.concurrency))

    async def close(self) -> None:
        judges, self._judges = list(self._judges.values()), {}
        for judge in judges:
            await judge.adapter.close()

    def _judge(self, plugin: JudgedMetric) -> _Judge:
        for judge in self._judges.values():
            if judge.spec == plugin.judge:
                return judge
        raise RuntimeError(f"judge {plugin.judge.model} of metric {plugin.name} was not started")

    async def ask(
        self, plugin: JudgedMetric, requests: Sequence[JudgeRequest], cache: ResponseCache | None, tally: JudgeTally
    ) -> dict[AnswerKey, JudgeAnswer]:
        """Every request's answer, keyed by ``(sample id, purpose)``: cached ones first, the rest asked."""
        judge = self._judge(plugin)

        async def one(request: JudgeRequest) -> tuple[AnswerKey, JudgeAnswer]:
            wire = Request(
                sample_id=request.sample_id,
                task=f"judge:{plugin.name}:{request.purpose}",
                messages=list(request.messages),
                generation=request.generation,
            )
            key = wire.fingerprint(f"judge:{judge.fingerprint}") if cache is not None else ""
            if cache is not None and (hit := cache.get(key)) is not None:
                tally.cached += 1
                return (request.sample_id, request.purpose), JudgeAnswer(text=hit.text, cached=True)
            async with judge.slots:
                try:
                    response = await judge.adapter.generate(wire)
                except RegbenchError:
                    raise
                except Exception as exc:  # an adapter bug costs one verdict, not the run
                    error = without_secret(f"{type(exc).__name__}: {exc}", api_key(judge.spec))
                    response = Response(error=error)
            tally.asked += 1
            if response.error is not None:
                tally.failed += 1
                return (request.sample_id, request.purpose), JudgeAnswer(text=None, error=response.error)
            if cache is not None:
                cache.put(key, response)  # committed at once: a kill after this asks it no more
            return (request.sample_id, request.purpose), JudgeAnswer(text=response.text)

        answers = await asyncio.gather(*(one(r) for r in requests))
        tally.by_judge[judge.spec.model] = tally.by_judge.get(judge.spec.model, 0) + len(requests)
        return dict(answers)


async def judge_all(
    plugins: Sequence[JudgedMetric],
    items: Callable[[JudgedMetric], Iterable[tuple[Parsed | None, Sample]]],
    judges: Judges,
    cache: ResponseCache | None,
    *,
    sampled: Sequence[SampledAnswers | None] | None = None,
) -> JudgeTally:
    """Ask every plugin's requests about its ``items(plugin)`` (a parsed answer, ``None`` when the model gave
    none, and its sample; ``sampled``: each item's M answers under ``samples_per_question``, in the same
    order) and hand each plugin its answers. The judges must be started (:meth:`Judges.start`)."""
    tally = JudgeTally()
    for plugin in plugins:
        pairs = list(items(plugin))
        answers = sampled if sampled is not None else [None] * len(pairs)
        requests = [
            request
            for (parsed, sample), many in zip(pairs, answers, strict=True)
            for request in plugin.judge_requests(parsed, sample, many)
        ]
        plugin.receive(await judges.ask(plugin, requests, cache, tally))
    return tally
