"""regbench compare: paired bootstrap and permutation test between two runs of one task."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from regbench.errors import RegbenchError
from regbench.metrics.base import Metric, Stats, weighted_means
from regbench.models import build_adapter
from regbench.runner import RunOptions, evaluate
from regbench.spec import ModelSpec, TaskSpec, load_spec
from regbench.stats import compare_runs, paired_mean_test, paired_test
from tests.conftest import write_jsonl

N = 40


def run(tmp_path: Path, name: str, outputs: list[str], metrics: str = "[vqa]") -> Path:
    write_jsonl(
        tmp_path / "data.jsonl",
        [{"id": f"s{i}", "question": "q", "answer": f"word{i} right lobe", "answer_type": "open"} for i in range(N)],
    )
    (tmp_path / "task.yaml").write_text(f"task: t\nfamily: vqa\ndataset: {{path: data.jsonl}}\nmetrics: {metrics}\n")
    write_jsonl(tmp_path / f"{name}.jsonl", [{"id": f"s{i}", "output": o} for i, o in enumerate(outputs)])
    model = ModelSpec(model=name, adapter="replay", path=str(tmp_path / f"{name}.jsonl"))
    task = load_spec(tmp_path / "task.yaml", TaskSpec)
    asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=tmp_path / "out", bootstrap_trials=50)))
    return tmp_path / "out" / name / "t"


def test_identical_runs_differ_by_nothing(tmp_path: Path) -> None:
    outputs = [f"word{i} right" if i % 2 else "left" for i in range(N)]
    rows = {r.key: r for r in compare_runs(run(tmp_path, "a", outputs), run(tmp_path, "b", outputs), trials=200)}
    assert rows["token_recall"].difference == 0.0 and rows["token_recall"].p_value == 1.0
    assert rows["token_recall"].ci95 == (0.0, 0.0)


def test_a_better_run_is_significantly_better(tmp_path: Path) -> None:
    worse = [f"word{i}" if i % 4 == 0 else "nothing" for i in range(N)]
    better = [f"word{i} right lobe" for i in range(N)]
    rows = {r.key: r for r in compare_runs(run(tmp_path, "a", worse), run(tmp_path, "b", better), trials=500)}
    recall = rows["token_recall"]
    assert recall.difference == pytest.approx(1.0 - 0.25 / 3 * 1)  # a: 1/3 of tokens on every 4th sample
    assert recall.ci95 is not None and recall.ci95[0] > 0 and recall.p_value is not None and recall.p_value < 0.01


def test_corpus_metric_uses_the_plugin_finalize(tmp_path: Path) -> None:
    metrics = "[{name: nlg, meteor: false, tokenizer: whitespace}]"
    a = run(tmp_path, "a", [f"word{i} lobe" for i in range(N)], metrics)
    b = run(tmp_path, "b", [f"word{i} right lobe" for i in range(N)], metrics)
    rows = {r.key: r for r in compare_runs(a, b, trials=50)}
    expected = json.loads((b / "results.json").read_text())["metrics"]["bleu1"]
    expected -= json.loads((a / "results.json").read_text())["metrics"]["bleu1"]
    assert rows["bleu1"].difference == pytest.approx(expected)
    assert rows["bleu1"].ci95 is not None and rows["bleu1"].note == ""


def test_different_signatures_are_not_compared(tmp_path: Path) -> None:
    a = run(tmp_path / "x", "a", ["yes"] * N)
    b = run(tmp_path / "y", "b", ["yes"] * N, "[{name: vqa, open_threshold: 0.5}]")
    rows = {r.key: r for r in compare_runs(a, b, trials=20)}
    assert "signatures differ" in rows["open_accuracy"].note and rows["open_accuracy"].p_value is None


def test_different_tasks_are_refused(tmp_path: Path) -> None:
    a = run(tmp_path / "x", "a", ["yes"] * N)
    results = json.loads((a / "results.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({**results, "task": "another"}))
    (other / "samples.jsonl").write_text((a / "samples.jsonl").read_text())
    with pytest.raises(RegbenchError, match="different tasks"):
        compare_runs(a, other)


def test_runs_with_different_samples_compare_over_the_shared_ones(tmp_path: Path) -> None:
    a = run(tmp_path / "x", "a", [f"word{i} right lobe" for i in range(N)])
    b = run(tmp_path / "y", "b", [f"word{i}" if i < 10 else "nothing" for i in range(N)])
    kept = [line for line in (a / "samples.jsonl").read_text().splitlines() if json.loads(line)["id"] in {"s0", "s1"}]
    (a / "samples.jsonl").write_text("\n".join(kept) + "\n")  # run A now holds 2 samples: both perfect
    rows = {r.key: r for r in compare_runs(a / "results.json", b, trials=50)}  # a results.json path is fine
    recall = rows["token_recall"]
    assert (recall.a, recall.b) == (1.0, pytest.approx(1 / 3))  # both over s0 and s1, not A's 40
    assert recall.difference == pytest.approx(1 / 3 - 1.0) and recall.n == 2
    assert "over the 2 shared samples (A has 2, B 40)" in recall.note


def test_split_dependent_per_sample_values_are_recomputed_on_the_shared_samples(tmp_path: Path) -> None:
    # per-sample CIDEr-D (agg: sample) depends on the split's document frequencies: a --limit run
    # stored other values for the same outputs; over the shared samples they must agree again
    words = ["heart", "normal", "effusion", "small", "left", "clear"]
    answers = [" ".join(words[(i + k) % 6] for k in range(1 + i % 4)) for i in range(12)]
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"s{i}", "answer": a} for i, a in enumerate(answers)])
    write_jsonl(tmp_path / "p.jsonl", [{"id": f"s{i}", "output": f"{a} lungs"} for i, a in enumerate(answers)])
    (tmp_path / "task.yaml").write_text(
        "task: t\nfamily: report\ndataset: {path: data.jsonl}\n"
        "metrics: [{name: nlg, agg: sample, meteor: false, tokenizer: whitespace}]\n"
    )
    task = load_spec(tmp_path / "task.yaml", TaskSpec)
    for name, limit in (("full", None), ("limited", 3)):
        model = ModelSpec(model=name, adapter="replay", path=str(tmp_path / "p.jsonl"))
        options = RunOptions(output=tmp_path / "out", bootstrap_trials=20, limit=limit)
        asyncio.run(evaluate(task, model, build_adapter(model), options))
    full, limited = tmp_path / "out" / "full" / "t", tmp_path / "out" / "limited" / "t"
    stored = [
        [json.loads(x)["scores"]["cider"] for x in (d / "samples.jsonl").read_text().splitlines()[:3]]
        for d in (full, limited)
    ]
    assert stored[0] != stored[1]  # the same outputs, other document frequencies
    rows = {r.key: r for r in compare_runs(full, limited, trials=20)}
    assert rows["cider"].difference == 0.0 and rows["bleu1"].difference == 0.0
    assert "over the 3 shared samples" in rows["cider"].note


class CorpusMean(Metric):
    """A mean that declares itself a corpus metric: paired_test falls back to finalize per resample."""

    name = "corpus_mean"
    keys = {"v": True}
    aggregation = "corpus"

    def stats(self, parsed: object, sample: object) -> Stats:  # type: ignore[override]
        raise NotImplementedError

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        return {"v": float(np.mean([r["v"] for r in stats]))}


class WeightedMean(CorpusMean):
    """The same mean, with draw-count resampling."""

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray]:
        return {"v": weighted_means(np.array([[r["v"]] for r in stats]), weights)[:, 0]}


def test_vectorised_and_generic_paired_tests_agree() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(60), rng.random(60) + 0.1
    rows_a, rows_b = [{"v": x} for x in a], [{"v": y} for y in b]
    fast_ci, fast_p = paired_mean_test(a, b, trials=2000, seed=1)
    slow_ci, slow_p = paired_test(CorpusMean(), rows_a, rows_b, trials=2000, seed=1)["v"]
    weighted_ci, weighted_p = paired_test(WeightedMean(), rows_a, rows_b, trials=2000, seed=1)["v"]
    assert slow_ci is not None and weighted_ci is not None and fast_ci is not None
    # the same draws: finalize per resample and draw counts give the same numbers
    assert weighted_ci == pytest.approx(slow_ci, abs=1e-12) and weighted_p == slow_p
    assert fast_ci == pytest.approx(slow_ci, abs=0.03) and fast_p == pytest.approx(slow_p, abs=0.03)


def test_only_the_keys_asked_for_and_patch_versions_on_request(tmp_path: Path) -> None:
    outputs = [f"word{i} right" for i in range(N)]
    a, b = run(tmp_path, "a", outputs), run(tmp_path, "b", outputs)
    assert [r.key for r in compare_runs(a, b, trials=20, keys={"token_recall"})] == ["token_recall"]
    results = json.loads((b / "results.json").read_text())
    results["signatures"] = {k: v.replace("regbench:0.1.0", "regbench:0.1.7") for k, v in results["signatures"].items()}
    (b / "results.json").write_text(json.dumps(results))
    (row,) = compare_runs(a, b, trials=20, keys={"token_recall"})
    assert "signatures differ" in row.note and row.p_value is None
    (row,) = compare_runs(a, b, trials=20, keys={"token_recall"}, patch=False)
    assert row.note == "" and row.difference == 0.0 and row.p_value == 1.0
