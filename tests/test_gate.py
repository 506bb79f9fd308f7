"""regbench.gate and regbench.report.gates as a library: flags, gates files, decisions, rendering."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from regbench.errors import RegbenchError, SpecError
from regbench.gate import (
    Gate,
    GateReport,
    Run,
    evaluate_gates,
    find_runs,
    load_gates,
    parse_gate_flag,
    parse_significance,
    rate_gates,
)
from regbench.report.gates import gate_table, junit_xml, markdown_summary
from regbench.results import Results, write_results

SIGNATURE = "{key}|plugin:p|opt:1|bs:1000|rs:1234|regbench:0.1.0"


def results(task: str = "t", model: str = "m", **metrics: float) -> Results:
    """A results.json of one run; ``radcliq`` is lower-is-better."""
    return Results(
        task=task,
        model=model,
        n_samples=10,
        metrics=metrics,
        ci95={k: [v - 0.1, v + 0.1] for k, v in metrics.items()},
        higher_is_better={k: k != "radcliq" for k in metrics},
        signatures={k: SIGNATURE.format(key=k) for k in metrics},
    )


def stored(tmp_path: Path, name: str, res: Results, **changes: Any) -> Run:
    """The run written to ``tmp_path/name`` (no samples.jsonl: point comparisons only)."""
    res = res.model_copy(update=changes)
    write_results(tmp_path / name, res)
    return Run(res, tmp_path / name)


# ---------------------------------------------------------------- flags and files


@pytest.mark.parametrize(
    ("text", "task", "metric", "limit"),
    [
        ("grounded_rg:region_f1=0.5", "grounded_rg", "region_f1", 0.5),
        ("region_f1=.5", None, "region_f1", 0.5),
        (" region_f1 = 1e-2 ", None, "region_f1", 0.01),
        ("a:b:region_f1=0", "a:b", "region_f1", 0.0),  # the metric ends at the last colon
    ],
)
def test_a_gate_flag_reads_task_metric_and_value(text: str, task: str | None, metric: str, limit: float) -> None:
    gate = parse_gate_flag(text, flag="--fail-under", rule="fail_under")
    assert (gate.task, gate.metric, gate.limit, gate.rule) == (task, metric, limit, "fail_under")
    assert gate.origin == f"--fail-under {text}"


@pytest.mark.parametrize("text", ["region_f1", "=0.5", "task:=0.5", "region_f1=", "region_f1=inf", "x=1=2"])
def test_a_malformed_gate_flag_is_named(text: str) -> None:
    with pytest.raises(RegbenchError, match="--max-drop"):
        parse_gate_flag(text, flag="--max-drop", rule="max_drop")


def test_significance_levels() -> None:
    assert parse_significance("0.01") == 0.01 and parse_significance("off") is None
    assert parse_significance("OFF") is None
    for bad in ("0", "1", "-0.1", "five", ""):
        with pytest.raises(RegbenchError, match="--significance"):
            parse_significance(bad)


def test_a_gates_file_takes_the_commands_level_unless_an_entry_sets_its_own(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(
        "- {task: t, metric: a, min: 0.5}\n"
        "- {metric: a, max_drop: 0.1}\n"
        "- {metric: a, max_drop: 0.1, significance: 0.01}\n"
        "- {metric: a, max_drop: 0.1, significance: false}\n"
        "- {metric: a, max_drop: 0.1, significance: true}\n"
        "- {metric: radcliq, fail_under: 3}\n"
        "- {metric: error_rate, max: 0.1}\n"
    )
    gates = load_gates(path, alpha=0.2)
    assert [(g.rule, g.task, g.alpha) for g in gates][:5] == [
        ("min", "t", 0.2),
        ("max_drop", None, 0.2),
        ("max_drop", None, 0.01),
        ("max_drop", None, None),
        ("max_drop", None, 0.2),
    ]
    assert gates[5].rule == "fail_under" and gates[6].incomplete_run and gates[6].label == "max-error-rate"
    assert gates[2].origin == f"{path} [2]"
    assert load_gates(path, alpha=None)[1].alpha is None


def test_an_empty_gates_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(SpecError, match=r"expected a list of gates at the top level .* got nothing"):
        load_gates(path)


# ---------------------------------------------------------------- decisions


def test_thresholds_follow_the_direction(tmp_path: Path) -> None:
    run = stored(tmp_path, "run", results(acc=0.6, radcliq=2.0))
    gates = [
        Gate("acc", "fail_under", 0.6),  # exactly at the limit passes
        Gate("acc", "fail_under", 0.7),
        Gate("radcliq", "fail_under", 2.5),  # lower is better: at most 2.5
        Gate("radcliq", "fail_under", 1.5),
        Gate("radcliq", "min", 2.5),  # min and max are literal
        Gate("acc", "max", 0.5),
    ]
    report = evaluate_gates([run], gates)
    assert [r.passed for r in report.results] == [True, False, True, False, False, False]
    assert [r.bound for r in report.results] == ["min", "min", "max", "max", "min", "max"]
    assert report.results[3].reason == "fail-under: 2 > 1.5"
    assert report.results[1].delta == pytest.approx(-0.1) and report.results[1].ci95 == (0.5, 0.7)
    assert report.exit_code == 1


def test_a_drop_is_measured_in_the_metrics_direction_on_point_values(tmp_path: Path) -> None:
    base = stored(tmp_path, "base", results(acc=0.8, radcliq=2.0))
    gates = [Gate("acc", "max_drop", 0.05), Gate("radcliq", "max_drop", 0.3)]
    better = stored(tmp_path, "better", results(acc=0.9, radcliq=1.0))
    report = evaluate_gates([better], gates, [base])
    assert report.exit_code == 0 and [r.delta for r in report.results] == [pytest.approx(0.1), -1.0]
    worse = stored(tmp_path, "worse", results(acc=0.7, radcliq=2.5))
    report = evaluate_gates([worse], gates, [base])
    assert [r.passed for r in report.results] == [False, False]
    assert report.results[1].reason == "max-drop 0.3: drop 0.5 > 0.3"
    assert report.results[0].note == f"point values: no samples.jsonl in {base.directory} and {worse.directory}"
    assert report.results[0].baseline == 0.8 and report.results[0].baseline_ci95 == (pytest.approx(0.7), 0.9)


def test_a_baseline_is_comparable_across_bootstrap_settings_and_patch_versions(tmp_path: Path) -> None:
    base = stored(tmp_path, "base", results(acc=0.8))
    other = {"acc": "acc|plugin:p|opt:1|bs:50|rs:7|regbench:0.1.9"}
    run = stored(tmp_path, "run", results(acc=0.8), signatures=other)
    assert evaluate_gates([run], [Gate("acc", "max_drop", 0.0)], [base]).exit_code == 0
    for changed in ("acc|plugin:p|opt:2|bs:1000|rs:1234|regbench:0.1.0", "acc|plugin:p|opt:1|regbench:0.2.0"):
        run = stored(tmp_path, "run", results(acc=0.8), signatures={"acc": changed})
        with pytest.raises(RegbenchError, match="computed differently") as caught:
            evaluate_gates([run], [Gate("acc", "max_drop", 0.0)], [base])
        assert SIGNATURE.format(key="acc") in str(caught.value) and changed in str(caught.value)


def test_a_baseline_on_other_data_or_without_the_metric_is_refused(tmp_path: Path) -> None:
    base = stored(tmp_path, "base", results(acc=0.8), config={"data": {"sha256": "aa"}})
    run = stored(tmp_path, "run", results(acc=0.8, f1=0.5), config={"data": {"sha256": "bb"}})
    with pytest.raises(RegbenchError, match="another data file"):
        evaluate_gates([run], [Gate("acc", "max_drop", 0.1)], [base])
    with pytest.raises(RegbenchError, match="reports no 'f1' \\(it reports acc\\)"):
        evaluate_gates([run], [Gate("f1", "max_drop", 0.1)], [base])


def test_gates_without_a_task_apply_to_every_task_reporting_the_metric(tmp_path: Path) -> None:
    runs = [stored(tmp_path, "a", results("a", acc=0.5)), stored(tmp_path, "b", results("b", f1=0.5))]
    report = evaluate_gates(runs, [Gate("acc", "min", 0.1), *rate_gates(0.0, 0.5)])
    assert [(r.task, r.gate.metric) for r in report.results] == [
        ("a", "acc"),
        ("a", "error_rate"),
        ("a", "parse_failure_rate"),
        ("b", "error_rate"),
        ("b", "parse_failure_rate"),
    ]
    unknown = "x: Unknown metric 'acc'. Available: error_rate, f1, parse_failure_rate (task b)"
    with pytest.raises(RegbenchError, match=re.escape(unknown)):
        evaluate_gates(runs, [Gate("acc", "min", 0.1, task="b", origin="x")])


def test_an_incomplete_run_outranks_a_failed_quality_gate(tmp_path: Path) -> None:
    run = stored(tmp_path, "run", results(acc=0.5), n_errors=2, n_parse_failures=5)
    report = evaluate_gates([run], [Gate("acc", "min", 0.9), *rate_gates(0.1, 0.4)])
    assert [r.passed for r in report.results] == [False, False, False]
    assert report.exit_code == 3 and [r.gate.metric for r in report.incomplete] == ["error_rate"]
    assert report.results[1].value == 0.2 and report.results[1].note == "2 of 10 samples"
    assert evaluate_gates([run], rate_gates(0.2)).exit_code == 0
    assert GateReport().exit_code == 0


def test_find_runs_takes_directories_files_and_parents_and_skips_shards(tmp_path: Path) -> None:
    stored(tmp_path, "runs/m/a", results("a", acc=1.0))
    stored(tmp_path, "runs/m/b", results("b", acc=1.0))
    stored(tmp_path, "runs/m/b/shard-0-of-2", results("b", acc=1.0))
    assert [r.results.task for r in find_runs([tmp_path / "runs"], what="run")] == ["a", "b"]
    assert find_runs([tmp_path / "runs/m/a/results.json"], what="run")[0].directory == tmp_path / "runs/m/a"
    with pytest.raises(RegbenchError, match=r"--baseline .*empty: no results\.json in or under it"):
        (tmp_path / "empty").mkdir()
        find_runs([tmp_path / "empty"], what="--baseline")


# ---------------------------------------------------------------- rendering


def _report(tmp_path: Path) -> GateReport:
    base = stored(tmp_path, "base", results(acc=0.8))
    run = stored(tmp_path, "run", results(acc=0.6), n_errors=1)
    gates = [Gate("acc", "fail_under", 0.5, origin="--fail-under acc=0.5"), Gate("acc", "max_drop", 0.1)]
    return evaluate_gates([run], [*gates, *rate_gates()], [base])


def test_junit_has_a_suite_per_run_a_case_per_gate_and_the_numbers(tmp_path: Path) -> None:
    root = ET.fromstring(junit_xml(_report(tmp_path)))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "t" and suite.find("properties/property").get("value") == "m"  # type: ignore[union-attr]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["acc fail-under 0.5", "acc max-drop 0.1", "error_rate max-error-rate 0"]
    assert cases[0].find("failure") is None and "gate: --fail-under acc=0.5" in cases[0].findtext("system-out", "")
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "acc: max-drop 0.1: drop 0.2 > 0.1"
    assert "baseline: baseline 0.8000 [0.7000, 0.9000]" in (failure.text or "")
    assert "delta: -0.2000" in (failure.text or "")
    error = cases[2].find("error")
    assert error is not None and error.get("type") == "max-error-rate" and "0.1 > 0" in error.get("message", "")


def test_the_markdown_summary_is_one_table(tmp_path: Path) -> None:
    text = markdown_summary(_report(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "### ❌ regbench gates: run incomplete: 2 of 3 gates failed"
    assert lines[2] == "| | task | metric | value | threshold / baseline | Δ | p | decided by |"
    assert lines[4] == "| ✅ | t | acc | 0.6000 [0.5000, 0.7000] | ≥ 0.5 | +0.1000 |  | fail-under: 0.6 ≥ 0.5 |"
    assert lines[5].startswith(
        "| ❌ | t | acc | 0.6000 [0.5000, 0.7000] | baseline 0.8000 [0.7000, 0.9000] | -0.2000 |"
    )
    assert lines[6].startswith("| ❌ | t | error_rate ↓ | 0.1000 | ≤ 0 |")
    assert "Exit codes: 0 every gate passed" in text


def test_the_table_lists_every_gate(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(width=300, record=True)
    console.print(gate_table(_report(tmp_path)))
    text = console.export_text()
    assert "regbench gates: run incomplete: 2 of 3 gates failed" in text
    assert text.count("FAIL") == 2 and text.count("pass") == 1 and "A = baseline, B = this run" in text
