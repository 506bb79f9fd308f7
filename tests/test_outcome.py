"""kendall_tau and prognosis (issue 19), scored through ``regbench score`` and checked against scipy,
scikit-learn and lifelines on the same inputs; the Kaplan-Meier plot of ``regbench plot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import kendalltau
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from regbench.cli import app
from regbench.metrics.prognosis import kaplan_meier, read_score
from tests.conftest import REPO, write_jsonl


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def score(tmp_path: Path, task: dict[str, Any], rows: list[dict[str, Any]], outputs: list[str]) -> tuple[dict, list]:
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "task.yaml").write_text(json.dumps({"dataset": {"path": "data.jsonl"}, **task}))
    write_jsonl(tmp_path / "preds.jsonl", [{"id": r["id"], "output": o} for r, o in zip(rows, outputs, strict=True)])
    code, text = invoke(
        "score", "--task", str(tmp_path / "task.yaml"), "--predictions", str(tmp_path / "preds.jsonl"),
        "-o", str(tmp_path / "out"), "--bootstrap", "200",
    )  # fmt: skip
    assert code == 0, text
    directory = tmp_path / "out" / "preds" / task["task"]
    samples = [json.loads(line) for line in (directory / "samples.jsonl").read_text().splitlines()]
    return json.loads((directory / "results.json").read_text()), samples


# ---------------------------------------------------------------- kendall_tau


def test_kendall_tau_b_between_a_metric_column_and_a_meta_column_equals_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    words = ["left", "lung", "opacity", "effusion", "base"]
    rows, outputs = [], []
    for i in range(25):
        answer = " ".join(rng.choice(words, size=3, replace=False))
        rows.append({"id": f"s{i}", "question": "q", "answer": answer, "reasoning": int(rng.integers(1, 5))})
        outputs.append(" ".join(rng.choice(words, size=int(rng.integers(1, 4)), replace=False)))
    task = {
        "task": "tau",
        "family": "vqa",
        "metrics": ["vqa", {"name": "kendall_tau", "x": "meta.reasoning", "y": "token_f1"}],
    }
    results, samples = score(tmp_path, task, rows, outputs)
    x = [s["stats"]["kendall_tau"]["x"] for s in samples]
    y = [s["scores"]["token_f1"] for s in samples]
    assert x == [r["reasoning"] for r in rows]  # the meta column, in order
    expected = kendalltau(x, y)  # tau-b, ties in both columns
    assert results["metrics"]["kendall_tau"] == pytest.approx(expected.statistic)
    assert results["metrics"]["kendall_tau_p"] == pytest.approx(expected.pvalue)
    assert "x:meta.reasoning|y:token_f1" in results["signatures"]["kendall_tau"]


def test_kendall_tau_of_a_constant_column_is_absent_with_a_note(tmp_path: Path) -> None:
    rows = [{"id": f"s{i}", "question": "q", "answer": "yes", "judge": 5} for i in range(5)]
    task = {
        "task": "tau",
        "family": "vqa",
        "metrics": ["vqa", {"name": "kendall_tau", "x": "meta.judge", "y": "token_f1"}],
    }
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "task.yaml").write_text(json.dumps({"dataset": {"path": "data.jsonl"}, **task}))
    write_jsonl(
        tmp_path / "preds.jsonl",
        [{"id": r["id"], "output": o} for r, o in zip(rows, ["yes", "no", "yes", "no", "yes"], strict=True)],
    )
    code, text = invoke(
        "score", "--task", str(tmp_path / "task.yaml"), "--predictions", str(tmp_path / "preds.jsonl"),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, text
    results = json.loads((tmp_path / "out/preds/tau/results.json").read_text())
    assert "kendall_tau" not in results["metrics"]
    assert "tau-b is undefined" in " ".join(text.split())


def test_kendall_tau_naming_a_key_no_metric_produces_exits_2(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", [{"id": "s", "question": "q", "answer": "a"}])
    task = {"task": "tau", "family": "vqa", "dataset": {"path": "data.jsonl"}}
    task["metrics"] = ["vqa", {"name": "kendall_tau", "x": "meta.judge", "y": "chexbert_f1"}]
    (tmp_path / "task.yaml").write_text(json.dumps(task))
    write_jsonl(tmp_path / "preds.jsonl", [{"id": "s", "output": "a"}])
    code, text = invoke("score", "--task", str(tmp_path / "task.yaml"), "--predictions", str(tmp_path / "preds.jsonl"))
    assert code == 2 and "chexbert_f1" in text and "Traceback" not in text


# ---------------------------------------------------------------- prognosis


def cohort(n: int = 40) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    rng = np.random.default_rng(11)
    endpoint = rng.integers(0, 2, size=n)
    probability = np.clip(0.5 * endpoint + rng.random(n) * 0.6 - 0.05, 0, 1).round(2)
    time = np.where(endpoint == 1, rng.uniform(12, 40, n), rng.uniform(1, 20, n)).round(1)
    event = rng.random(n) < 0.8
    rows = [
        {"id": f"p{i}", "question": "Will PFS exceed 14 months?", "answer": "yes" if endpoint[i] else "no",
         "time": float(time[i]), "event": bool(event[i])}
        for i in range(n)
    ]  # fmt: skip
    outputs = [f"Probability of PFS > 14 months: {p:.2f}" for p in probability]
    return rows, outputs, probability


def test_prognosis_auc_accuracy_and_log_rank_equal_scikit_learn_and_lifelines(tmp_path: Path) -> None:
    rows, outputs, probability = cohort()
    outputs[3] = "Yes."  # no probability: the yes / no reading, 1
    outputs[5] = "I cannot say."  # unreadable: out of the AUC, wrong in the accuracy
    task = {"task": "pfs", "family": "vqa", "metrics": ["prognosis"]}
    results, samples = score(tmp_path, task, rows, outputs)
    endpoint = np.array([r["answer"] == "yes" for r in rows])
    scores = probability.astype(float)
    scores[3] = 1.0
    readable = np.arange(len(rows)) != 5
    metrics = results["metrics"]
    assert metrics["prognosis_auc"] == pytest.approx(roc_auc_score(endpoint[readable], scores[readable]))
    group = scores >= 0.5
    assert metrics["prognosis_accuracy"] == pytest.approx(((group == endpoint) & readable).sum() / len(rows))
    time = np.array([r["time"] for r in rows])
    event = np.array([r["event"] for r in rows])
    high, low = readable & group, readable & ~group
    expected = logrank_test(time[high], time[low], event_observed_A=event[high], event_observed_B=event[low])
    assert metrics["logrank_p"] == pytest.approx(expected.p_value)
    assert set(results["ci95"]) == {"prognosis_auc", "prognosis_accuracy"}  # intervals, not for a p-value
    low_ci, high_ci = results["ci95"]["prognosis_auc"]
    assert low_ci <= metrics["prognosis_auc"] <= high_ci
    assert samples[5]["stats"]["prognosis"]["score"] is None


def test_kaplan_meier_equals_lifelines() -> None:
    rows, _, _ = cohort(30)
    times = [r["time"] for r in rows]
    events = [r["event"] for r in rows]
    points, survival = kaplan_meier(times, events)
    fitter = KaplanMeierFitter().fit(times, events)
    reference = fitter.survival_function_["KM_estimate"]
    for t, s in zip(points, survival, strict=True):
        assert s == pytest.approx(float(reference.loc[t]))


def test_an_empty_predicted_group_leaves_logrank_absent_with_a_note(tmp_path: Path) -> None:
    rows, outputs, _ = cohort(12)
    task = {"task": "pfs", "family": "vqa", "metrics": [{"name": "prognosis", "threshold": 1.0}]}
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "task.yaml").write_text(json.dumps({"dataset": {"path": "data.jsonl"}, **task}))
    outputs = [o.replace("1.00", "0.99") for o in outputs]
    write_jsonl(tmp_path / "preds.jsonl", [{"id": r["id"], "output": o} for r, o in zip(rows, outputs, strict=True)])
    code, text = invoke(
        "score", "--task", str(tmp_path / "task.yaml"), "--predictions", str(tmp_path / "preds.jsonl"),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, text
    results = json.loads((tmp_path / "out/preds/pfs/results.json").read_text())
    assert "logrank_p" not in results["metrics"] and "prognosis_auc" in results["metrics"]
    assert "high-score group" in " ".join(text.split()) and "logrank_p is absent" in " ".join(text.split())


def test_read_score() -> None:
    assert read_score("Probability: 0.73") == 0.73
    assert read_score("about 73% likely") == 0.73
    assert read_score("Over 14 months: yes, 0.6") == 0.6
    assert read_score("No.") == 0.0
    assert read_score("Yes, it will") == 1.0
    assert read_score("unclear") is None


def test_regbench_plot_draws_kaplan_meier_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows, outputs, _ = cohort(20)
    score(tmp_path, {"task": "pfs", "family": "vqa", "metrics": ["prognosis"]}, rows, outputs)
    code, text = invoke("plot", str(tmp_path / "out"), "-o", str(tmp_path / "plots"))
    assert code == 0, text
    assert (tmp_path / "plots" / "km_preds_pfs.png").stat().st_size > 1000


def test_the_bundled_prognosis_and_kendall_demos_run_on_their_recordings(tmp_path: Path) -> None:
    code, text = invoke(
        "run", "--model", "xmedgpt-demo", "--task", "demo_prognosis,demo_kendall_tau", "-o", str(tmp_path)
    )
    assert code == 0, text
    prognosis = json.loads((tmp_path / "xmedgpt-demo/demo_prognosis/results.json").read_text())
    rows = [
        json.loads(line) for line in (REPO / "tasks/uncertainty/data/demo_prognosis.jsonl").read_text().splitlines()
    ]
    recorded = REPO / "models/recorded/xmedgpt/demo_prognosis.jsonl"
    scores = [read_score(json.loads(line)["output"]) for line in recorded.read_text().splitlines()]
    assert prognosis["n_samples"] == 16
    expected = roc_auc_score([r["answer"] == "yes" for r in rows], scores)
    assert prognosis["metrics"]["prognosis_auc"] == pytest.approx(expected)
    assert "logrank_p" in prognosis["metrics"]
    tau = json.loads((tmp_path / "xmedgpt-demo/demo_kendall_tau/results.json").read_text())
    assert set(tau["metrics"]) >= {"kendall_tau", "kendall_tau_p", "token_f1"}
