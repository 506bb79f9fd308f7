"""Any lm-evaluation-harness model as a regbench model: ``adapter: lm-eval``.

A model YAML names a model registered in lm-eval (``lm_eval --model NAME``) and its arguments
(``--model_args``) as a mapping::

    model: qwen25-vl-hf
    adapter: lm-eval
    lm_eval_model: hf-multimodal
    model_args: {pretrained: /models/Qwen2.5-VL-7B-Instruct, max_images: 4}
    box_format: qwen25_vl

Every turn of every sample is one ``generate_until`` request; requests that arrive together are
handed to lm-eval in one call (up to ``options.batch_size``, default 64), in a worker thread,
so lm-eval's own batching (vLLM, hf) applies. regbench's cache, resume, parsing, metrics and
reports are as for any adapter. The messages go through the model's chat template
(``options.apply_chat_template``, default true; false sends system and user texts joined by a
blank line). Images are passed to models that declare ``MULTIMODAL`` (hf-multimodal, vllm-vlm,
the API models), as PIL images (a ``.npy`` volume as ``options.volume_slices`` slices); local
multimodal models find them at ``<image>`` placeholders put before the text
(``options.image_placeholder`` changes it, "" leaves it out), API models receive them as parts
of the last message, where lm-eval puts them. A text-only model gets the text.

lm-eval is optional (``pip install 'regbench[lm-eval]'``) and imported when a model YAML uses this
adapter; an lm-eval that is missing, an unknown model name and model_args the model rejects are
errors naming the field (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Sequence
from typing import Any

from regbench.errors import ModelUnavailableError, RegbenchError, SpecError
from regbench.models.base import ModelAdapter, Request, spec_file
from regbench.models.images import load_images
from regbench.redact import api_key, without_secret
from regbench.spec import GenerationSpec, ModelSpec
from regbench.types import Message, Response

INSTALL = "pip install 'regbench[lm-eval]'"
IMAGE_PLACEHOLDER = "<image>"
"""Where lm-eval's local multimodal models (hf-multimodal, vllm-vlm) put an image in the text."""

# model_args that say how to reach the model, not which model answers: not part of the cache key
_TRANSPORT = frozenset(
    {
        "base_url",
        "num_concurrent",
        "max_retries",
        "timeout",
        "batch_size",
        "max_batch_size",
        "verify_certificate",
        "ca_cert_path",
        "auth_token",
        "header",
    }
)

_Item = tuple[Request, "asyncio.Future[Response]"]


def gen_kwargs(generation: GenerationSpec) -> dict[str, Any]:
    """regbench's generation settings as lm-eval's ``generate_until`` kwargs (also the export's YAML).

    ``seed`` has no lm-eval counterpart per request (lm-eval models take a ``seed`` model arg).
    """
    kwargs: dict[str, Any] = {
        "until": list(generation.stop or []),
        "max_gen_toks": generation.max_tokens,
        "do_sample": generation.temperature > 0,
        "temperature": generation.temperature,
    }
    if generation.top_p is not None:
        kwargs["top_p"] = generation.top_p
    return kwargs


def lm_eval_model_class(name: str, *, file: str) -> type[Any]:
    """The lm-eval model class registered as ``name``; clear errors when lm-eval or the name is missing."""
    try:
        import lm_eval  # noqa: F401  (the package itself first: a stale submodule must not hide its absence)
        from lm_eval.api.registry import get_model, model_registry
    except ImportError:
        raise RegbenchError(f"{file}: adapter: lm-eval is not installed; to install it: {INSTALL}") from None
    try:
        return get_model(name)  # type: ignore[no-any-return]
    except (ValueError, KeyError):
        from regbench.registry import did_you_mean

        known = list(model_registry.keys())
        raise SpecError(file, "lm_eval_model", did_you_mean("lm-eval model", name, known)) from None
    except ImportError as exc:  # a registered model whose own dependencies are missing (vllm, ...)
        raise RegbenchError(
            f"{file}: lm_eval_model: lm-eval model {name!r} cannot be imported ({exc}): install lm-eval's extra "
            "for that backend (pip install 'lm-eval[hf]', 'lm-eval[vllm]', ...)"
        ) from None


class LMEvalAdapter(ModelAdapter):
    """A model registered in lm-eval, asked through ``generate_until``, batched."""

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        super().__init__(spec, concurrency=concurrency)
        file = spec_file(spec)
        if not spec.lm_eval_model:
            raise SpecError(
                file,
                "lm_eval_model",
                "the lm-eval adapter needs lm_eval_model: an lm-eval model name (hf, hf-multimodal, vllm, "
                "vllm-vlm, local-chat-completions, ...)",
            )
        self.model_class = lm_eval_model_class(spec.lm_eval_model, file=file)
        options = spec.options
        self.chat = options.get("apply_chat_template", True)
        if not isinstance(self.chat, bool):
            raise SpecError(file, "options.apply_chat_template", f"expected true or false, got {self.chat!r}")
        self.batch_size = options.get("batch_size", 64)
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise SpecError(file, "options.batch_size", f"expected a whole number >= 1, got {self.batch_size!r}")
        self.multimodal = bool(getattr(self.model_class, "MULTIMODAL", False))
        placeholder = options.get("image_placeholder")
        if placeholder is not None and not isinstance(placeholder, str):
            raise SpecError(file, "options.image_placeholder", f"expected a string, got {placeholder!r}")
        self.placeholder = placeholder if placeholder is not None else self._default_placeholder()
        self.concurrency = max(self.concurrency, self.batch_size)  # let a whole batch queue up
        self.lm: Any = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def sends_images(self) -> bool:  # type: ignore[override]
        return self.multimodal

    def _default_placeholder(self) -> str:
        """``<image>`` for lm-eval's local multimodal models; none for API models (images are message parts)."""
        if not self.multimodal:
            return ""
        try:
            from lm_eval.models.api_models import TemplateAPI
        except ImportError:  # lm-eval without its [api] extra: no API model is registered either
            return IMAGE_PLACEHOLDER
        return "" if issubclass(self.model_class, TemplateAPI) else IMAGE_PLACEHOLDER

    # -- lifecycle ------------------------------------------------------------------------
    def load(self) -> Any:
        """Instantiate the lm-eval model with ``model_args`` (blocking; called once, in a thread)."""
        file, name = spec_file(self.spec), self.spec.lm_eval_model
        try:
            lm = self.model_class.create_from_arg_obj(dict(self.spec.model_args or {}))
        except (TypeError, ValueError, KeyError, AssertionError) as exc:  # what lm-eval models raise on bad args
            reason = without_secret(f"{type(exc).__name__}: {exc}", api_key(self.spec))
            raise SpecError(file, "model_args", f"lm-eval model {name!r} rejects them: {reason}") from None
        except RegbenchError:
            raise
        except Exception as exc:  # weights that are not there, a dependency that fails at load
            reason = without_secret(f"{type(exc).__name__}: {exc}", api_key(self.spec))
            message = f"model {self.spec.model}: lm-eval model {name!r} cannot be loaded: {reason}"
            raise ModelUnavailableError(message) from None
        if self.chat:
            try:  # a model without a chat template would fail every request: stop now
                lm.apply_chat_template([{"role": "user", "content": "ping"}], add_generation_prompt=True)
            except Exception as exc:
                raise SpecError(
                    file,
                    "options.apply_chat_template",
                    f"lm-eval model {name!r} cannot apply a chat template ({type(exc).__name__}: {exc}); "
                    "set options.apply_chat_template: false to send plain text",
                ) from None
        return lm

    async def start(self) -> None:
        if self.lm is None:
            self.lm = await asyncio.to_thread(self.load)
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._serve())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
            self._queue = None

    def check(self, task: str, sample_ids: Sequence[str], *, subset: bool, turns: int = 1) -> list[str]:
        if self.multimodal:
            return []
        return [f"lm-eval model {self.spec.lm_eval_model!r} takes text only: images of {task}, if any, are not sent"]

    # -- requests -------------------------------------------------------------------------
    async def generate(self, request: Request) -> Response:
        if self._queue is None:
            await self.start()
        assert self._queue is not None
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _serve(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # let requests issued in the same tick join the batch
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: dict[tuple[str, bool], list[_Item]] = {}
            for item in batch:  # lm-eval reads one request's arguments for the whole call
                images = any(m.images for m in item[0].messages) and self.multimodal
                groups.setdefault((item[0].generation.model_dump_json(), images), []).append(item)
            for group in groups.values():
                results = await self._run(group)
                if len(group) > 1 and all(r.error is not None for r in results):
                    results = [(await self._run([item]))[0] for item in group]  # find the one that fails
                for (_, future), response in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(response)

    async def _run(self, group: list[_Item]) -> list[Response]:
        try:
            texts = await asyncio.to_thread(self.generate_batch, [request for request, _ in group])
        except Exception as exc:  # recorded per sample; the run goes on
            error = without_secret(f"{type(exc).__name__}: {exc}", api_key(self.spec))
            return [Response(error=error) for _ in group]
        return [Response(text=text if isinstance(text, str) else "") for text in texts]

    def generate_batch(self, requests: list[Request]) -> list[str]:
        """One lm-eval ``generate_until`` call for requests that share generation settings (in a thread)."""
        from lm_eval.api.instance import Instance

        instances = []
        for index, request in enumerate(requests):
            context, images = self.context(request.messages)
            arguments: tuple[Any, ...] = (context, gen_kwargs(request.generation))
            if images:
                arguments += ({"visual": images},)
            instances.append(
                Instance(
                    request_type="generate_until",
                    doc={},
                    arguments=arguments,
                    idx=0,
                    metadata=(request.task, index, 1),
                )
            )
        generate = self.lm.generate_until
        quiet = {"disable_tqdm": True} if "disable_tqdm" in inspect.signature(generate).parameters else {}
        texts = generate(instances, **quiet)
        if len(texts) != len(instances):
            raise RuntimeError(f"lm-eval returned {len(texts)} answers for {len(instances)} requests")
        return list(texts)

    def context(self, messages: list[Message]) -> tuple[Any, list[Any]]:
        """The request's context as the lm-eval model takes it (chat-templated or plain) and its images."""
        chat: list[dict[str, str]] = []
        images: list[Any] = []
        for message in messages:
            content = message.content
            if message.images and self.multimodal:
                loaded = [image for path in message.images for image in load_images(path, self.spec.options)]
                images.extend(loaded)
                content = self.placeholder * len(loaded) + content
            chat.append({"role": message.role, "content": content})
        if self.chat:
            return self.lm.apply_chat_template(chat, add_generation_prompt=True), images
        return "\n\n".join(turn["content"] for turn in chat), images

    def fingerprint(self) -> str:
        identity = json.loads(super().fingerprint())
        identity["lm_eval_model"] = self.spec.lm_eval_model
        identity["model_args"] = {k: v for k, v in (self.spec.model_args or {}).items() if k not in _TRANSPORT}
        identity["options"] = {k: v for k, v in self.spec.options.items() if k != "batch_size"}
        return json.dumps(identity, sort_keys=True, ensure_ascii=False)
