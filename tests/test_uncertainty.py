"""Semantic entropy (issue 19): the formulas on hand-computed clusters and likelihoods, AUROC against
scikit-learn, clustering by strict bidirectional entailment, and whole runs with
``samples_per_question`` against the loopback OpenAI server and a tiny NLI checkpoint built here."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from regbench.cli import app
from regbench.metrics import nli
from regbench.metrics.uncertainty import (
    aurac,
    auroc,
    cluster_questions,
    discrete_semantic_entropy,
    semantic_entropy,
    sequence_log_likelihood,
    xmedgpt_entropy,
)
from tests.conftest import REPO, write_jsonl
from tests.helpers.tiny_nli import verdicts, write_nli
from tests.servers import RunningServer, start_openai_server

# ---------------------------------------------------------------- formulas by hand


def test_semantic_entropy_of_hand_computed_clusters() -> None:
    ids = [0, 0, 1]
    logs = [math.log(0.5), math.log(0.2), math.log(0.3)]
    # P(c0) = 0.7, P(c1) = 0.3 (already normalised)
    assert semantic_entropy(ids, logs) == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)))
    assert discrete_semantic_entropy(ids) == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    # Eq. 6: P(c0) H_c0 + P(c1) H_c1, H_c0 over (5/7, 2/7), H_c1 = 0 (one answer)
    h_c0 = -(5 / 7 * math.log(5 / 7) + 2 / 7 * math.log(2 / 7))
    assert xmedgpt_entropy(ids, logs) == pytest.approx(0.7 * h_c0)


def test_cluster_probabilities_are_normalised_over_the_question_s_clusters() -> None:
    ids = [0, 0, 1]
    logs = [math.log(0.1), math.log(0.1), math.log(0.2)]  # sums to 0.4: P(c0) = P(c1) = 0.5 after Eq. 4
    assert semantic_entropy(ids, logs) == pytest.approx(math.log(2))
    assert xmedgpt_entropy(ids, logs) == pytest.approx(0.5 * math.log(2))
    # the same likelihoods scaled by any factor give the same entropies
    shifted = [v - 30.0 for v in logs]
    assert semantic_entropy(ids, shifted) == pytest.approx(math.log(2))
    assert xmedgpt_entropy(ids, shifted) == pytest.approx(0.5 * math.log(2))


def test_one_cluster_gives_exactly_zero_and_eq6_counts_duplicates() -> None:
    ids, logs = [0] * 5, [-0.25] * 5
    assert semantic_entropy(ids, logs) == 0.0
    assert discrete_semantic_entropy(ids) == 0.0
    # Eq. 5 taken literally: five equally likely members of one cluster
    assert xmedgpt_entropy(ids, logs) == pytest.approx(math.log(5))


def test_sequence_log_likelihood_sums_or_averages_token_logprobs() -> None:
    assert sequence_log_likelihood([-0.5, -1.0, -1.5], length_normalised=False) == pytest.approx(-3.0)
    assert sequence_log_likelihood([-0.5, -1.0, -1.5], length_normalised=True) == pytest.approx(-1.0)
    assert sequence_log_likelihood([], length_normalised=False) == 0.0


def test_auroc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(2, 40))
        labels = rng.integers(0, 2, size=n).astype(bool)
        scores = np.round(rng.random(n), 1)  # rounded: many ties
        if labels.all() or not labels.any():
            assert auroc(labels.tolist(), scores.tolist()) is None
            continue
        assert auroc(labels.tolist(), scores.tolist()) == pytest.approx(roc_auc_score(labels, scores))


def test_aurac_by_hand() -> None:
    # sorted by uncertainty: correct, wrong, correct, wrong -> accuracies 1, 1/2, 2/3, 1/2
    assert aurac([True, False, True, False], [0.1, 0.2, 0.3, 0.4]) == pytest.approx((1 + 1 / 2 + 2 / 3 + 1 / 2) / 4)
    # a tie is kept or rejected as a whole: both at 0.1 -> accuracy 1/2 at each of them
    assert aurac([True, False, True], [0.1, 0.1, 0.5]) == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3)
    assert aurac([], []) is None


def scripted(equivalent: set[frozenset[str]], one_way: set[tuple[str, str]] = frozenset()) -> Any:  # type: ignore[assignment]
    calls: list[int] = []

    def entails(pairs: Sequence[tuple[str, str]]) -> list[str]:
        calls.append(len(pairs))
        return ["entailment" if frozenset(p) in equivalent or p in one_way else "neutral" for p in pairs]

    entails.calls = calls  # type: ignore[attr-defined]
    return entails


def test_clustering_is_strict_bidirectional_and_batched_per_round() -> None:
    entails = scripted(
        {frozenset({"yes", "yes, there is"}), frozenset({"no", "none seen"})},
        one_way={("left lung", "lung")},  # one direction only: not the same meaning
    )
    questions = [
        ["yes", "no", "yes, there is", "none seen", "yes"],
        ["left lung", "lung", "left lung"],
    ]
    assert cluster_questions(questions, entails) == [[0, 1, 0, 1, 0], [0, 1, 0]]
    # one batch per round (the identical texts and the first answers ask nothing)
    assert len(entails.calls) == 3


# ---------------------------------------------------------------- runs against a loopback server

SCRIPT = [
    {"match": "alpha", "replies": ["yes", "yes", "yes", "yes", "yes"]},
    {"match": "beta", "replies": ["yes", "no", "yes", "no", "no"]},
    {"match": "gamma", "replies": ["no", "yes", "maybe", "yes", "no"]},
    {"match": "delta", "replies": ["no", "no", "no", "no", "yes"]},
]
QUESTIONS = {"q0": "alpha", "q1": "beta", "q2": "gamma", "q3": "delta"}


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REGBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    nli.loaded().clear()
    yield tmp_path / "weights"
    nli.loaded().clear()


@pytest.fixture(scope="module")
def contradicting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NLI checkpoint that finds no two different texts equivalent."""
    return write_nli(tmp_path_factory.mktemp("nli") / "contradicting", lean="CONTRADICTION")


@pytest.fixture(scope="module")
def entailing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NLI checkpoint that finds every two texts equivalent."""
    return write_nli(tmp_path_factory.mktemp("nli") / "entailing", lean="ENTAILMENT")


def write_task(directory: Path, nli_dir: Path | str, m: int = 5, questions: dict[str, str] = QUESTIONS) -> Path:
    rows = [{"id": i, "question": f"question {w}", "answer": "yes"} for i, w in questions.items()]
    write_jsonl(directory / "data.jsonl", rows)
    task = {
        "task": "uncertain_vqa",
        "family": "vqa",
        "dataset": {"path": "data.jsonl"},
        "prompt": "{{ question }}",
        "samples_per_question": m,
        "generation": {"max_tokens": 8, "temperature": 1.0, "top_p": 0.9, "seed": 10},
        "metrics": ["vqa", {"name": "semantic_entropy", "nli": str(nli_dir)}],
    }
    (directory / "task.yaml").write_text(json.dumps(task))
    return directory / "task.yaml"


def write_model(directory: Path, url: str) -> Path:
    spec = {"model": "served", "adapter": "openai", "base_url": url, "model_name": "test-model", "max_retries": 2}
    (directory / "model.yaml").write_text(json.dumps(spec))
    return directory / "model.yaml"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def run(task: Path, model: Path, out: Path) -> tuple[int, str]:
    return invoke("run", "--model", str(model), "--task", str(task), "-o", str(out), "--bootstrap", "50")


def read_run(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    directory = out / "served" / "uncertain_vqa"
    results = json.loads((directory / "results.json").read_text())
    samples = [json.loads(line) for line in (directory / "samples.jsonl").read_text().splitlines()]
    return results, samples


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_openai_server(tmp_path, script=SCRIPT)
    yield running
    running.stop()


def test_m_samples_per_question_are_asked_once_seeded_and_grow_by_the_new_ones(
    tmp_path: Path, server: RunningServer, weights: Path, contradicting: Path
) -> None:
    task, model = write_task(tmp_path, contradicting), write_model(tmp_path, server.url)
    code, text = run(task, model, tmp_path / "out")
    assert code == 0, text
    asked = server.requests()
    assert len(asked) == 5 * 4  # exactly M per question, no extra greedy request
    assert sorted((r["text"], r["seed"]) for r in asked) == sorted(
        (f"question {w}", 10 + k) for w in QUESTIONS.values() for k in range(5)
    )
    assert {(r["temperature"], r["top_p"], r["logprobs"]) for r in asked} == {(1.0, 0.9, True)}

    results, samples = read_run(tmp_path / "out")
    assert results["n_samples"] == 4
    by_id = {s["id"]: s for s in samples}
    stats = by_id["q2"]["stats"]["semantic_entropy"]
    assert stats["answers"] == ["no", "yes", "maybe", "yes", "no"]
    assert stats["cluster_ids"] == [0, 1, 2, 1, 0]
    assert stats["sequence_logprobs"] == [-0.25] * 5  # one token each, -0.25 from the server
    assert by_id["q2"]["output"] == "no"  # answer 0 is what the other metrics score
    assert by_id["q2"]["scores"]["token_f1"] == 0.0

    entropies = {i: discrete_semantic_entropy(s["stats"]["semantic_entropy"]["cluster_ids"]) for i, s in by_id.items()}
    assert entropies["q0"] == 0.0
    wrong = {i: s["scores"]["token_f1"] < 0.5 for i, s in by_id.items()}
    order = sorted(by_id)
    expected = roc_auc_score([wrong[i] for i in order], [entropies[i] for i in order])
    metrics = results["metrics"]
    assert metrics["auroc_discrete_semantic_entropy"] == pytest.approx(expected) == pytest.approx(0.75)
    assert metrics["discrete_semantic_entropy"] == pytest.approx(np.mean(list(entropies.values())))
    # equal likelihoods: the likelihood-based entropy equals the discrete one
    assert metrics["semantic_entropy"] == pytest.approx(metrics["discrete_semantic_entropy"])
    for key in ("semantic_entropy_xmedgpt", "aurac_semantic_entropy", "auroc_semantic_entropy_xmedgpt"):
        assert key in metrics
    assert "auroc_discrete_semantic_entropy" in results["ci95"]
    signature = results["signatures"]["auroc_discrete_semantic_entropy"]
    assert "|nli:" in signature and "contradicting|m:5|" in signature

    # a rerun asks nothing and classifies nothing (the NLI verdicts are cached on disk too)
    nli.loaded().clear()
    code, _ = run(task, model, tmp_path / "out")
    assert code == 0 and len(server.requests()) == 20
    assert [checkpoint.computed for checkpoint in nli.loaded().values()] == [0]
    assert read_run(tmp_path / "out")[0] == results

    # growing M to 7 asks only answers 5 and 6 of each question
    write_task(tmp_path, contradicting, m=7)
    code, _ = run(task, model, tmp_path / "out")
    assert code == 0
    new = server.requests()[20:]
    assert sorted(r["seed"] for r in new) == [15] * 4 + [16] * 4
    assert "m:7" in read_run(tmp_path / "out")[0]["signatures"]["semantic_entropy"]


def test_an_entailing_nli_makes_one_cluster_and_zero_entropy(
    tmp_path: Path, server: RunningServer, weights: Path, entailing: Path
) -> None:
    code, text = run(write_task(tmp_path, entailing), write_model(tmp_path, server.url), tmp_path / "out")
    assert code == 0, text
    results, samples = read_run(tmp_path / "out")
    assert {tuple(s["stats"]["semantic_entropy"]["cluster_ids"]) for s in samples} == {(0,) * 5}
    assert results["metrics"]["semantic_entropy"] == 0.0
    assert results["metrics"]["discrete_semantic_entropy"] == 0.0
    assert results["metrics"]["semantic_entropy_xmedgpt"] == pytest.approx(math.log(5))


def test_the_checkpoint_s_batched_verdicts_equal_single_pair_verdicts(weights: Path, tmp_path: Path) -> None:
    directory = write_nli(tmp_path / "random", seed=3)
    pairs = [("yes", "no"), ("the left lung", "left lung"), ("a small effusion", "no effusion at all"), ("no", "no")]
    checkpoint = nli.local_nli(directory, device="cpu", batch_size=2, cache=None)
    assert checkpoint(pairs) == verdicts(directory, pairs)


def test_a_backend_that_ignores_temperature_gives_zero_entropy_with_a_note(
    tmp_path: Path, weights: Path, contradicting: Path
) -> None:
    fixed = start_openai_server(tmp_path, script=[{"match": "question", "reply": "yes"}])
    try:
        code, text = run(write_task(tmp_path, contradicting), write_model(tmp_path, fixed.url), tmp_path / "out")
    finally:
        fixed.stop()
    assert code == 0, text
    results, _ = read_run(tmp_path / "out")
    assert results["metrics"]["semantic_entropy"] == 0.0 == results["metrics"]["discrete_semantic_entropy"]
    assert "4 of 4 questions got the same text in all 5 samples" in " ".join(text.split())
    notes = json.loads((tmp_path / "out/served/uncertain_vqa/run.json").read_text())["notes"]
    assert any("ignore temperature" in n for n in notes)


def test_without_logprobs_the_likelihood_keys_are_withheld_and_discrete_is_computed(
    tmp_path: Path, weights: Path, contradicting: Path
) -> None:
    script = [{**rule, "no_logprobs": True} for rule in SCRIPT]
    silent = start_openai_server(tmp_path, script=script)
    try:
        code, text = run(write_task(tmp_path, contradicting), write_model(tmp_path, silent.url), tmp_path / "out")
    finally:
        silent.stop()
    assert code == 0, text
    results, samples = read_run(tmp_path / "out")
    metrics = results["metrics"]
    assert "discrete_semantic_entropy" in metrics and "auroc_discrete_semantic_entropy" in metrics
    for key in ("semantic_entropy", "semantic_entropy_xmedgpt", "auroc_semantic_entropy", "aurac_semantic_entropy"):
        assert key not in metrics
    assert samples[0]["stats"]["semantic_entropy"]["sequence_logprobs"] == [None] * 5
    assert "without token log-probabilities" in " ".join(text.split())


def test_a_missing_nli_checkpoint_stops_the_run_before_any_request(
    tmp_path: Path, server: RunningServer, weights: Path
) -> None:
    code, text = run(write_task(tmp_path, "deberta-large-mnli"), write_model(tmp_path, server.url), tmp_path / "out")
    flat = " ".join(text.split())
    assert code == 2
    assert "deberta-large-mnli" in flat and "microsoft/deberta-large-mnli" in flat and "Traceback" not in text
    assert server.requests() == []


def test_semantic_entropy_needs_samples_per_question_and_its_correctness_key(
    tmp_path: Path, server: RunningServer, weights: Path, contradicting: Path
) -> None:
    task = write_task(tmp_path, contradicting)
    spec = json.loads(task.read_text())
    model = write_model(tmp_path, server.url)
    task.write_text(json.dumps({k: v for k, v in spec.items() if k != "samples_per_question"}))
    code, text = run(task, model, tmp_path / "out")
    assert code == 2 and "samples_per_question" in text
    task.write_text(json.dumps({**spec, "metrics": [{"name": "semantic_entropy", "nli": str(contradicting)}]}))
    code, text = run(task, model, tmp_path / "out")
    assert code == 2 and "token_f1" in text and "vqa" in text
    assert server.requests() == []


def test_kill_9_mid_run_then_resume_asks_no_sample_twice(tmp_path: Path, weights: Path, contradicting: Path) -> None:
    questions = {f"q{i}": f"{w}{i}" for i, w in enumerate(["alpha", "beta", "gamma", "delta"] * 2)}
    slow = start_openai_server(tmp_path, latency=0.1, name="slow", script=SCRIPT)
    try:
        task, model = write_task(tmp_path, contradicting, questions=questions), write_model(tmp_path, slow.url)
        command = [sys.executable, "-m", "regbench", "run", "--model", str(model), "--task", str(task), "-c", "2"]
        command += ["--bootstrap", "50"]
        env = {**os.environ, "REGBENCH_WEIGHTS_DIR": str(weights)}
        interrupted = subprocess.Popen(
            [*command, "-o", str(tmp_path / "resumed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + 60
        while len(slow.requests()) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(interrupted.pid, signal.SIGKILL)
        interrupted.wait()
        assert 10 <= len(slow.requests()) < 40
        code, text = run(task, model, tmp_path / "resumed")  # in this process: no second torch import
        assert code == 0, text
        asked = [(r["text"], r["seed"]) for r in slow.requests()]
        # only requests in flight at the kill (at most the concurrency) may be asked twice
        assert len(asked) - 40 <= 2
        assert set(asked) == {(f"question {w}", 10 + k) for w in questions.values() for k in range(5)}
        assert run(task, model, tmp_path / "fresh")[0] == 0
    finally:
        slow.stop()
    resumed = (tmp_path / "resumed/served/uncertain_vqa/results.json").read_text()
    assert resumed == (tmp_path / "fresh/served/uncertain_vqa/results.json").read_text()
    assert "auroc_semantic_entropy" in json.loads(resumed)["metrics"]


def test_the_bundled_demo_replays_five_recorded_samples_per_question(
    tmp_path: Path, weights: Path, contradicting: Path
) -> None:
    bundled = REPO / "tasks" / "uncertainty" / "demo_semantic_entropy.yaml"
    data = REPO / "tasks" / "uncertainty" / "data" / "demo_uncertainty.jsonl"
    wrapper = {
        "include": str(bundled),
        "dataset": {"path": str(data)},
        "metrics": ["vqa", {"name": "semantic_entropy", "nli": str(contradicting)}],
    }
    (tmp_path / "demo_semantic_entropy.yaml").write_text(json.dumps(wrapper))
    code, text = invoke(
        "run", "--model", "xmedgpt-demo", "--task", str(tmp_path / "demo_semantic_entropy.yaml"), "-o", str(tmp_path)
    )
    assert code == 0, text
    directory = tmp_path / "xmedgpt-demo" / "demo_semantic_entropy"
    results = json.loads((directory / "results.json").read_text())
    samples = {s["id"]: s for s in map(json.loads, (directory / "samples.jsonl").read_text().splitlines())}
    assert results["n_samples"] == 6
    assert samples["u1"]["stats"]["semantic_entropy"]["cluster_ids"] == [0] * 5
    assert samples["u3"]["stats"]["semantic_entropy"]["cluster_ids"] == [0, 1, 2, 0, 3]
    assert samples["u3"]["output"] == "left lung"  # answer 0, scored by vqa
    for key in ("semantic_entropy", "discrete_semantic_entropy", "semantic_entropy_xmedgpt"):
        assert f"auroc_{key}" in results["metrics"] and f"aurac_{key}" in results["metrics"]


def test_sharded_semantic_entropy_merges_into_the_unsharded_run(
    tmp_path: Path, weights: Path, contradicting: Path
) -> None:
    wrapper = {
        "include": str(REPO / "tasks" / "uncertainty" / "demo_semantic_entropy.yaml"),
        "dataset": {"path": str(REPO / "tasks" / "uncertainty" / "data" / "demo_uncertainty.jsonl")},
        "metrics": ["vqa", {"name": "semantic_entropy", "nli": str(contradicting)}],
    }
    task = tmp_path / "task.yaml"
    task.write_text(json.dumps(wrapper))
    for shard in ("0/2", "1/2"):
        assert (
            invoke("run", "--model", "xmedgpt-demo", "--task", str(task), "-o", str(tmp_path / "s"), "--shard", shard)[
                0
            ]
            == 0
        )
    assert invoke("run", "--model", "xmedgpt-demo", "--task", str(task), "-o", str(tmp_path / "full"))[0] == 0
    shards = sorted(str(p) for p in (tmp_path / "s" / "xmedgpt-demo" / "demo_semantic_entropy").glob("shard-*"))
    code, text = invoke("merge", *shards, "-o", str(tmp_path / "merged"))
    assert code == 0, text
    full = tmp_path / "full" / "xmedgpt-demo" / "demo_semantic_entropy"
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    expected = json.loads((full / "results.json").read_text())
    assert (merged["metrics"], merged["ci95"]) == (expected["metrics"], expected["ci95"])
    assert (tmp_path / "merged" / "samples.jsonl").read_text() == (full / "samples.jsonl").read_text()
