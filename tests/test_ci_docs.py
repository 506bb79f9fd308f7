"""docs/ci.md runs as written: pipeline (b) in a fresh repository, and pipeline (a) up to its server.

The blocks are read from the page itself (found by the file each one names on its first
line), so the page cannot drift from what is tested. ``regbench`` on PATH is this checkout's
(a shim for ``python -m regbench``); the install step is checked, not run (no network here).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DOC = REPO / "docs" / "ci.md"
KNOWN_ACTIONS = ("actions/checkout@", "actions/setup-python@", "actions/setup-java@", "actions/upload-artifact@")


def blocks() -> list[str]:
    """Every fenced code block of docs/ci.md."""
    return re.findall(r"^```[a-z]*\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def block(first_line: str) -> str:
    (found,) = [b for b in blocks() if b.startswith(first_line)]
    return found


def steps(workflow: str) -> list[dict[str, Any]]:
    jobs = yaml.safe_load(workflow)["jobs"]
    (job,) = jobs.values()
    return job["steps"]


def ci_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CI step: ``regbench`` on PATH, and a step-summary file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "regbench"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m regbench "$@"\n')
    shim.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        "RUNNER_TEMP": str(tmp_path),
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh repository with the predictions and the gates file of docs/ci.md, and the baseline
    made by the page's one-time block (nothing of regbench's checkout)."""
    tmp = tmp_path_factory.mktemp("ci")
    root = tmp / "repo"
    (root / "predictions").mkdir(parents=True)
    shutil.copy(REPO / "models/recorded/medrega/grounded_rg.jsonl", root / "predictions" / "grounded_rg.jsonl")
    (root / "ci").mkdir()
    (root / "ci" / "gates.yaml").write_text(block("# ci/gates.yaml"))
    once = sh(block("# once:"), root, ci_env(tmp))
    assert once.returncode == 0, once.stderr
    assert (root / "ci/baseline/baseline/grounded_rg/samples.jsonl").is_file()
    assert not Path(ci_env(tmp)["GITHUB_STEP_SUMMARY"]).exists()  # no --summary: nothing appended
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "repo"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return ci_env(tmp_path)


def sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def run_steps(workflow: str, repo: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Run every ``run:`` step in order, as a runner would (``bash -e``, the job's env); check the rest."""
    done = []
    for step in steps(workflow):
        if "uses" in step:
            assert step["uses"].startswith(KNOWN_ACTIONS), step
            continue
        command = step["run"].strip()
        if command.startswith("pip install"):  # offline here: this checkout is what it would install
            assert command == "pip install regbench", command
            continue
        result = sh(command, repo, env)
        assert result.returncode == 0, (step["name"], result.stdout, result.stderr)
        done.append(result)
    return done


@pytest.mark.slow
def test_pipeline_b_runs_as_written_in_a_fresh_repository(repo: Path, env: dict[str, str]) -> None:
    workflow = block("# .github/workflows/regbench-gate.yml")
    (gated,) = run_steps(workflow, repo, env)
    assert "regbench gates: all 5 gates passed" in gated.stdout, gated.stdout
    uploaded = steps(workflow)[-1]
    assert uploaded["if"] == "always()" and (repo / uploaded["with"]["path"]).is_dir()
    assert (repo / "runs/candidate/grounded_rg/results.json").is_file()
    suites = ET.parse(repo / "runs/gates.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["grounded_rg"] and suites[0].get("failures") == "0"
    summary = (repo / "runs/gates.md").read_text()
    assert summary.startswith("### ✅ regbench gates: all 5 gates passed")
    assert Path(env["GITHUB_STEP_SUMMARY"]).read_text() == summary

    # a regression: the same step fails the job (exit 1), and the JUnit file says why
    (repo / "predictions/grounded_rg.jsonl").write_text(
        "".join(
            line.split('"output"')[0] + '"output": "No finding."}\n'
            for line in (REPO / "models/recorded/medrega/grounded_rg.jsonl").read_text().splitlines()
        )
    )
    (step,) = [s for s in steps(workflow) if "regbench score" in s.get("run", "")]
    failed = sh(step["run"], repo, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failures = [f.get("message", "") for f in ET.parse(repo / "runs/gates.xml").getroot().iter("failure")]
    assert any(m.startswith("region_f1: min: 0 < 0.5") for m in failures), failures

    # the same gates on the stored results, without scoring again
    gate = block("regbench gate")
    assert sh(gate, repo, env).returncode == 1
    shutil.rmtree(repo / "runs")
    missing = sh(gate, repo, env)
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_pipeline_a_gates_a_served_model_and_exits_3_without_a_server(repo: Path, env: dict[str, str]) -> None:
    workflow = block("# .github/workflows/regbench.yml")
    job = next(iter(yaml.safe_load(workflow)["jobs"].values()))
    names = [s.get("name", s.get("uses")) for s in job["steps"]]
    assert names.index("Wait until /v1/models answers") < names.index("Run and gate")
    wait = next(s["run"] for s in job["steps"] if s.get("name") == "Wait until /v1/models answers")
    assert 'curl -sf "$MEDREGA_VLLM_URL/models"' in wait
    assert job["steps"][-1]["if"] == "always()" and "runs/" in job["steps"][-1]["with"]["path"]
    # the gating step against a server that is not there (the baseline made as the page says)
    step = next(s["run"] for s in job["steps"] if s.get("name") == "Run and gate")
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    result = sh(step, repo, {**env, **job["env"], "MEDREGA_VLLM_URL": url})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no OpenAI-compatible server answers" in result.stderr and "vllm serve" in result.stderr
