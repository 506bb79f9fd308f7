"""The bundled multi-turn tasks (M4CXR two-turn CoT, MedRegA Regional CoT) against a real loopback
server: earlier answers are fed back, and a run killed mid-conversation resumes from the cache."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regbench.models import build_adapter
from regbench.runner import RunOptions, evaluate
from regbench.spec import MetricRef, ModelSpec, TaskSpec, load_spec
from tests.conftest import REPO
from tests.servers import RunningServer, start_openai_server
from tests.test_openai import make_model

TASKS = REPO / "tasks"
DETECTION = "<ref>nodule</ref><box>[[100, 200, 300, 400]]</box>"
FINDINGS = "cardiomegaly, pleural effusion."


def model_yaml(tmp_path: Path, url: str) -> Path:
    return make_model(tmp_path, url, box_format="medrega", timeout=60, max_retries=1)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_m4cxr_two_turn_cot_feeds_back_its_answer_and_scores_the_last(tmp_path: Path) -> None:
    server = start_openai_server(tmp_path, script=[{"match": "Which of the following findings", "reply": FINDINGS}])
    try:
        task = load_spec(TASKS / "report" / "m4cxr_two_turn_cot.yaml", TaskSpec)
        task = task.model_copy(update={"metrics": [MetricRef(name="rouge1")]})  # the prompts matter here, not NLG
        model = load_spec(model_yaml(tmp_path, server.url), ModelSpec)
        adapter = build_adapter(model)

        async def go() -> None:
            await adapter.start()
            try:
                await evaluate(task, model, adapter, RunOptions(output=tmp_path / "out", bootstrap_trials=10))
            finally:
                await adapter.close()

        asyncio.run(go())
    finally:
        server.stop()
    records = lines(tmp_path / "out/served/m4cxr_two_turn_cot/samples.jsonl")
    requests = server.requests()
    assert len(records) == 4 and len(requests) == 8
    first = [r for r in requests if r["roles"] == ["user"]]
    second = [r for r in requests if r["roles"] == ["user", "assistant", "user"]]
    assert len(first) == len(second) == 4
    assert all(r["text"].endswith("pleural other, fracture, support devices") and r["images"] == 1 for r in first)
    for r in second:  # its own turn-1 answer in the context; the image once, in the first message
        assert r["assistant"] == [FINDINGS] and r["all_images"] == 1 and r["images"] == 0
        assert (
            r["text"]
            == "Based on the previous conversation, provide a description of the findings in the radiology image."
        )
    for record in records:  # only the second answer is scored
        assert record["outputs"][0] == FINDINGS and record["output"] == record["outputs"][1]
        assert record["output"].startswith("echo: Based on the previous conversation")


def regional_cot_task(tmp_path: Path) -> Path:
    """The bundled Regional CoT task with a cheaper metric list (no Java for NLG)."""
    wrapper = {
        "include": str(TASKS / "grounded_report" / "regional_cot.yaml"),
        "dataset": {"path": str(TASKS / "grounded_report" / "data" / "demo_grounded_rg.jsonl")},
        "metrics": [{"name": "region_aligned", "subtask": "multi_object_single_region"}],
    }
    (tmp_path / "task.yaml").write_text(json.dumps(wrapper))
    return tmp_path / "task.yaml"


def wait_for(server: RunningServer, condition: str, predicate: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate(server.requests()):  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {condition}: {server.requests()}")
        time.sleep(0.05)


def test_regional_cot_killed_mid_conversation_resumes_with_turn_2_only(tmp_path: Path) -> None:
    # Turn 1 answers a detection; the first attempt of every turn 2 hangs, so the run is killed
    # with all first turns answered (and cached) and every second turn in flight.
    script = [
        {"match": "Please detect the abnormal regions", "reply": DETECTION},
        {"match": "The abnormal regions are", "chaos": "slow", "times": 1},
    ]
    server = start_openai_server(tmp_path, script=script)
    task, model = regional_cot_task(tmp_path), model_yaml(tmp_path, server.url)
    n = len((TASKS / "grounded_report" / "data" / "demo_grounded_rg.jsonl").read_text().splitlines())
    command = [sys.executable, "-m", "regbench", "run", "--model", str(model), "--task", str(task), "-c", "16"]
    out = tmp_path / "resumed" / "served" / "regional_cot"
    try:
        interrupted = subprocess.Popen([*command, "-o", str(tmp_path / "resumed")], stderr=subprocess.DEVNULL)
        wait_for(server, "every turn 2 in flight", lambda rs: sum(r["status"] == 1 for r in rs) == n)
        os.kill(interrupted.pid, signal.SIGKILL)
        interrupted.wait()
        assert not (out / "results.json").exists()
        before = len(server.requests())
        subprocess.run([*command, "-o", str(tmp_path / "resumed")], check=True, capture_output=True, timeout=120)
        resumed = server.requests()[before:]
        subprocess.run([*command, "-o", str(tmp_path / "fresh")], check=True, capture_output=True, timeout=120)
    finally:
        server.stop()
    assert before == 2 * n
    assert len(resumed) == n and all(r["roles"] == ["user", "assistant", "user"] for r in resumed)  # turn 2 only
    for r in resumed:  # the detected region, written back in the model's own box format
        assert r["assistant"] == [DETECTION] and r["text"].startswith(
            f"The abnormal regions are: {DETECTION}. Please locate the region"
        )
    records = lines(out / "samples.jsonl")
    assert all(r["error"] is None and r["outputs"][0] == DETECTION for r in records)
    assert records[0]["parsed"]["objects"][0]["name"] == "nodule"
    assert (out / "results.json").read_text() == (tmp_path / "fresh/served/regional_cot/results.json").read_text()
