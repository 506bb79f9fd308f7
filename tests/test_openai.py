"""The openai adapter against a real HTTP server on 127.0.0.1 (tests/servers/openai_server.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regbench.errors import ModelUnavailableError, SpecError
from regbench.models import build_adapter
from regbench.models.base import Request
from regbench.models.images import image_data_urls
from regbench.runner import RunOptions, evaluate
from regbench.spec import GenerationSpec, ModelSpec, TaskSpec, load_spec
from regbench.types import Message
from tests.conftest import REPO, write_jsonl
from tests.servers import RunningServer, blackholed_port, closed_port, start_openai_server

IMAGE = REPO / "tasks" / "data" / "images" / "demo_1.png"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_openai_server(tmp_path, latency=0.0)
    yield running
    running.stop()


def make_task(tmp_path: Path, questions: list[str], image: bool = True) -> Path:
    rows = [
        {
            "id": f"q{i}",
            "question": q,
            "answer": f"echo: {q}",
            "answer_type": "open",
            "image": str(IMAGE) if image else [],
        }
        for i, q in enumerate(questions)
    ]
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "task.yaml").write_text(
        "task: http_vqa\nfamily: vqa\ndataset: {path: data.jsonl}\nsystem: Be brief.\n"
        "prompt: '{{ question }}'\ngeneration: {max_tokens: 16}\nmetrics: [vqa]\n"
    )
    return tmp_path / "task.yaml"


def make_model(tmp_path: Path, url: str | list[str], **extra: object) -> Path:
    spec = {
        "model": "served",
        "adapter": "openai",
        "base_url": url,
        "model_name": "test-model",
        "max_retries": 3,
        "timeout": 5,
        "options": {"backoff_base": 0.01},
        **extra,
    }
    (tmp_path / "model.yaml").write_text(json.dumps(spec))
    return tmp_path / "model.yaml"


def run(task: Path, model: Path, out: Path, concurrency: int | None = None) -> dict:
    task_spec, model_spec = load_spec(task, TaskSpec), load_spec(model, ModelSpec)
    adapter = build_adapter(model_spec, concurrency=concurrency)

    async def go() -> None:
        await adapter.start()
        try:
            await evaluate(task_spec, model_spec, adapter, RunOptions(output=out, bootstrap_trials=20))
        finally:
            await adapter.close()

    asyncio.run(go())
    return json.loads((out / "served" / "http_vqa" / "results.json").read_text())


def test_requests_carry_system_prompt_image_and_generation_parameters(tmp_path: Path, server: RunningServer) -> None:
    results = run(make_task(tmp_path, ["Where is the nodule?"]), make_model(tmp_path, server.url), tmp_path / "out")
    assert results["metrics"]["token_recall"] == 1.0 and results["n_errors"] == 0
    (request,) = server.requests()
    assert request["text"] == "Where is the nodule?" and request["images"] == 1
    assert request["system"] == "Be brief." and request["model"] == "test-model"
    assert request["max_tokens"] == 16 and request["temperature"] == 0.0


def test_text_only_samples_work(tmp_path: Path, server: RunningServer) -> None:
    run(make_task(tmp_path, ["No image here?"], image=False), make_model(tmp_path, server.url), tmp_path / "out")
    assert server.requests()[0]["images"] == 0


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    slow = start_openai_server(tmp_path, latency=0.15, name="slow")
    try:
        questions = [f"question {i}" for i in range(12)]
        run(
            make_task(tmp_path, questions, image=False), make_model(tmp_path, slow.url), tmp_path / "out", concurrency=3
        )
        in_flight = [r["in_flight"] for r in slow.requests()]
        assert len(in_flight) == 12 and max(in_flight) == 3
        # The adapter bounds itself too, when called without the runner's semaphore.
        spec = ModelSpec(model="m", adapter="openai", base_url=slow.url, concurrency=2)
        asyncio.run(ask_all(spec, [f"direct {i}" for i in range(6)]))
    finally:
        slow.stop()
    direct = [r["in_flight"] for r in slow.requests() if r["text"].startswith("direct")]
    assert len(direct) == 6 and max(direct) == 2


async def ask_all(spec: ModelSpec, texts: list[str]) -> list[str]:
    """Send every text at once straight to a fresh adapter; return the answers."""
    adapter = build_adapter(spec)
    await adapter.start()
    try:
        requests = [
            Request(sample_id=str(i), task="t", messages=[Message(role="user", content=t)], generation=GenerationSpec())
            for i, t in enumerate(texts)
        ]
        responses = await asyncio.gather(*(adapter.generate(r) for r in requests))
    finally:
        await adapter.close()
    return [r.text if r.error is None else f"error: {r.error}" for r in responses]


def test_server_failures_are_retried_and_the_last_one_recorded(tmp_path: Path, server: RunningServer) -> None:
    questions = [
        "a chaos:500:2",
        "b chaos:429:1",
        "c chaos:garbage:1",
        "d chaos:reset:1",
        "e chaos:slow:1",
        "f chaos:500:9",
        "g chaos:gzip:1",
        "h chaos:error200:9",
    ]
    model = make_model(tmp_path, server.url, timeout=1)
    results = run(make_task(tmp_path, questions, image=False), model, tmp_path / "out")
    assert results["n_errors"] == 2 and results["n_samples"] == 8
    records = [json.loads(x) for x in (tmp_path / "out/served/http_vqa/samples.jsonl").read_text().splitlines()]
    assert [r["output"] for r in records[:5] + records[6:7]] == [f"echo: {q}" for q in questions[:5] + questions[6:7]]
    assert records[5]["output"] is None and "failed after 4 attempts: HTTP 500" in records[5]["error"]
    assert records[5]["error"].endswith('/v1: {"error": "internal: CUDA out of memory"}')  # the server's reason
    assert records[7]["error"].endswith(
        "(KeyError): " + '{"object": "error", "message": "model is still loading", "code": 503}'
    )
    statuses = {q: [r["status"] for r in server.requests() if r["text"] == q] for q in questions}
    assert statuses["a chaos:500:2"] == [500, 500, 200] and statuses["b chaos:429:1"] == [429, 200]
    times = [r["time"] for r in server.requests() if r["text"] == "b chaos:429:1"]
    assert times[1] - times[0] >= 0.3  # Retry-After: 0.3 honoured (the backoff alone is about 0.01 s)
    assert len(statuses["f chaos:500:9"]) == 4


def test_an_answer_that_trickles_in_is_cut_at_the_timeout_and_retried(server: RunningServer) -> None:
    # httpx's timeout bounds each read, not the answer: a body that keeps coming a byte at a time
    # (a keep-alive proxy) must not hold a run past `timeout` seconds per attempt.
    spec = ModelSpec(
        model="m",
        adapter="openai",
        base_url=server.url,
        timeout=1,
        max_retries=1,
        concurrency=1,
        options={"backoff_base": 0.01},
    )
    started = time.monotonic()
    assert asyncio.run(ask_all(spec, ["t chaos:trickle:1"])) == ["echo: t chaos:trickle:1"]
    assert time.monotonic() - started < 8  # the trickle lasts 15 s
    assert [r["status"] for r in server.requests()] == [2, 200]  # the same client, reused after the cut


def test_message_content_in_parts_null_or_of_another_type(tmp_path: Path) -> None:
    script = [
        {"match": "parts", "content": [{"type": "text", "text": "left "}, {"type": "text", "text": "lung"}]},
        {  # a reasoning model's answer (Mistral's chunk list): the thinking is not the answer
            "match": "thinking",
            "content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                {"type": "text", "text": "A"},
            ],
        },
        {"match": "null", "content": None},  # a tool-call-only answer
        {"match": "number", "content": 42},
    ]
    served = start_openai_server(tmp_path, script=script)
    try:
        spec = ModelSpec(
            model="m", adapter="openai", base_url=served.url, max_retries=1, options={"backoff_base": 0.01}
        )
        answers = asyncio.run(ask_all(spec, ["parts", "thinking", "null", "number"]))
    finally:
        served.stop()
    assert answers[:3] == ["left lung", "A", ""]
    assert answers[3].startswith("error: failed after 2 attempts: unreadable response")  # not a silent "", cached


def test_run_exits_3_when_requests_fail_and_a_rerun_asks_only_those(tmp_path: Path, server: RunningServer) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    task = make_task(tmp_path, ["fine", "g chaos:500:9"], image=False)
    args = ["run", "--model", str(make_model(tmp_path, server.url, max_retries=1)), "--task", str(task)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--bootstrap", "0"])
    assert result.exit_code == 3  # the run is incomplete
    assert "requests failed (after the retries, or no recorded output) (http_vqa: 1 of 2 samples; over " in " ".join(
        result.output.split()
    )
    assert [r["text"] for r in server.requests()].count("fine") == 1
    again = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--bootstrap", "0"])
    assert again.exit_code == 3 and [r["text"] for r in server.requests()].count("fine") == 1  # cached


def test_base_urls_round_robin_and_a_dead_one_is_skipped(tmp_path: Path, server: RunningServer) -> None:
    other = start_openai_server(tmp_path, name="other")
    try:
        urls = [f"http://127.0.0.1:{closed_port()}/v1", server.url, other.url]
        task = make_task(tmp_path, [f"q{i}" for i in range(8)], image=False)
        results = run(task, make_model(tmp_path, urls), tmp_path / "o")
    finally:
        other.stop()
    assert results["n_errors"] == 0
    assert len(server.requests()) + len(other.requests()) == 8
    assert len(server.requests()) >= 2 and len(other.requests()) >= 2  # shared, not all on one


def test_a_server_that_does_not_answer_connections_is_set_aside(server: RunningServer) -> None:
    # A host that is down drops connection attempts (a timeout, not a refusal): round robin kept
    # sending every other request there, each waiting out the timeout.
    with blackholed_port() as port:
        urls = [f"http://127.0.0.1:{port}/v1", server.url]
        spec = ModelSpec(
            model="m", adapter="openai", base_url=urls, timeout=2, concurrency=1, options={"backoff_base": 0.01}
        )
        started = time.monotonic()
        assert asyncio.run(ask_all(spec, [f"q{i}" for i in range(6)])) == [f"echo: q{i}" for i in range(6)]
        elapsed = time.monotonic() - started
    assert elapsed < 6  # the start-up check's 2 s, then that server is skipped (was 14 s here)


def test_no_server_gives_a_clear_message(tmp_path: Path) -> None:
    spec = ModelSpec(model="m", adapter="openai", base_url=f"http://127.0.0.1:{closed_port()}/v1", start_hint="Run X.")
    with pytest.raises(ModelUnavailableError, match=r"no OpenAI-compatible server answers .*ConnectError.*Run X\."):
        asyncio.run(build_adapter(spec).start())


def test_a_redirect_is_reported_with_where_it_points_not_retried(tmp_path: Path, server: RunningServer) -> None:
    # e.g. http:// for an https-only endpoint; followed, a 301 would turn each POST into a GET.
    moved = start_openai_server(tmp_path, name="moved", redirect="https://elsewhere.example")
    try:
        spec = ModelSpec(model="m", adapter="openai", base_url=moved.url)
        with pytest.raises(ModelUnavailableError, match=r"HTTP 301 to https://elsewhere\.example/v1/models"):
            asyncio.run(build_adapter(spec).start())
    finally:
        moved.stop()
    spec = ModelSpec(model="m", adapter="openai", base_url=server.url, max_retries=3)
    (answer,) = asyncio.run(ask_all(spec, ["m chaos:moved:9"]))  # a server that starts redirecting mid-run
    assert answer.startswith("error: HTTP 307 to https://elsewhere.example/v1/chat/completions")
    assert len(server.requests()) == 1


@pytest.mark.parametrize(
    "url", ["gpu-host:8000/v1", "127.0.0.1:8000/v1", "http://[::1/v1", "http://u:pw-9f2@host/v1?api-key=sk-q1"]
)
def test_a_base_url_that_cannot_work_is_named_in_a_spec_error(url: str) -> None:
    # No scheme read as "no server answers (UnsupportedProtocol)", a bad one as a traceback, a
    # query string was sent before the path (…?api-key=…/chat/completions).
    with pytest.raises(SpecError, match=r"model m: base_url: .*not an http\(s\) URL") as caught:
        build_adapter(ModelSpec(model="m", adapter="openai", base_url=["http://127.0.0.1:1/v1", url]))
    assert "pw-9f2" not in str(caught.value) and "sk-q1" not in str(caught.value)


def test_a_refused_key_is_a_clear_error_that_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded = start_openai_server(tmp_path, require_key="sk-right")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-5d1e")
    try:
        spec = ModelSpec(model="m", adapter="openai", base_url=guarded.url)
        with pytest.raises(ModelUnavailableError, match=r"refuses the API key \(HTTP 401\).*OPENAI_API_KEY") as caught:
            asyncio.run(build_adapter(spec).start())
    finally:
        guarded.stop()
    assert "sk-wrong" not in str(caught.value)


def test_an_api_key_ending_in_a_line_break_works_and_one_no_header_can_carry_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded = start_openai_server(tmp_path, require_key="sk-right")
    try:
        spec = ModelSpec(model="m", adapter="openai", base_url=guarded.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-right\n")  # a secret file's last line, a Kubernetes secret
        assert asyncio.run(ask_all(spec, ["hi"])) == ["echo: hi"]
        monkeypatch.setenv("OPENAI_API_KEY", "sk-\u2019right")  # a curly quote pasted in
        with pytest.raises(ModelUnavailableError, match=r"OPENAI_API_KEY holds characters") as caught:
            asyncio.run(build_adapter(spec).start())
    finally:
        guarded.stop()
    assert [r["auth"] for r in guarded.requests()] == ["Bearer sk-right"]
    assert "right" not in str(caught.value)


def test_medrega_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "MEDREGA_URL": f"http://127.0.0.1:{closed_port()}/v1"}
    done = subprocess.run(
        [sys.executable, "-m", "regbench", "run", "--model", "medrega", "--task", "grounded_rg", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 3  # the run is incomplete, not a usage error
    assert "no OpenAI-compatible server answers" in done.stderr and "lmdeploy serve api_server" in done.stderr


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "REGBENCH_TEST_KEY"])
def test_api_key_reaches_the_server_and_no_file(tmp_path: Path, server: RunningServer, variable: str) -> None:
    secret = "sk-test-7f3a9c2e51d04b8f"
    env = {**os.environ, variable: secret}
    extra = {} if variable == "OPENAI_API_KEY" else {"api_key_env": variable}  # the default, or the YAML's
    model = make_model(tmp_path, server.url, **extra)
    task = make_task(tmp_path, ["k?", "z chaos:401:9"])  # the 401 body echoes the Authorization header
    command = [sys.executable, "-m", "regbench", "run", "--model", str(model), "--task", str(task)]
    done = subprocess.run([*command, "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3, done.stderr  # the 401 sample failed: the run is incomplete
    assert {r["auth"] for r in server.requests()} == {f"Bearer {secret}"}
    records = [json.loads(x) for x in (tmp_path / "out/served/http_vqa/samples.jsonl").read_text().splitlines()]
    assert records[1]["error"].startswith("turn 0: HTTP 401 from") and "Bearer ***" in records[1]["error"]
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(written) >= 4  # results.json, samples.jsonl, run.json, cache.sqlite
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in done.stdout + done.stderr
    assert json.loads((tmp_path / "out/served/http_vqa/results.json").read_text())["config"]["model"][
        "api_key_env"
    ] == (variable)


def test_a_key_echoed_across_the_cut_of_an_error_body_leaves_no_part_of_it(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-edge-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    # The 401 body is {"error": "<prompt>: bad key: Bearer <key>"}; this prompt puts the key's
    # first ten characters at the end of the 300 that an error keeps.
    prompt = "k chaos:401:1 ".ljust(300 - 10 - len('{"error": "') - len(": bad key: Bearer "), "x")
    spec = ModelSpec(model="m", adapter="openai", base_url=server.url, max_retries=0)
    (answer,) = asyncio.run(ask_all(spec, [prompt]))
    assert answer.startswith("error: HTTP 401 from") and "Bearer ***" in answer
    assert secret[:6] not in answer


def test_credentials_in_a_base_url_reach_no_message_or_file(tmp_path: Path, server: RunningServer) -> None:
    secret = "sk-url-91c4e2d7b3"
    env = {**os.environ, "REGBENCH_TEST_KEY": secret}
    url = server.url.replace("http://", "http://tok:${REGBENCH_TEST_KEY}@")  # expanded when the YAML loads
    model = make_model(tmp_path, url, api_key_env="REGBENCH_TEST_KEY", max_retries=0)
    task = make_task(tmp_path, ["fine", "x chaos:500:9"], image=False)
    command = [sys.executable, "-m", "regbench", "run", "--model", str(model), "--task", str(task)]
    done = subprocess.run([*command, "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3, done.stderr
    records = [json.loads(x) for x in (tmp_path / "out/served/http_vqa/samples.jsonl").read_text().splitlines()]
    assert records[1]["error"].startswith("turn 0: failed after 1 attempts: HTTP 500 from http://***@127.0.0.1:")
    for path in (tmp_path / "out").rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    assert secret not in done.stdout + done.stderr
    # Nothing answers: the start-up message names the server without its password.
    dead = ModelSpec(model="m", adapter="openai", base_url=f"http://user:hunter2-pw@127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ModelUnavailableError, match=r"http://\*\*\*@127\.0\.0\.1:") as caught:
        asyncio.run(build_adapter(dead).start())
    assert "hunter2" not in str(caught.value)


def test_kill_9_mid_run_then_resume_repeats_no_finished_request(tmp_path: Path) -> None:
    slow = start_openai_server(tmp_path, latency=0.1, name="slow")
    try:
        task = make_task(tmp_path, [f"question {i}" for i in range(40)], image=False)
        model = make_model(tmp_path, slow.url)
        command = [sys.executable, "-m", "regbench", "run", "--model", str(model), "--task", str(task), "-c", "2"]
        interrupted = subprocess.Popen(
            [*command, "-o", str(tmp_path / "resumed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while len(slow.requests()) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(interrupted.pid, signal.SIGKILL)
        interrupted.wait()
        answered_before = len(slow.requests())
        assert 10 <= answered_before < 40
        assert not (tmp_path / "resumed/served/http_vqa/results.json").exists()
        subprocess.run([*command, "-o", str(tmp_path / "resumed")], check=True, capture_output=True, timeout=120)
        texts = [r["text"] for r in slow.requests()]
        # Only requests in flight at the kill (at most the concurrency) may be asked twice.
        assert len(texts) - 40 <= 2 and set(texts) == {f"question {i}" for i in range(40)}
        assert max(r["in_flight"] for r in slow.requests()) == 2  # -c 2 overrides the YAML's default of 8
        subprocess.run([*command, "-o", str(tmp_path / "fresh")], check=True, capture_output=True, timeout=120)
    finally:
        slow.stop()
    resumed = (tmp_path / "resumed/served/http_vqa/results.json").read_text()
    fresh = (tmp_path / "fresh/served/http_vqa/results.json").read_text()
    assert resumed == fresh
    samples = (tmp_path / "resumed/served/http_vqa/samples.jsonl").read_text().splitlines()
    assert sorted(json.loads(s)["id"] for s in samples) == sorted(f"q{i}" for i in range(40))


def test_multi_turn_feeds_answers_back_and_caches_each_turn(tmp_path: Path, server: RunningServer) -> None:
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"q{i}", "question": f"case {i}", "answer": "x"} for i in range(4)])
    task = tmp_path / "task.yaml"

    def write_task(second_turn: str) -> None:
        task.write_text(
            "task: http_vqa\nfamily: report\ndataset: {path: data.jsonl}\n"
            f"prompt: ['Findings for {{{{ question }}}}?', '{second_turn}']\nmetrics: [vqa]\n"
        )

    write_task("Report from {{ history[0] }}")
    model = make_model(tmp_path, server.url)
    run(task, model, tmp_path / "out")
    first = server.requests()
    assert len(first) == 8  # two turns per sample
    second_turns = [r for r in first if r["text"].startswith("Report from")]
    assert {r["text"] for r in second_turns} == {f"Report from echo: Findings for case {i}?" for i in range(4)}
    assert all(r["messages"] == 3 for r in second_turns)  # user, assistant (its own answer), user
    write_task("Now the report, given {{ history[0] }}")  # change turn 2 only
    run(task, model, tmp_path / "out")
    again = server.requests()[len(first) :]
    assert len(again) == 4 and all(r["text"].startswith("Now the report") for r in again)  # turn 1 came from the cache


def test_a_volume_goes_as_evenly_spaced_png_slices(tmp_path: Path, server: RunningServer) -> None:
    volume = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)  # values 0..59
    np.save(tmp_path / "ct.npy", volume)
    np.save(tmp_path / "flat.npy", volume[0])  # 2D: not a volume
    urls = image_data_urls(str(tmp_path / "ct.npy"), {"volume_slices": 3})
    planes = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1])))) for u in urls]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    assert [p.tolist() for p in planes] == [np.round(volume[i] * 255 / 59).astype(np.uint8).tolist() for i in (0, 2, 4)]
    assert planes[0][0, 1] == 4 and planes[2][-1, -1] == 255  # 1 * 255 / 59 = 4.3; the maximum is white
    assert len(image_data_urls(str(tmp_path / "ct.npy"), {})) == 4  # the default
    np.save(tmp_path / "constant.npy", np.full((2, 3, 3), 7.0))
    (constant,) = image_data_urls(str(tmp_path / "constant.npy"), {"volume_slices": 1})
    assert not np.asarray(Image.open(io.BytesIO(base64.b64decode(constant.split(",", 1)[1])))).any()  # black

    rows = [
        {"id": "v", "image": "ct.npy", "question": "Where is the liver?", "answer": "x"},
        {"id": "f", "image": "flat.npy", "question": "And here?", "answer": "x"},
    ]
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "task.yaml").write_text("task: http_vqa\nfamily: vqa\ndataset: {path: data.jsonl}\nmetrics: [vqa]\n")
    results = run(
        tmp_path / "task.yaml", make_model(tmp_path, server.url, options={"volume_slices": 3}), tmp_path / "o"
    )
    assert [(r["text"], r["images"]) for r in server.requests()] == [("Where is the liver?", 3)]
    records = [json.loads(x) for x in (tmp_path / "o/served/http_vqa/samples.jsonl").read_text().splitlines()]
    assert (
        results["n_errors"] == 1
        and "cannot build the request" in records[1]["error"]
        and "3D volume" in records[1]["error"]
    )


def test_a_missing_image_stops_the_run_before_any_request(tmp_path: Path, server: RunningServer) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    task = make_task(tmp_path, ["fine", "also"])
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    rows[1]["image"] = "gone.png"
    write_jsonl(tmp_path / "data.jsonl", rows)
    args = ["run", "--model", str(make_model(tmp_path, server.url)), "--task", str(task), "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"sample 'q1': image not found: {tmp_path / 'gone.png'}" in flat and "openai adapter" in flat
    assert server.requests() == [] and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("path", "served", "models", "message"),
    [
        (
            "",
            None,
            True,
            'base_url: GET {url}/models answers HTTP 404: {{"error": "not found"}}: no OpenAI-compatible API '
            "at this URL; "
            "OpenAI-compatible servers serve it under /v1: try {url}/v1",
        ),
        (
            "/v1",
            ["other-model", "third"],
            True,
            "model_name: 'test-model' is not a model {url} serves (it serves 'other-model', 'third'); "
            "set model_name to one of them",
        ),
        ("/v1", None, False, "base_url: GET {url}/models answers HTTP 404"),
    ],
)
def test_a_wrong_endpoint_or_model_name_stops_the_run_at_start(
    tmp_path: Path, path: str, served: list[str] | None, models: bool, message: str
) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    server = start_openai_server(tmp_path, served=served, models=models)
    try:
        url = server.url.removesuffix("/v1") + path
        model = make_model(tmp_path, url)
        task = make_task(tmp_path, ["fine"], image=False)
        result = CliRunner().invoke(app, ["run", "-m", str(model), "--task", str(task), "-o", str(tmp_path / "o")])
        flat = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert f"{model}: " + message.format(url=url) in flat, flat
        assert not path or "under /v1" not in flat  # the hint only where the path lacks /v1
        assert server.requests() == [] and not (tmp_path / "o").exists()
    finally:
        server.stop()


def test_a_404_on_the_first_chat_request_stops_the_run_unretried(tmp_path: Path, server: RunningServer) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    model, task = make_model(tmp_path, server.url), make_task(tmp_path, ["g chaos:404:9"], image=False)
    result = CliRunner().invoke(app, ["run", "-m", str(model), "--task", str(task), "-o", str(tmp_path / "o")])
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"{model}: base_url: POST {server.url}/chat/completions answers HTTP 404" in flat, flat
    assert len(server.requests()) == 1 and "Traceback" not in result.output


def test_ctrl_c_mid_run_says_how_to_resume(tmp_path: Path) -> None:
    slow = start_openai_server(tmp_path, latency=30.0, name="slow")
    try:
        model, task = make_model(tmp_path, slow.url), make_task(tmp_path, ["wait"], image=False)
        command = [sys.executable, "-m", "regbench", "run", "-m", str(model), "--task", str(task)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        running = subprocess.Popen(
            [*command, "-o", str(tmp_path / "o")], stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
        )
        deadline = time.monotonic() + 30
        while not slow.requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=30)
        assert running.returncode == 130, stderr
        assert "interrupted: finished responses are cached; run the same command again to resume" in stderr
        assert "Traceback" not in stderr and "Aborted" not in stderr
    finally:
        slow.stop()


def test_each_base_url_may_bound_its_own_requests_in_flight(tmp_path: Path, server: RunningServer) -> None:
    """``base_url: [{url, concurrency}, ...]``: each server gets at most its own bound at once (the log counts
    the requests in flight as each arrives), the model's bound is their sum, a plain URL keeps the model's."""
    wide = start_openai_server(tmp_path, latency=0.05, name="wide")
    try:
        endpoints = [{"url": server.url, "concurrency": 1}, {"url": wide.url, "concurrency": 3}]
        model = make_model(tmp_path, endpoints)  # type: ignore[arg-type]
        assert build_adapter(load_spec(model, ModelSpec)).concurrency == 4
        mixed = ModelSpec(model="m", adapter="openai", base_url=[server.url, {"url": wide.url, "concurrency": 5}])
        assert build_adapter(mixed, concurrency=2).concurrency == 7  # the plain URL takes --concurrency
        results = run(make_task(tmp_path, [f"q{i}" for i in range(24)], image=False), model, tmp_path / "out")
        narrow_log, wide_log = server.requests(), wide.requests()
    finally:
        wide.stop()
    assert results["n_errors"] == 0 and len(narrow_log) + len(wide_log) == 24
    assert narrow_log and max(entry["in_flight"] for entry in narrow_log) == 1
    assert wide_log and max(entry["in_flight"] for entry in wide_log) <= 3
    saved = json.loads((tmp_path / "out" / "served" / "http_vqa" / "results.json").read_text())["config"]["model"]
    assert saved["base_url"] == [{"url": server.url, "concurrency": 1}, {"url": wide.url, "concurrency": 3}]


@pytest.mark.parametrize("entry", [{"url": "http://x/v1", "concurrency": 0}, {"url": "http://x/v1", "limit": 2}])
def test_a_bad_base_url_entry_is_a_spec_error(tmp_path: Path, entry: dict[str, object]) -> None:
    (tmp_path / "model.yaml").write_text(json.dumps({"model": "m", "adapter": "openai", "base_url": [entry]}))
    with pytest.raises(SpecError, match="base_url"):
        load_spec(tmp_path / "model.yaml", ModelSpec)


def test_credentials_in_a_base_url_entry_are_hidden_in_results() -> None:
    from regbench.redact import model_config

    spec = ModelSpec(model="m", adapter="openai", base_url=[{"url": "http://u:pw-secret@h/v1", "concurrency": 2}])
    assert model_config(spec)["base_url"] == [{"url": "http://***@h/v1", "concurrency": 2}]
