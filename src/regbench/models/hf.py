"""Local Hugging Face checkpoints through transformers: processor + chat template + generate.

Requests that arrive together are generated in batches (up to ``options.batch_size``, left
padding), in a worker thread so the event loop keeps serving the cache and progress bar. The
model class defaults to ``AutoModelForImageTextToText``; ``options.model_class`` names another
class in transformers (``LlavaForConditionalGeneration``, ``AutoModelForCausalLM``, ...).
Options: ``device`` (``auto``: CUDA when present, else CPU), ``dtype`` (``auto``, ``float32``,
``bfloat16``, ``float16``), ``batch_size``, ``trust_remote_code`` (off unless the model YAML says
so). Weights load from ``path`` only: nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from regbench.errors import ModelUnavailableError
from regbench.models.base import Message, ModelAdapter, Request, Response
from regbench.spec import ModelSpec


class TransformersAdapter(ModelAdapter):
    """A local checkpoint (``path``) run with transformers on CPU or GPU, batched."""

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        super().__init__(spec, concurrency=concurrency)
        if not spec.path:
            raise ModelUnavailableError(f"model {spec.model}: the transformers adapter needs `path` (a checkpoint)")
        self.batch_size = int(spec.options.get("batch_size", 8))
        # Let a whole batch queue up: the runner's semaphore is the adapter's concurrency.
        self.concurrency = max(self.concurrency, self.batch_size)
        self._queue: asyncio.Queue[tuple[Request, asyncio.Future[Response]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.model: Any = None
        self.processor: Any = None

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
        import torch
        import transformers

        path = self.checkpoint()
        options = self.spec.options
        device = options.get("device", "auto")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = options.get("dtype", "auto")
        torch_dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        trust = bool(options.get("trust_remote_code", False))
        model_class = getattr(transformers, options.get("model_class", "AutoModelForImageTextToText"))
        self.processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # decoder-only batches generate from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model_class.from_pretrained(path, dtype=torch_dtype[dtype], trust_remote_code=trust)
        self.model.to(device).eval()
        self.device = device

    async def start(self) -> None:
        if self.model is None:
            try:
                await asyncio.to_thread(self.load)
            except (OSError, ValueError, AttributeError) as exc:
                raise ModelUnavailableError(f"model {self.spec.model}: cannot load {self.spec.path}: {exc}") from None
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._serve())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

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
            groups: dict[str, list[tuple[Request, asyncio.Future[Response]]]] = {}
            for item in batch:  # one generate() call per set of generation parameters
                groups.setdefault(item[0].generation.model_dump_json(), []).append(item)
            for group in groups.values():
                try:
                    texts = await asyncio.to_thread(self.generate_batch, [r for r, _ in group])
                    results = [Response(text=t) for t in texts]
                except Exception as exc:  # a failed batch is recorded per sample; the run goes on
                    results = [Response(error=f"{type(exc).__name__}: {exc}") for _ in group]
                for (_, future), response in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(response)

    def generate_batch(self, requests: list[Request]) -> list[str]:
        """Generate for requests that share generation parameters (runs in a thread)."""
        import torch
        from PIL import Image

        texts, images = [], []
        for request in requests:
            conversation = [self._message(m) for m in request.messages]
            texts.append(self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False))
            for message in request.messages:
                images.extend(Image.open(path).convert("RGB") for path in message.images)
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt").to(self.device)
        inputs.pop("token_type_ids", None)  # some tokenizers add it; generate() rejects it
        generation = requests[0].generation
        kwargs: dict[str, Any] = {"max_new_tokens": generation.max_tokens, "do_sample": generation.temperature > 0}
        if generation.temperature > 0:
            kwargs.update(temperature=generation.temperature, top_p=generation.top_p or 1.0)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    @staticmethod
    def _message(message: Message) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in message.images]
        content.append({"type": "text", "text": message.content})
        return {"role": message.role, "content": content}
