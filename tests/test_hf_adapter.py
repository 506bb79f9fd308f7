"""The transformers adapter on a tiny vision-language model built here from configs (random weights),
through the real processor, chat template and generate path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from regbench.errors import ModelUnavailableError
from regbench.models import build_adapter
from regbench.models.base import Message, Request
from regbench.runner import RunOptions, evaluate
from regbench.spec import GenerationSpec, ModelSpec, TaskSpec, load_spec
from tests.conftest import REPO, write_jsonl
from tests.helpers.tiny_vlm import build

IMAGE = str(REPO / "tasks" / "data" / "images" / "demo_1.png")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-vlm") / "ckpt")


def request(i: int, image: bool) -> Request:
    messages = [
        Message(role="system", content="be brief"),
        Message(role="user", content="where is the liver " + "right " * i, images=[IMAGE] if image else []),
    ]
    return Request(sample_id=str(i), task="t", messages=messages, generation=GenerationSpec(max_tokens=6))


async def ask(spec: ModelSpec, requests: list[Request]) -> list[str]:
    adapter = build_adapter(spec)
    await adapter.start()
    try:
        responses = await asyncio.gather(*(adapter.generate(r) for r in requests))
    finally:
        await adapter.close()
    assert all(r.error is None for r in responses), [r.error for r in responses]
    return [r.text for r in responses]


def test_batched_generation_equals_one_at_a_time(checkpoint: Path) -> None:
    requests = [request(i, image=i % 2 == 1) for i in range(5)]
    batched = asyncio.run(
        ask(ModelSpec(model="tiny", adapter="transformers", path=str(checkpoint), options={"batch_size": 5}), requests)
    )
    single = asyncio.run(
        ask(ModelSpec(model="tiny", adapter="transformers", path=str(checkpoint), options={"batch_size": 1}), requests)
    )
    assert batched == single
    assert all(isinstance(t, str) and t for t in batched)


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
