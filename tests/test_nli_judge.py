"""Semantic entropy with an NLI judge (issue 19): ``nli:`` names a model, and the entailment questions go
through the judge mechanism to a loopback server returning scripted verdicts. Hand-computed clusters and
entropies, exactly the pairs the clustering needs (each once), a rerun that asks nothing, unreadable
verdicts counted and treated as not entailed, and a missing or unreachable judge refused before the model
is asked."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import roc_auc_score

from regbench.metrics.uncertainty import parse_nli_verdict
from tests.servers import RunningServer, closed_port, start_openai_server
from tests.test_uncertainty import SCRIPT, read_run, run, write_model, write_task

# The model's five answers per question (tests/test_uncertainty.py SCRIPT, seeds 10-14):
#   alpha: yes yes yes yes yes    beta: yes no yes no no
#   gamma: no yes maybe yes no    delta: no no no no yes


def pair(question: str, premise: str, hypothesis: str) -> str:
    """The part of the entailment prompt that tells the scripted judge which pair it is asked about."""
    return f'Question: "question {question}"\nAnswer A: "{premise}"\nAnswer B: "{hypothesis}"'


VERDICTS = {
    ("beta", "yes", "no"): "Verdict: contradiction",
    ("beta", "no", "yes"): "Verdict: Contradiction",
    ("gamma", "no", "yes"): "Verdict: contradiction",
    ("gamma", "yes", "no"): "contradiction",  # no Verdict: line, one label: read
    ("gamma", "no", "maybe"): "I am not sure.",  # unreadable: counted, not entailed
    ("gamma", "maybe", "no"): "Verdict: neutral",
    ("gamma", "yes", "maybe"): "Verdict: entailment",
    ("gamma", "maybe", "yes"): "Both say the same. Verdict: entailment",
    ("delta", "no", "yes"): "Verdict: entailment",
    ("delta", "yes", "no"): "entailment or neutral, hard to say",  # two labels: unreadable, so not entailed
}
JUDGE_SCRIPT = [{"match": pair(*key), "reply": reply} for key, reply in VERDICTS.items()]
_ASKED = re.compile(r'Question: "question (\w+)"\nAnswer A: "(.*)"\nAnswer B: "(.*)"')


def write_judge(directory: Path, url: str, **more: Any) -> Path:
    spec = {"model": "nli-judge", "adapter": "openai", "base_url": url, "model_name": "nli-model", "max_retries": 0}
    spec.update(more)
    (directory / "judge.yaml").write_text(json.dumps(spec))
    return directory / "judge.yaml"


def asked_pairs(judge: RunningServer) -> list[tuple[str, str, str]]:
    found = [_ASKED.search(r["text"]) for r in judge.requests()]
    assert all(found)
    return [m.groups() for m in found if m is not None]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    model = start_openai_server(tmp_path, script=SCRIPT)
    judge = start_openai_server(tmp_path, name="judge", script=JUDGE_SCRIPT, served=["nli-model"])
    yield model, judge
    model.stop()
    judge.stop()


def h(*shares: float) -> float:
    return -sum(p * math.log(p) for p in shares)


def test_semantic_entropy_with_a_scripted_nli_judge(
    tmp_path: Path, servers: tuple[RunningServer, RunningServer]
) -> None:
    model, judge = servers
    write_judge(tmp_path, judge.url)
    task = write_task(tmp_path, "judge.yaml")  # a model YAML relative to the task YAML
    code, text = run(task, write_model(tmp_path, model.url), tmp_path / "out")
    assert code == 0, text
    assert len(model.requests()) == 5 * 4

    # every ordered pair of each question's distinct answers, each once; alpha's equal answers ask nothing
    asked = asked_pairs(judge)
    assert len(asked) == len(set(asked)) == 10
    assert set(asked) == set(VERDICTS)
    first = judge.requests()[0]
    assert first["model"] == "nli-model" and first["temperature"] == 0.0

    results, samples = read_run(tmp_path / "out")
    by_id = {s["id"]: s["stats"]["semantic_entropy"] for s in samples}
    assert by_id["q0"]["cluster_ids"] == [0, 0, 0, 0, 0]
    assert by_id["q1"]["cluster_ids"] == [0, 1, 0, 1, 1]  # yes / no contradict
    assert by_id["q2"]["cluster_ids"] == [0, 1, 1, 1, 0]  # maybe and yes entail each other both ways
    assert by_id["q3"]["cluster_ids"] == [0, 0, 0, 0, 1]  # one way only (the other unreadable): apart
    assert [by_id[q]["nli_parse_failures"] for q in ("q0", "q1", "q2", "q3")] == [0, 0, 1, 1]

    metrics = results["metrics"]
    discrete = {"q0": 0.0, "q1": h(0.4, 0.6), "q2": h(0.4, 0.6), "q3": h(0.8, 0.2)}
    assert metrics["discrete_semantic_entropy"] == pytest.approx(sum(discrete.values()) / 4)
    # equal likelihoods (-0.25 for each one-token answer): semantic entropy equals the discrete one,
    # and XMedGPT's Eq. 6 is sum_c P(c) ln |c|
    assert metrics["semantic_entropy"] == pytest.approx(metrics["discrete_semantic_entropy"])
    xmedgpt = [math.log(5), 0.4 * math.log(2) + 0.6 * math.log(3), 0.4 * math.log(2) + 0.6 * math.log(3)]
    xmedgpt.append(0.8 * math.log(4))
    assert metrics["semantic_entropy_xmedgpt"] == pytest.approx(sum(xmedgpt) / 4)
    # answer 0 against the reference "yes": q0, q1 right, q2, q3 wrong
    wrong = [False, False, True, True]
    expected = roc_auc_score(wrong, [discrete[q] for q in ("q0", "q1", "q2", "q3")])
    assert metrics["auroc_discrete_semantic_entropy"] == pytest.approx(expected) == pytest.approx(0.625)
    assert metrics["nli_parse_failures"] == 2 and isinstance(metrics["nli_parse_failures"], int)

    signature = results["signatures"]["semantic_entropy"]
    assert signature.startswith("semantic_entropy|nli:nli-model|m:5|")
    assert "|prompt:" in signature and "|temperature:0|parser:nli_verdict|" in signature
    records = {s["id"]: s for s in samples}
    pairs = records["q3"]["judge"]["semantic_entropy"]["pairs"]
    assert set(pairs) == {"entail:0>4", "entail:4>0"}
    assert pairs["entail:0>4"] == {"raw": "Verdict: entailment", "verdict": "entailment", "parse_error": None}
    assert pairs["entail:4>0"]["verdict"] is None and "several labels" in pairs["entail:4>0"]["parse_error"]
    assert "judge" not in records["q0"] or not records["q0"]["judge"]
    assert "2 of the NLI judge's answers could not be read" in " ".join(text.split())

    # a rerun asks neither the model nor the judge anything, and writes the same results
    before = (tmp_path / "out/served/uncertain_vqa/results.json").read_bytes()
    code, text = run(task, write_model(tmp_path, model.url), tmp_path / "out")
    assert code == 0, text
    assert len(model.requests()) == 20 and len(judge.requests()) == 10
    assert (tmp_path / "out/served/uncertain_vqa/results.json").read_bytes() == before
    info = json.loads((tmp_path / "out/served/uncertain_vqa/run.json").read_text())
    assert info["judge"]["cached"] == 10 and info["judge"]["asked"] == 0


def test_an_nli_judge_named_by_model_name(
    tmp_path: Path, spec_root: Path, servers: tuple[RunningServer, RunningServer]
) -> None:
    model, judge = servers
    write_judge(spec_root / "models", judge.url)
    code, text = run(write_task(tmp_path, "nli-judge"), write_model(tmp_path, model.url), tmp_path / "out")
    assert code == 0, text
    assert len(asked_pairs(judge)) == 10
    assert "|nli:nli-model|" in read_run(tmp_path / "out")[0]["signatures"]["discrete_semantic_entropy"]


def test_kill_9_mid_nli_judging_resumes_without_asking_an_answered_pair_again(tmp_path: Path) -> None:
    # four questions of three distinct answers each (no yes maybe yes no): 6 pairs each, 24 in all; the
    # judge echoes the prompt, which names all three labels: every answer is unreadable
    questions = {f"q{i}": f"gamma{i}" for i in range(4)}
    model = start_openai_server(tmp_path, script=SCRIPT)
    judge = start_openai_server(tmp_path, latency=0.15, name="judge", served=["nli-model"])
    try:
        write_judge(tmp_path, judge.url, concurrency=1)
        task, spec = write_task(tmp_path, "judge.yaml", questions=questions), write_model(tmp_path, model.url)
        command = [sys.executable, "-m", "regbench", "run", "--model", str(spec), "--task", str(task)]
        killed = subprocess.Popen(
            [*command, "-o", str(tmp_path / "out"), "--bootstrap", "50"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        deadline = time.monotonic() + 60
        while len(judge.requests()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        asked_before = len(judge.requests())
        assert 6 <= asked_before < 24 and len(model.requests()) == 20
        code, text = run(task, spec, tmp_path / "out")
        assert code == 0, text
        asked = asked_pairs(judge)
        assert len(set(asked)) == 24 and len(model.requests()) == 20
        info = json.loads((tmp_path / "out/served/uncertain_vqa/run.json").read_text())
        tally = info["judge"]
        assert tally["cached"] + tally["asked"] == 24 and tally["cached"] >= asked_before - 1  # one in flight
        assert len(asked) == asked_before + tally["asked"]  # only the unanswered pairs were asked again
        results, samples = read_run(tmp_path / "out")
        assert results["metrics"]["nli_parse_failures"] == 24
        assert {tuple(s["stats"]["semantic_entropy"]["cluster_ids"]) for s in samples} == {(0, 1, 2, 1, 0)}
    finally:
        model.stop()
        judge.stop()


@pytest.mark.parametrize("case", ["missing", "unreachable"])
def test_a_missing_or_unreachable_nli_judge_stops_the_run_before_the_model_is_asked(
    tmp_path: Path, servers: tuple[RunningServer, RunningServer], case: str
) -> None:
    model, judge = servers
    if case == "unreachable":
        write_judge(tmp_path, f"http://127.0.0.1:{closed_port()}/v1")
        nli = "judge.yaml"
    else:
        nli = "nowhere.yaml"
    code, text = run(write_task(tmp_path, nli), write_model(tmp_path, model.url), tmp_path / "out")
    flat = " ".join(text.split())
    assert code == 2, text
    assert "semantic_entropy" in flat and "Traceback" not in text
    assert ("model YAML not found" in flat) if case == "missing" else ("cannot be used" in flat)
    assert model.requests() == [] and judge.requests() == []


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Verdict: entailment", "entailment"),
        ("verdict:**Neutral**", "neutral"),
        ("It is a contradiction.", "contradiction"),
        ("Neutral at first, but Verdict: contradiction", "contradiction"),
        ("Verdict: maybe", None),
        ("entailment, or neutral?", None),
        ("", None),
    ],
)
def test_nli_verdicts_are_read_from_a_verdict_line_or_a_single_label(text: str, verdict: str | None) -> None:
    found, reason = parse_nli_verdict(text)
    assert found == verdict
    assert (reason is None) == (verdict is not None)
