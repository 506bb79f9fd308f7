"""Local Hugging Face checkpoints through transformers: processor + chat template + generate.

Requests that arrive together are generated in batches (up to ``options.batch_size``, left
padding), in a worker thread so the event loop keeps serving the cache and progress bar. A
batch that fails is retried one request at a time, so one unreadable image costs one sample.
The model class defaults to ``AutoModelForImageTextToText``; ``options.model_class`` names
another class in transformers (``LlavaForConditionalGeneration``, ``AutoModelForCausalLM``, ...).
Options: ``device`` (``auto``: CUDA when present, else CPU), ``device_map`` (passed to
``from_pretrained`` instead of moving the model to ``device``, e.g. ``auto`` to spread a large
model over several GPUs), ``dtype`` (``auto``, ``float32``, ``bfloat16``, ``float16``),
``batch_size``, ``volume_slices`` (axial slices per ``.npy`` volume), ``trust_remote_code``
(off unless the model YAML says so). Weights load from ``path`` only: nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from regbench.errors import ModelUnavailableError, SpecError
from regbench.models.base import ModelAdapter, Request, spec_file
from regbench.models.images import load_images
from regbench.spec import ModelSpec
from regbench.types import Message, Response

_DTYPES = ("auto", "float32", "bfloat16", "float16")

_Item = tuple[Request, "asyncio.Future[Response]"]


class TransformersAdapter(ModelAdapter):
    """A local checkpoint (``path``) run with transformers on CPU or GPU, batched."""

    sends_images = True

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        super().__init__(spec, concurrency=concurrency)
        if not spec.path:
            raise SpecError(spec_file(spec), "path", "the transformers adapter needs `path` (a checkpoint directory)")
        self.batch_size = int(spec.options.get("batch_size", 8))
        dtype = spec.options.get("dtype", "auto")
        if dtype not in _DTYPES:
            raise SpecError(spec_file(spec), "options.dtype", f"must be one of {_DTYPES}, got {dtype!r}")
        # Let a whole batch queue up: the runner's semaphore is the adapter's concurrency.
        self.concurrency = max(self.concurrency, self.batch_size)
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.model: Any = None
        self.processor: Any = None
        self.device = "cpu"

    def checkpoint(self) -> Path:
        path = Path(self.spec.path or "").expanduser()
        if not path.is_absolute() and self.spec.source is not None:
            path = self.spec.source.parent / path
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"model {self.spec.model}: no checkpoint at {path} (expected config.json there). regbench does not "
                "download weights: put the model directory there, or point `path` at it."
            )
        return path

    def load(self) -> None:
        """Load processor and model (blocking; called once, in a thread)."""
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ModelUnavailableError(
                f"model {self.spec.model}: the transformers adapter needs torch and transformers "
                f"(pip install 'regbench[hf]'; pin torch to the build for your machine): {exc}"
            ) from None

        path = self.checkpoint()
        options = self.spec.options
        trust = bool(options.get("trust_remote_code", False))
        name = options.get("model_class", "AutoModelForImageTextToText")
        model_class = getattr(transformers, name, None)
        if model_class is None:
            raise SpecError(spec_file(self.spec), "options.model_class", f"transformers has no class {name!r}")
        dtype = options.get("dtype", "auto")
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust)
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"  # decoder-only batches generate from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        extra = {"device_map": options["device_map"]} if "device_map" in options else {}
        self.model = model_class.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust, **extra)
        if extra:
            self.device = str(self.model.device)
        else:
            device = options.get("device", "auto")
            self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
            self.model.to(self.device)
        self.model.eval()

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    async def start(self) -> None:
        if self.model is None:
            try:
                await asyncio.to_thread(self.load)
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise ModelUnavailableError(f"model {self.spec.model}: cannot load {self.spec.path}: {exc}") from None
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._serve())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
            self._queue = None

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
            groups: dict[str, list[_Item]] = {}
            for item in batch:  # one generate() call per set of generation parameters
                groups.setdefault(item[0].generation.model_dump_json(), []).append(item)
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
            return [Response(error=f"{type(exc).__name__}: {exc}") for _ in group]
        return [Response(text=text) for text in texts]

    def generate_batch(self, requests: list[Request]) -> list[str]:
        """Generate for requests that share generation parameters (runs in a thread)."""
        import torch

        texts, images = [], []
        for request in requests:
            conversation = []
            for message in request.messages:
                loaded = [image for path in message.images for image in load_images(path, self.spec.options)]
                images.extend(loaded)
                conversation.append(self._message(message, len(loaded)))
            texts.append(self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False))
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt").to(self.device)
        inputs.pop("token_type_ids", None)  # some tokenizers add it; generate() rejects it
        generation = requests[0].generation
        kwargs: dict[str, Any] = {"max_new_tokens": generation.max_tokens, "do_sample": generation.temperature > 0}
        if generation.temperature > 0:
            kwargs.update(temperature=generation.temperature, top_p=generation.top_p or 1.0)
            if generation.seed is not None:
                torch.manual_seed(generation.seed)
        if generation.stop:
            kwargs["stopping_criteria"] = [_stop_on_text(self.tokenizer, generation.stop, inputs["input_ids"].shape[1])]
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [_cut(text, generation.stop).strip() for text in decoded]

    @staticmethod
    def _message(message: Message, n_images: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": message.content})
        return {"role": message.role, "content": content}


def _stop_on_text(tokenizer: Any, stop: list[str], prompt_length: int) -> Any:
    """A stopping criterion: a row is done once its decoded new text holds a stop string.

    transformers' own ``stop_strings`` needs a tokenizer whose vocabulary it can map back to
    text, which not every tokenizer allows; decoding the new tokens works for all of them.
    """
    import torch
    from transformers import StoppingCriteria

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_length:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)

    return StopOnText()


def _cut(text: str, stop: list[str] | None) -> str:
    """The text before the first stop string (the OpenAI convention: the stop string is not returned)."""
    cuts = [index for s in stop or [] if (index := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text
