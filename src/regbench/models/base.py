"""The adapter interface: a request (messages + images + generation parameters) in, text out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel

from regbench.errors import SpecError, UnknownNameError
from regbench.registry import Registry
from regbench.spec import GenerationSpec, ModelSpec
from regbench.types import Message, Response


class Request(BaseModel):
    """What the runner asks of a model for one turn of one sample."""

    sample_id: str
    task: str
    turn: int = 0
    sample: int = 0
    """Which of the question's ``samples_per_question`` answers this asks for (0 without sampling);
    the seed in ``generation`` already tells the cache key apart, this tells a recording which to replay."""
    messages: list[Message]
    generation: GenerationSpec

    def fingerprint(self, model_fingerprint: str) -> str:
        """Cache key: the model's identity plus everything that shapes its answer."""
        payload = {
            "model": model_fingerprint,
            "messages": [m.model_dump() for m in self.messages],
            "generation": self.generation.model_dump(),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ModelAdapter(ABC):
    """Turns requests into responses. Subclasses are registered in ``ADAPTERS`` by name.

    ``generate`` is async so a concurrent adapter (HTTP) and a sequential one (replay,
    local checkpoint) share one runner; the runner bounds concurrency with ``concurrency``.
    """

    cacheable: ClassVar[bool] = True
    """Whether responses are worth caching (replaying a file is not)."""
    immediate: ClassVar[bool] = False
    """Whether ``generate`` answers from memory, never waiting on I/O (replay): the runner then goes
    through the samples one by one instead of starting a task per sample, with the same results."""
    sends_images: ClassVar[bool] = False
    """Whether the model is sent each sample's image files: the runner then checks they all exist
    before the first request (a recorded answer, as replay gives, needs none)."""

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        self.spec = spec
        self.concurrency = concurrency or spec.concurrency

    @abstractmethod
    async def generate(self, request: Request) -> Response: ...

    async def start(self) -> None:
        """Open connections or load weights; raise ModelUnavailableError with a clear message."""

    async def close(self) -> None:
        """Release what ``start`` acquired."""

    def check(self, task: str, sample_ids: Sequence[str], *, subset: bool, turns: int = 1) -> list[str]:
        """Before any request of a task: raise an error when the adapter cannot answer it at all
        (an unreadable predictions file), else return notes for the user (``subset``: the run
        covers only part of the task, via ``--limit`` or a shard; ``turns``: its prompt's turns)."""
        return []

    def fingerprint(self) -> str:
        """The model's identity for the response cache: never the URL, key or concurrency."""
        identity = {
            "adapter": self.spec.adapter,
            "model": self.spec.model,
            "model_name": self.spec.model_name,
            "path": self.spec.path,
            "options": self.spec.options,
        }
        return json.dumps(identity, sort_keys=True, ensure_ascii=False)


ADAPTERS: Registry[type[ModelAdapter]] = Registry(
    "model adapter", entry_point_group="regbench.adapters", base=ModelAdapter
)


def build_adapter(spec: ModelSpec, *, concurrency: int | None = None, task: str | None = None) -> ModelAdapter:
    """Instantiate the adapter a model YAML names; an unknown adapter or box format names the file and field."""
    from regbench.parsing import get_box_format

    try:
        adapter_type = ADAPTERS.get(spec.adapter)
    except UnknownNameError as exc:
        raise SpecError(spec_file(spec), "adapter", str(exc)) from None
    try:
        get_box_format(spec.box_format)
    except UnknownNameError as exc:
        raise SpecError(spec_file(spec), "box_format", str(exc)) from None
    if spec.adapter != "lm-eval":  # set for another adapter, they would be ignored in silence
        for name in ("lm_eval_model", "model_args"):
            if getattr(spec, name) is not None:
                raise SpecError(spec_file(spec), name, f"only `adapter: lm-eval` reads it (this is {spec.adapter!r})")
    return adapter_type(spec, concurrency=concurrency)


def spec_file(spec: ModelSpec) -> str:
    """Where a model spec came from, for error messages (a spec built in code names the model)."""
    return str(spec.source) if spec.source is not None else f"model {spec.model}"
