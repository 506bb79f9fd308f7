"""The transformers adapter on a tiny vision-language model built here from configs (random weights),
through the real processor, chat template and generate path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from regbench.errors import ModelUnavailableError, SpecError
from regbench.models import build_adapter
from regbench.models.base import Request
from regbench.runner import RunOptions, evaluate
from regbench.spec import GenerationSpec, ModelSpec, TaskSpec, load_spec
from regbench.types import Message
from tests.conftest import REPO, write_jsonl
from tests.helpers.tiny_vlm import build

IMAGE = str(REPO / "tasks" / "data" / "images" / "demo_1.png")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-vlm") / "ckpt")


def request(i: int, image: bool | list[str], **generation: object) -> Request:
    images = image if isinstance(image, list) else [IMAGE] if image else []
    messages = [
        Message(role="system", content="be brief"),
        Message(role="user", content="where is the liver " + "right " * i, images=images),
    ]
    return Request(sample_id=str(i), task="t", messages=messages, generation=GenerationSpec(max_tokens=6, **generation))


def tiny(checkpoint: Path, **options: object) -> ModelSpec:
    return ModelSpec(model="tiny", adapter="transformers", path=str(checkpoint), options=options)


async def ask(spec: ModelSpec, requests: list[Request], errors_ok: bool = False) -> list[str]:
    adapter = build_adapter(spec)
    await adapter.start()
    try:
        responses = await asyncio.gather(*(adapter.generate(r) for r in requests))
    finally:
        await adapter.close()
    assert errors_ok or all(r.error is None for r in responses), [r.error for r in responses]
    return [r.text if r.error is None else f"error: {r.error}" for r in responses]


def test_batched_generation_equals_one_at_a_time(checkpoint: Path) -> None:
    requests = [request(i, image=i % 2 == 1) for i in range(5)]
    batched = asyncio.run(ask(tiny(checkpoint, batch_size=5), requests))
    single = asyncio.run(ask(tiny(checkpoint, batch_size=1), requests))
    assert batched == single
    assert all(isinstance(t, str) and t for t in batched)


def test_an_unreadable_image_costs_its_own_sample_only(checkpoint: Path, tmp_path: Path) -> None:
    requests = [request(1, True), request(2, [str(tmp_path / "missing.png")]), request(3, True)]
    batched = asyncio.run(ask(tiny(checkpoint, batch_size=3), requests, errors_ok=True))
    single = asyncio.run(ask(tiny(checkpoint, batch_size=1), [requests[0], requests[2]]))
    assert batched[1].startswith("error: FileNotFoundError") and [batched[0], batched[2]] == single


def test_a_volume_is_sent_as_evenly_spaced_slices(checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, size=(5, 40, 48)).astype(np.int16) * 3 - 100  # rescaled to 0-255 on the way
    volume[0, 0, 0], volume[4, 0, 0] = -100, 665  # the volume's own min and max
    np.save(tmp_path / "ct.npy", volume)
    expected = []
    for index in (0, 2, 4):  # linspace(0, 4, 3)
        plane = np.round((volume[index] + 100) * (255 / 765)).astype(np.uint8)
        Image.fromarray(plane).save(tmp_path / f"slice{index}.png")
        expected.append(str(tmp_path / f"slice{index}.png"))
    spec = tiny(checkpoint, volume_slices=3)
    from_volume, from_slices = asyncio.run(ask(spec, [request(1, [str(tmp_path / "ct.npy")]), request(1, expected)]))
    assert from_volume == from_slices


def test_stop_strings_end_the_answer_before_them(checkpoint: Path) -> None:
    (free,) = asyncio.run(ask(tiny(checkpoint), [request(2, True)]))
    words = free.split()
    assert len(words) >= 3, free
    stop = words[2]
    (stopped,) = asyncio.run(ask(tiny(checkpoint), [request(2, True, stop=[stop])]))
    assert stopped == free[: free.index(stop)].strip()


def test_runs_a_task_end_to_end(checkpoint: Path, tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"id": f"s{i}", "image": IMAGE, "question": "where is the liver", "answer": "right", "answer_type": "open"}
            for i in range(3)
        ],
    )
    (tmp_path / "task.yaml").write_text(
        "task: t\nfamily: vqa\ndataset: {path: data.jsonl}\nmetrics: [vqa]\ngeneration: {max_tokens: 4}\n"
    )
    spec = ModelSpec(model="tiny", adapter="transformers", path=str(checkpoint))
    task = load_spec(tmp_path / "task.yaml", TaskSpec)
    adapter = build_adapter(spec)

    async def go() -> None:
        await adapter.start()
        try:
            await evaluate(task, spec, adapter, RunOptions(output=tmp_path / "out", bootstrap_trials=10))
        finally:
            await adapter.close()

    asyncio.run(go())
    results = json.loads((tmp_path / "out/tiny/t/results.json").read_text())
    assert results["n_errors"] == 0 and results["n_samples"] == 3


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    spec = ModelSpec(model="tiny", adapter="transformers", path=str(tmp_path / "nothing"))
    with pytest.raises(ModelUnavailableError, match=r"no checkpoint at .*does not download"):
        asyncio.run(build_adapter(spec).start())


def test_bad_options_are_clear_errors(checkpoint: Path) -> None:
    with pytest.raises(SpecError, match=r"options.dtype: must be one of"):
        build_adapter(tiny(checkpoint, dtype="fp8"))
    with pytest.raises(SpecError, match=r"options.model_class: transformers has no class 'NoSuchModel'"):
        asyncio.run(build_adapter(tiny(checkpoint, model_class="NoSuchModel")).start())
