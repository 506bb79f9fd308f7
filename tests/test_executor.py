"""``regbench run --executor ray --shards N`` (issue 16) on a real local Ray instance, and its bad inputs.

One Ray instance serves the whole module (starting one costs seconds): the command, run in this
process, joins it instead of starting its own. The bad inputs run where Ray is never started (a
subprocess, or a check that comes before Ray).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from tests.conftest import write_jsonl
from tests.servers import RunningServer, blackholed_port, closed_port, start_openai_server

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
cli = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def regbench_process(*args: str, pythonpath: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter (no Ray started in it)."""
    paths = [*(pythonpath or []), SRC, REPO]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths)), "COLUMNS": "200"}
    command = [sys.executable, "-m", "regbench", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()


# ---------------------------------------------------------------- the same results as an unsharded run


def generated_split(root: Path, n: int) -> tuple[Path, Path]:
    """A grounded-report split of ``n`` samples (boxes and report text) scored by region_aligned and nlg
    (corpus BLEU / CIDEr-D, whose per-sample values depend on the whole split), and a replay model."""
    organs = ["liver", "spleen", "heart", "left lung", "right lung"]
    rows, outputs = [], {}
    for i in range(n):
        organ, other = organs[i % 5], organs[(i * 3 + 1) % 5]
        x, y = (i * 37) % 600, (i * 53) % 600
        box = [x / 999, y / 999, (x + 200) / 999, (y + 150) / 999]
        report = f"the {organ} shows a small lesion number {i % 17} and the {other} is normal"
        rows.append({"id": f"g{i}", "question": f"Describe the {organ}.", "answer": report,
                     "objects": [{"name": organ, "boxes": [box]}]})  # fmt: skip
        dx = (i % 7) * 9
        said = report if i % 4 else report.replace("small", "large")
        outputs[f"g{i}"] = f"<ref>{organ}</ref><box>[[{x + dx}, {y}, {x + 200}, {y + 150 - dx}]]</box>: {said}"
    write_jsonl(root / "data.jsonl", rows)
    (root / "generated.yaml").write_text(
        "task: generated\nfamily: grounded_report\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics:\n  - {name: nlg, meteor: false, tokenizer: whitespace}\n  - {name: region_aligned}\n"
    )
    write_jsonl(root / "outputs.jsonl", [{"id": k, "output": v} for k, v in outputs.items()])
    (root / "replay.yaml").write_text(
        f"model: gen\nadapter: replay\npath: {root / 'outputs.jsonl'}\nbox_format: medrega\n"
    )
    return root / "generated.yaml", root / "replay.yaml"


def run_files(directory: Path) -> tuple[dict, str]:
    return json.loads((directory / "results.json").read_text()), (directory / "samples.jsonl").read_text()


def test_bundled_and_generated_tasks_through_ray_shards_equal_the_unsharded_run(
    local_ray: None, tmp_path: Path
) -> None:
    bundled = "demo_detection_medrega"  # region_aligned in MedRegA's released mode
    options = ["--seed", "7", "--bootstrap", "200"]
    sharded, whole = tmp_path / "ray", tmp_path / "whole"
    code, text = invoke("run", "-m", "medrega-demo", "-t", bundled, "-o", str(sharded), "--executor", "ray",
                        "--shards", "3", *options)  # fmt: skip
    assert code == 0, text
    assert invoke("run", "-m", "medrega-demo", "-t", bundled, "-o", str(whole), *options)[0] == 0
    merged_bundled = run_files(sharded / "medrega-demo" / bundled)
    assert merged_bundled == run_files(whole / "medrega-demo" / bundled)
    assert merged_bundled[0]["ci95"] and merged_bundled[0]["bootstrap"] == {"trials": 200, "seed": 7}
    assert sorted(p.name for p in (sharded / "medrega-demo" / bundled).glob("shard-*")) == [
        "shard-0-of-3", "shard-1-of-3", "shard-2-of-3",
    ]  # fmt: skip
    info = json.loads((sharded / "medrega-demo" / bundled / "run.json").read_text())
    assert info["executor"] == "ray" and info["shards"] == 3

    task, model = generated_split(tmp_path / "gen", 3000)
    code, text = invoke("run", "-m", str(model), "-t", str(task), "-o", str(tmp_path / "gray"), "--executor", "ray",
                        "--shards", "3", *options)  # fmt: skip
    assert code == 0, text
    assert invoke("run", "-m", str(model), "-t", str(task), "-o", str(tmp_path / "gwhole"), *options)[0] == 0
    merged, samples = run_files(tmp_path / "gray" / "gen" / "generated")
    assert (merged, samples) == run_files(tmp_path / "gwhole" / "gen" / "generated")
    assert merged["n_samples"] == 3000 and {"bleu4", "cider", "region_f1"} <= set(merged["metrics"])
    assert merged["metrics"]["cider"] > 0 and set(merged["ci95"]) == set(merged["metrics"])


# ---------------------------------------------------------------- a worker killed mid-run


def cached_texts(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    with closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True)) as db:
        try:
            return [row[0] for row in db.execute("SELECT text FROM responses")]
        except sqlite3.OperationalError:  # not created yet
            return []


def holder_of(path: Path) -> int | None:
    """The process that has ``path`` open (Linux /proc): the Ray worker running that shard."""
    target = str(path.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue
    return None


def test_a_killed_shard_worker_is_retried_and_resumes_without_asking_finished_requests_again(
    local_ray: None, tmp_path: Path
) -> None:
    server: RunningServer = start_openai_server(tmp_path, latency=0.1)
    try:
        n = 60
        rows = [{"id": f"k{i}", "question": f"question {i}", "answer": f"echo: question {i}"} for i in range(n)]
        write_jsonl(tmp_path / "data.jsonl", rows)
        (tmp_path / "task.yaml").write_text(
            "task: kill\nfamily: vqa\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\nmetrics: [vqa]\n"
        )
        spec = {"model": "served", "adapter": "openai", "base_url": server.url, "model_name": "test-model",
                "concurrency": 2, "max_retries": 2, "timeout": 10}  # fmt: skip
        (tmp_path / "model.yaml").write_text(json.dumps(spec))
        out = tmp_path / "out"
        outcome: list[tuple[int, str]] = []
        args = ["run", "-m", str(tmp_path / "model.yaml"), "-t", str(tmp_path / "task.yaml"), "-o", str(out)]
        runner = threading.Thread(target=lambda: outcome.append(invoke(*args, "--executor", "ray", "--shards", "3")))
        runner.start()
        cache = out / "cache-shard-1-of-3.sqlite"
        deadline = time.monotonic() + 120
        while len(cached_texts(cache)) < 5:  # shard 1 has answered some of its 20 requests
            assert time.monotonic() < deadline and runner.is_alive(), outcome
            time.sleep(0.02)
        worker = holder_of(cache)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        finished = cached_texts(cache)  # what the dead worker had stored: final once it is dead
        assert 5 <= len(finished) < n // 3
        runner.join(timeout=180)
        assert outcome and outcome[0][0] == 0, outcome
        asked = Counter(entry["text"] for entry in server.requests())
        for text in finished:
            assert asked[text.removeprefix("echo: ")] == 1, text  # never asked again
        assert set(asked) == {f"question {i}" for i in range(n)}
        assert sum(asked.values()) - n <= spec["concurrency"]  # at most the ones in flight when it died
        results = json.loads((out / "served" / "kill" / "results.json").read_text())
        assert results["n_samples"] == n and results["n_errors"] == 0 and results["metrics"]["exact_match"] == 1.0
        assert len(cached_texts(cache)) == n // 3
    finally:
        server.stop()


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--executor", "ray", "--shards", "0"], "--shards: expected a whole number of at least 1, got 0"),
        (["--executor", "ray"], "--executor ray needs --shards N"),
        (["--shards", "3"], "--shards needs --executor ray"),
        (["--ray-address", "127.0.0.1:6379"], "--ray-address needs --executor ray"),
        (["--executor", "ray", "--shards", "2", "--shard", "0/2"], "exclude each other"),
        (["--executor", "dask", "--shards", "2"], "expected local or ray"),
    ],
)
def test_bad_executor_flags_exit_2_before_anything_runs(tmp_path: Path, flags: list[str], message: str) -> None:
    code, text = invoke("run", "-m", "medrega-demo", "-t", "demo_vqa_en", "-o", str(tmp_path), *flags)
    assert code == 2, text
    assert message in text and "Traceback" not in text
    assert not any(tmp_path.iterdir())


def test_executor_ray_without_ray_installed_says_how_to_install(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")  # what a missing package raises
    done = regbench_process("run", "-m", "medrega-demo", "-t", "demo_vqa_en", "-o", str(tmp_path / "out"),
                            "--executor", "ray", "--shards", "2", pythonpath=[shim])  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'regbench[ray]'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # the run's one line and the error's
    assert not (tmp_path / "out").exists()


def test_an_unreachable_ray_address_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with blackholed_port() as silent:  # a host that does not answer: the connect check times out
        for port in (closed_port(), silent):
            address = f"127.0.0.1:{port}"
            done = regbench_process("run", "-m", "medrega-demo", "-t", "demo_vqa_en", "-o", str(tmp_path / "out"),
                                    "--executor", "ray", "--shards", "2", "--ray-address", address)  # fmt: skip
            assert done.returncode == 2, done.stderr
            assert f"--ray-address 127.0.0.1:{port}: nothing answers there" in done.stderr
            assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_merge_refuses_an_existing_target_unless_told_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    task = "demo_detection_medrega"
    for shard in ("0/2", "1/2"):
        assert invoke("run", "-m", "medrega-demo", "-t", task, "-o", str(out), "--shard", shard)[0] == 0
    shards = sorted(str(p) for p in (out / "medrega-demo" / task).glob("shard-*"))
    target = tmp_path / "merged"
    target.mkdir()
    (target / "results.json").write_text("{}")
    code, text = invoke("merge", *shards, "-o", str(target))
    assert code == 2, text
    assert "results.json exists" in text and "--overwrite" in text
    assert (target / "results.json").read_text() == "{}" and not (target / "samples.jsonl").exists()
    code, text = invoke("merge", *shards, "-o", str(target), "--overwrite")
    assert code == 0, text
    assert json.loads((target / "results.json").read_text())["task"] == task
