"""Quality gates end to end: `regbench score`, `run` and `gate` on bundled tasks with recorded outputs.

Exit codes: 0 every gate passed, 1 a quality gate failed (results still written), 2 usage or
input error, 3 the run is incomplete.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from tests.conftest import REPO, write_jsonl

cli = CliRunner()
RECORDED = REPO / "models" / "recorded"
VQA_DATA = REPO / "tasks" / "vqa" / "data" / "demo_vqa_en.jsonl"


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = cli.invoke(app, [str(a) for a in args], env=env)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text, text
    return result.exit_code, " ".join(text.replace("│", " ").split())


def recorded(task: str, model: str = "medrega") -> Path:
    return RECORDED / model / f"{task}.jsonl"


def predictions(path: Path, outputs: dict[str, str]) -> Path:
    return write_jsonl(path, [{"id": k, "output": v} for k, v in outputs.items()])


def vqa_outputs(kind: str) -> dict[str, str]:
    """demo_vqa_en outputs: every answer right ("perfect"), every answer wrong, or the recorded ones."""
    if kind == "recorded":
        return {r["id"]: r["output"] for r in map(json.loads, recorded("demo_vqa_en").read_text().splitlines())}
    rows = [json.loads(line) for line in VQA_DATA.read_text().splitlines()]
    return {r["id"]: r["answer"] if kind == "perfect" else "maybe" for r in rows}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline directory as a repository would keep it: runs of demo_vqa_en (perfect answers,
    the recorded ones) scored once."""
    root = tmp_path_factory.mktemp("baseline")
    for kind in ("perfect", "recorded"):
        preds = predictions(root / f"{kind}.jsonl", vqa_outputs(kind))
        code, text = invoke("score", "--task", "demo_vqa_en", "-p", preds, "-o", root / "runs")
        assert code == 0, text
    return root / "runs"


def score(tmp_path: Path, outputs: dict[str, str] | Path, *gates: str | Path, task: str = "demo_vqa_en"):
    preds = outputs if isinstance(outputs, Path) else predictions(tmp_path / "new.jsonl", outputs)
    return invoke("score", "--task", task, "-p", preds, "-o", tmp_path / "out", "--bootstrap", "100", *gates)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {case.get("name", ""): case for case in root.iter("testcase")}


# ---------------------------------------------------------------- thresholds


def test_a_passing_threshold_exits_0(tmp_path: Path) -> None:
    code, text = score(
        tmp_path, recorded("demo_vqa_en"), "--fail-under", "exact_match=0.5", "--fail-under", "demo_vqa_en:token_f1=0.7"
    )
    assert code == 0, text
    assert "regbench gates: all 3 gates passed" in text and "fail-under: 0.5 ≥ 0.5" in text


def test_a_failing_threshold_exits_1_and_still_writes_results(tmp_path: Path) -> None:
    junit, summary = tmp_path / "gates.xml", tmp_path / "gates.md"
    code, text = score(
        tmp_path,
        recorded("demo_vqa_en"),
        "--fail-under",
        "demo_vqa_en:exact_match=0.6",
        "--fail-under",
        "token_f1=0.7",
        "--junit",
        junit,
        "--summary",
        summary,
    )
    assert code == 1, text
    assert "FAIL demo_vqa_en exact_match 0.5000" in text and "fail-under: 0.5 < 0.6" in text
    results = json.loads((tmp_path / "out" / "demo_vqa_en" / "demo_vqa_en" / "results.json").read_text())
    assert results["metrics"]["exact_match"] == 0.5
    failure = junit_cases(junit)["exact_match fail-under 0.6"].find("failure")
    assert failure is not None and failure.get("message") == "exact_match: fail-under: 0.5 < 0.6"
    assert "value: 0.5000 [" in (failure.text or "") and "gate: --fail-under demo_vqa_en:exact_match=0.6" in (
        failure.text or ""
    )
    assert junit_cases(junit)["token_f1 fail-under 0.7"].find("failure") is None
    lines = summary.read_text().splitlines()
    assert lines[0] == "### ❌ regbench gates: 1 of 3 gates failed"
    assert "| ❌ | demo_vqa_en | exact_match | 0.5000 [" in summary.read_text()


def test_lower_is_better_metrics_fail_above_the_value(tmp_path: Path) -> None:
    # box_regression's giou_loss (1 - GIoU) is lower-is-better: 0.0476 on the recorded VividMed outputs
    preds = recorded("grounded_phrases_vividmed", "vividmed")
    task = "grounded_phrases_vividmed"
    code, text = score(tmp_path, preds, "--fail-under", "giou_loss=0.1", "--fail-under", "giou=0.9", task=task)
    assert code == 0 and "fail-under: 0.04762 ≤ 0.1" in text and "giou_loss ↓" in text, text
    code, text = score(tmp_path, preds, "--fail-under", f"{task}:giou_loss=0.04", task=task)
    assert code == 1 and "fail-under: 0.04762 > 0.04" in text, text
    # min and max in a gates file are literal bounds, whatever the direction
    gates = tmp_path / "gates.yaml"
    gates.write_text("- {metric: giou_loss, min: 0.04}\n- {metric: l1, max: 0.001}\n")
    code, text = score(tmp_path, preds, "--gates", gates, task=task)
    assert code == 1 and "min: 0.04762 ≥ 0.04" in text and "max: 0.004167 > 0.001" in text, text


def test_a_parse_failure_rate_over_its_limit_fails(tmp_path: Path) -> None:
    outputs = {**vqa_outputs("recorded"), "vqa1": "", "vqa2": ""}  # empty answers do not parse
    code, text = score(tmp_path, outputs, "--max-parse-failure-rate", "0.25")
    assert code == 1 and "max-parse-failure-rate: 0.3333 > 0.25 (2 of 6 samples)" in text, text
    assert score(tmp_path, outputs, "--max-parse-failure-rate", "0.5")[0] == 0


# ---------------------------------------------------------------- baselines


def p_value_of(junit: Path, name: str) -> float:
    details = junit_cases(junit)[name]
    text = "".join(details.itertext())
    return float(re.search(r"p-value: ([0-9.e-]+)", text).group(1))  # type: ignore[union-attr]


def test_a_large_regression_against_a_stored_baseline_exits_1_with_p_below_alpha(tmp_path: Path, stored: Path) -> None:
    junit = tmp_path / "gates.xml"
    baseline = stored / "perfect" / "demo_vqa_en"
    code, text = score(
        tmp_path, vqa_outputs("wrong"), "--baseline", baseline, "--max-drop", "exact_match=0.1", "--junit", junit
    )
    assert code == 1, text
    assert "drop 1 > 0.1, p = 0.031 < 0.05 (significant)" in text  # 6 samples all worse: 2/64 sign patterns
    assert "baseline 1.0000 [1.0000, 1.0000]" in text and "-1.0000 [-1.0000, -1.0000]" in text
    assert p_value_of(junit, "exact_match max-drop 0.1") < 0.05
    assert (tmp_path / "out" / "new" / "demo_vqa_en" / "results.json").is_file()


def test_a_small_noisy_difference_passes_when_tested_and_fails_on_point_values(tmp_path: Path, stored: Path) -> None:
    flipped = {**vqa_outputs("recorded"), "vqa1": "No"}  # the same model, one closed answer flipped
    gate = ["--baseline", stored / "recorded" / "demo_vqa_en" / "results.json", "--max-drop", "exact_match=0.05"]
    code, text = score(tmp_path, flipped, *gate, "--significance", "0.05")
    assert code == 0, text
    assert "drop 0.1667 > 0.05, p = 1 ≥ 0.05 (not significant)" in text
    code, text = score(tmp_path, flipped, *gate, "--significance", "off")
    assert code == 1 and "drop 0.1667 > 0.05 (point values, significance off)" in text, text


def test_a_drop_within_the_limit_and_an_improvement_pass(tmp_path: Path, stored: Path) -> None:
    code, text = score(
        tmp_path, vqa_outputs("perfect"), "--baseline", stored, "--max-drop", "demo_vqa_en:exact_match=0"
    )
    # the perfect run is the stored baseline of its own name: both stored runs are of demo_vqa_en
    assert code == 2 and "two baselines of task 'demo_vqa_en'" in text, text
    code, text = score(
        tmp_path, vqa_outputs("perfect"), "--baseline", stored / "recorded", "--max-drop", "exact_match=0"
    )
    assert code == 0 and "max-drop 0: drop 0 ≤ 0" in text, text


def test_a_worse_lower_is_better_metric_is_a_drop(tmp_path: Path) -> None:
    task = "grounded_phrases_vividmed"
    base = recorded(task, "vividmed")
    code, text = invoke("score", "--task", task, "-p", base, "-o", tmp_path / "base")
    assert code == 0, text
    lines = base.read_text().replace("0.1, 0.5, 0.4, 0.8", "0.15, 0.55, 0.45, 0.85")  # vm1's box moves
    worse = tmp_path / "worse.jsonl"
    worse.write_text(lines)
    gate = ["--baseline", tmp_path / "base", "--max-drop", "giou_loss=0.01", "--significance", "off"]
    code, text = score(tmp_path, worse, *gate, task=task)
    assert code == 1 and "giou_loss ↓" in text and re.search(r"drop 0\.\d+ > 0\.01", text), text
    code, text = invoke("score", "--task", task, "-p", worse, "-o", tmp_path / "worse-base")
    assert code == 0
    # the other way round the loss went down: an improvement, not a drop
    gate[1] = tmp_path / "worse-base"
    code, text = score(tmp_path, base, *gate, task=task)
    assert code == 0 and "max-drop 0.01: drop 0 ≤ 0.01" in text, text


def test_a_run_on_a_subset_is_compared_on_the_shared_samples(tmp_path: Path, stored: Path) -> None:
    preds = predictions(tmp_path / "p.jsonl", vqa_outputs("recorded"))
    gate = ["--baseline", stored / "recorded", "--max-drop", "exact_match=0.1"]
    code, text = invoke("score", "--task", "demo_vqa_en", "-p", preds, "-o", tmp_path / "out", "--limit", "3", *gate)
    assert code == 0 and "over the 3 shared samples (A has 6, B 3)" in text, text
    assert "A = baseline, B = this run" in text


def test_a_gates_file_and_flags_combine(tmp_path: Path, stored: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        "# kept under version control\n"
        "- {task: demo_vqa_en, metric: exact_match, min: 0.3}\n"
        "- {metric: token_f1, max_drop: 0.05, significance: false}\n"
        "- {metric: bleu1, max_drop: 0.05}\n"
        "- {metric: parse_failure_rate, max: 0}\n"
    )
    flipped = {**vqa_outputs("recorded"), "vqa1": "No"}
    code, text = score(
        tmp_path, flipped, "--gates", gates, "--baseline", stored / "recorded", "--fail-under", "open_recall=0.8"
    )
    assert code == 1, text  # token_f1 dropped by 1/6 on point values
    assert "regbench gates: 1 of 6 gates failed" in text
    assert "FAIL demo_vqa_en token_f1" in text and "(point values, significance off)" in text
    assert "pass demo_vqa_en bleu1" in text and "(not significant)" in text
    assert "max-parse-failure-rate: 0 ≤ 0" in text and "fail-under: 0.8333 ≥ 0.8" in text


def test_the_summary_is_appended_to_the_github_step_summary(tmp_path: Path) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    code, _ = invoke(
        "score",
        "--task",
        "demo_vqa_en",
        "-p",
        recorded("demo_vqa_en"),
        "-o",
        tmp_path / "out",
        "--fail-under",
        "exact_match=0.9",
        "--summary",
        tmp_path / "gates.md",
        env={"GITHUB_STEP_SUMMARY": str(step)},
    )
    assert code == 1
    text = step.read_text()
    assert text == "earlier step\n" + (tmp_path / "gates.md").read_text()
    assert text.startswith("earlier step\n### ❌ regbench gates: 1 of 2 gates failed\n")
    assert "| ❌ | demo_vqa_en | exact_match | 0.5000 [" in text and "| fail-under: 0.5 < 0.9 |" in text


# ---------------------------------------------------------------- incomplete runs


def test_an_incomplete_run_exits_3(tmp_path: Path) -> None:
    outputs = dict(list(vqa_outputs("recorded").items())[:4])  # two samples have no prediction
    junit = tmp_path / "gates.xml"
    code, text = score(tmp_path, outputs, "--fail-under", "exact_match=0.9", "--junit", junit)
    assert code == 3, text  # incomplete outranks the failed quality gate
    assert "samples have no prediction (demo_vqa_en: 2 of 6 samples; over --max-error-rate 0)" in text
    assert "regbench gates: run incomplete: 2 of 2 gates failed" in text
    error = junit_cases(junit)["error_rate max-error-rate 0"].find("error")
    assert error is not None and error.get("message") == "error_rate: max-error-rate: 0.3333 > 0"
    code, text = score(tmp_path, outputs, "--max-error-rate", "0.4")
    assert code == 0 and "note: samples have no prediction (demo_vqa_en: 2 of 6 samples), within" in text, text


def test_a_model_that_cannot_be_reached_exits_3(tmp_path: Path) -> None:
    code, text = invoke(
        "run",
        "--model",
        "qwen25-vl-7b",
        "--task",
        "demo_vqa_en",
        "-o",
        tmp_path,
        "--fail-under",
        "exact_match=0.5",
        env={"QWEN_URL": "http://127.0.0.1:9/v1"},
    )
    assert code == 3 and "no OpenAI-compatible server answers" in text, text


# ---------------------------------------------------------------- bad input: exit 2, one paragraph


def _other_signature_baseline(tmp_path: Path) -> Path:
    """A demo_vqa_en run whose vqa plugin had another option (so its numbers are not comparable)."""
    task = tmp_path / "other" / "demo_vqa_en.yaml"
    task.parent.mkdir()
    task.write_text(
        f"task: demo_vqa_en\nfamily: vqa\ndataset: {{path: {VQA_DATA}}}\n"
        "metrics: [{name: vqa, open_threshold: 0.5}]\n"
    )
    code, text = invoke("score", "--task", task, "-p", recorded("demo_vqa_en"), "-o", tmp_path / "other-runs")
    assert code == 0, text
    return tmp_path / "other-runs"


BAD_YAML = {
    "not-a-list.yaml": ("metric: exact_match\nmin: 0.5\n", "not-a-list.yaml: expected a list of gates at the top"),
    "two-rules.yaml": (
        "- {metric: exact_match, min: 0.5, max: 0.9}\n",
        "two-rules.yaml: [0]: give exactly one of min, max, fail_under, max_drop (got min and max)",
    ),
    "unknown-field.yaml": ("- {metric: exact_match, minimum: 0.5}\n", "unknown-field.yaml: [0].minimum: unknown field"),
    "not-a-number.yaml": (
        "- {metric: exact_match, min: 0.5}\n- {metric: token_f1, min: high}\n",
        "not-a-number.yaml: [1].min: input should be a valid number",
    ),
    "negative-drop.yaml": (
        "- {metric: exact_match, max_drop: -0.1}\n",
        "negative-drop.yaml: [0].max_drop: input should be greater than or equal to 0",
    ),
    "significance.yaml": (
        "- {metric: exact_match, min: 0.5, significance: 0.01}\n",
        "significance.yaml: [0].significance: applies to max_drop only",
    ),
    "bad-alpha.yaml": (
        "- {metric: exact_match, max_drop: 0.1, significance: 5}\n",
        "bad-alpha.yaml: [0].significance",
    ),
    "syntax.yaml": ("- {metric: exact_match, min: 0.5\n", "syntax.yaml: line 2, column 1: not valid YAML"),
    "no-metric.yaml": ("- {task: demo_vqa_en, min: 0.5}\n", "no-metric.yaml: [0].metric: required field is missing"),
    "rate.yaml": ("- {metric: error_rate, min: 0.5}\n", "rate.yaml: [0]: error_rate takes a maximum only"),
    "metric-typo.yaml": (
        "- {metric: exact_macth, min: 0.5}\n",
        "metric-typo.yaml [0]: Unknown metric 'exact_macth'. Did you mean: exact_match?",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_YAML))
def test_a_bad_gates_file_exits_2_naming_file_and_field(tmp_path: Path, name: str) -> None:
    body, message = BAD_YAML[name]
    (tmp_path / name).write_text(body)
    code, text = score(tmp_path, recorded("demo_vqa_en"), "--gates", tmp_path / name)
    assert code == 2 and message in text, text
    assert not (tmp_path / "out").exists()  # stopped before scoring


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fail-under", "exact_match"], "--fail-under: expected [TASK:]METRIC=VALUE"),
        (["--fail-under", "exact_match=high"], "--fail-under exact_match=high: VALUE must be a number, got 'high'"),
        (["--fail-under", "exact_match=nan"], "VALUE must be a number"),
        (["--max-drop", "exact_match=-1", "--baseline", "."], "DELTA is how much worse the metric may get"),
        (["--fail-under", "exact_macth=0.5"], "Unknown metric 'exact_macth'. Did you mean: exact_match?"),
        (["--fail-under", "demo_vqa:exact_match=0.5"], "Unknown task 'demo_vqa'. Did you mean: demo_vqa_en?"),
        (["--fail-under", "grounded_rg:region_f1=0.5"], "Unknown task 'grounded_rg'"),
        (["--significance", "0.5x"], "--significance: expected a level in (0, 1)"),
        (["--significance", "1"], "--significance: expected a level in (0, 1)"),
        (["--max-error-rate", "1.5"], "Invalid value for '--max-error-rate'"),
        (["--max-parse-failure-rate", "-1"], "Invalid value for '--max-parse-failure-rate'"),
        (["--max-drop", "exact_match=0.1"], "--max-drop exact_match=0.1: no --baseline for any task reporting"),
        (["--baseline", "nowhere", "--max-drop", "exact_match=0.1"], "--baseline nowhere: no such file or directory"),
        (["--gates", "nowhere.yaml"], "--gates nowhere.yaml: file not found"),
    ],
)
def test_a_bad_gate_flag_exits_2_naming_the_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    code, text = score(tmp_path, recorded("demo_vqa_en"), *flags)
    assert code == 2 and message in text, text
    assert not (tmp_path / "out").exists()


def test_a_baseline_without_a_gate_or_of_another_task_exits_2(tmp_path: Path, stored: Path) -> None:
    code, text = score(tmp_path, recorded("demo_vqa_en"), "--baseline", stored / "recorded")
    assert code == 2 and "--baseline is given but no gate compares with it" in text, text
    other = tmp_path / "zh"
    assert invoke("score", "--task", "demo_vqa_zh", "-p", recorded("demo_vqa_zh"), "-o", other)[0] == 0
    code, text = score(tmp_path, recorded("demo_vqa_en"), "--baseline", other, "--max-drop", "exact_match=0.1")
    assert code == 2 and "no --baseline for any task reporting exact_match (baselines given for: demo_vqa_zh)" in text


def test_a_baseline_computed_differently_exits_2_naming_both_signatures(tmp_path: Path) -> None:
    other = _other_signature_baseline(tmp_path)
    code, text = score(tmp_path, recorded("demo_vqa_en"), "--baseline", other, "--max-drop", "open_accuracy=0.1")
    assert code == 2, text
    assert "demo_vqa_en open_accuracy was computed differently" in text
    baseline = r"Baseline: open_accuracy\|plugin:vqa\|\S*open_threshold:0\.5\|\S+; this run: open_accuracy\|"
    assert re.search(baseline, text)
    assert "open_threshold:0.75|" in text
    assert (tmp_path / "out" / "demo_vqa_en" / "demo_vqa_en" / "results.json").is_file()  # known after scoring


def test_a_baseline_that_is_not_a_results_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"task": "demo_vqa_en"}')
    code, text = score(tmp_path, recorded("demo_vqa_en"), "--baseline", tmp_path, "--max-drop", "exact_match=0.1")
    assert code == 2 and "--baseline: " in text and "not a regbench results.json" in text, text


# ---------------------------------------------------------------- regbench gate


def test_gate_gates_stored_runs_without_scoring_again(tmp_path: Path, stored: Path) -> None:
    perfect = stored / "perfect" / "demo_vqa_en"
    before = (perfect / "results.json").read_text()
    code, text = invoke("gate", perfect, "--fail-under", "exact_match=1")
    assert code == 0 and "all 2 gates passed" in text, text
    # several runs: a directory holding them; each row names model and task
    code, text = invoke("gate", stored, "--fail-under", "exact_match=0.6", "--summary", tmp_path / "s.md")
    assert code == 1 and "FAIL recorded/demo_vqa_en exact_match" in text and "pass perfect/demo_vqa_en" in text
    assert "| ❌ | recorded/demo_vqa_en | exact_match |" in (tmp_path / "s.md").read_text()
    code, text = invoke(
        "gate", stored / "recorded", "--baseline", perfect / "results.json", "--max-drop", "exact_match=0.1"
    )
    assert code == 0 and re.search(r"p = 0\.2\d* ≥ 0\.05 \(not significant\)", text), text  # 3 of 6 worse: 16/64
    assert (perfect / "results.json").read_text() == before


def test_gate_on_a_run_with_errors_exits_3(tmp_path: Path) -> None:
    outputs = dict(list(vqa_outputs("recorded").items())[:5])
    assert score(tmp_path, outputs)[0] == 3
    code, text = invoke("gate", tmp_path / "out")
    assert code == 3 and "samples ended in an error (demo_vqa_en: 1 of 6 samples; over" in text, text


def test_gate_with_no_runs_or_a_missing_path_exits_2(tmp_path: Path) -> None:
    code, text = invoke("gate", tmp_path)
    assert code == 2 and "no results.json in or under it" in text, text
    code, text = invoke("gate", tmp_path / "nope")
    assert code == 2 and "no such file or directory" in text, text


def test_help_states_the_exit_codes_and_the_direction() -> None:
    for command in ("run", "score", "gate"):
        code, text = invoke(command, "--help")
        assert code == 0
        assert "Exit codes: 0 every gate passed; 1 a quality gate failed" in text
        assert "3 the run is incomplete" in text and "--fail-under" in text
    code, text = invoke("score", "--help")
    assert "for a lower-is-better metric" in text and "when it is above" in text


def test_the_junit_file_reads_with_junitparser(tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    junit = tmp_path / "gates.xml"
    code, _ = score(
        tmp_path,
        recorded("demo_vqa_en"),
        "--fail-under",
        "exact_match=0.6",
        "--fail-under",
        "token_f1=0.7",
        "--junit",
        junit,
    )
    assert code == 1
    xml = junitparser.JUnitXml.fromfile(str(junit))
    (suite,) = list(xml)
    assert suite.name == "demo_vqa_en" and suite.tests == 3 and suite.failures == 1 and suite.errors == 0
    cases = {case.name: case for case in suite}
    (failure,) = cases["exact_match fail-under 0.6"].result
    assert isinstance(failure, junitparser.Failure) and failure.message == "exact_match: fail-under: 0.5 < 0.6"
    assert "value: 0.5000" in failure.text and cases["token_f1 fail-under 0.7"].is_passed


def test_a_baseline_the_run_would_overwrite_is_refused_before_the_run(tmp_path: Path) -> None:
    preds = predictions(tmp_path / "p.jsonl", vqa_outputs("perfect"))
    assert score(tmp_path, preds)[0] == 0
    baseline = tmp_path / "out" / "p" / "demo_vqa_en"
    before = (baseline / "samples.jsonl").read_text()
    code, text = score(tmp_path, preds, "--baseline", baseline, "--max-drop", "exact_match=0")
    assert code == 2 and "this run writes its results there; copy the baseline elsewhere" in text, text
    assert (baseline / "samples.jsonl").read_text() == before
