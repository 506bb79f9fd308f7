"""A gate report for people and for CI: a rich table, JUnit XML, and a Markdown summary.

All three show, per gate and run: the value (with its 95% interval), the threshold or the
baseline (with its interval), the difference, the paired test's p-value, pass or fail, and
the rule that decided. JUnit has one ``testsuite`` per run (model and task) and one
``testcase`` per gate; a failed quality gate is a ``failure``, an error rate over its limit an
``error`` (the run is incomplete), each with the numbers in its message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from regbench.gate import GateReport, GateResult

EXIT_CODES = (
    "0 every gate passed; 1 a quality gate failed (the results are still written); "
    "2 usage or input error; 3 the run is incomplete (model unreachable, error rate over --max-error-rate)"
)
COMPARED = (
    "Baseline gates compare as `regbench compare BASELINE RUN` does (A = baseline, B = this run): "
    "a paired bootstrap interval of the difference and a two-sided paired permutation p-value, "
    "over the samples both runs hold."
)


def _value(value: float | None, ci: tuple[float, float] | None = None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    text = f"{value:+.4f}" if signed else f"{value:.4f}"
    if ci is not None:
        text += f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if signed else f" [{ci[0]:.4f}, {ci[1]:.4f}]"
    return text


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _reference(result: GateResult) -> str:
    """The threshold (``≥ 0.5``) or the baseline's value with its interval."""
    if result.gate.rule == "max_drop":
        return "baseline " + _value(result.baseline, result.baseline_ci95)
    sign = "≥" if result.bound == "min" else "≤"
    return f"{sign} {result.gate.limit:g}"


def _where(result: GateResult, many_models: bool) -> str:
    return f"{result.model}/{result.task}" if many_models else result.task


def _many_models(report: GateReport) -> bool:
    return len({r.model for r in report.results}) > 1


def _metric(result: GateResult) -> str:
    return result.gate.metric + ("" if result.higher_is_better else " ↓")


def _status(report: GateReport) -> str:
    failed, total = len(report.failed), len(report.results)
    if report.incomplete:
        return f"run incomplete: {failed} of {total} gates failed"
    return f"{failed} of {total} gates failed" if failed else f"all {total} gates passed"


def gate_table(report: GateReport) -> Table:
    """Every gate's result as a rich table (↓ marks a lower-is-better metric)."""
    many = _many_models(report)
    table = Table(
        "",
        "task",
        "metric",
        "value [95% CI]",
        "threshold / baseline [95% CI]",
        "Δ [95% CI]",
        "p",
        "decided by",
        title=f"regbench gates: {_status(report)}",
        title_justify="left",
        caption=COMPARED if any(r.gate.rule == "max_drop" for r in report.results) else None,
        caption_justify="left",
    )
    for result in report.results:
        mark = "[green]pass[/]" if result.passed else "[bold red]FAIL[/]"
        # names and notes are data (a task name, an exception's text): never rich markup
        reason = escape(result.reason) + (f" [dim]({escape(result.note)})[/]" if result.note else "")
        table.add_row(
            mark,
            escape(_where(result, many)),
            escape(_metric(result)),
            _value(result.value, result.ci95),
            _reference(result),
            _value(result.delta, result.delta_ci95, signed=True),
            _p(result.p_value),
            reason,
        )
    return table


def junit_xml(report: GateReport) -> str:
    """JUnit XML: a testsuite per run, a testcase per gate; failures and errors carry the numbers."""
    runs: dict[tuple[str, str], list[GateResult]] = {}
    for result in report.results:
        runs.setdefault((result.model, result.task), []).append(result)
    root = ET.Element("testsuites", name="regbench gates")
    _counts(root, report.results)
    for (model, task), results in runs.items():
        suite = ET.SubElement(root, "testsuite", name=task)
        _counts(suite, results)
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="model", value=model)
        for result in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"regbench.{model}.{task}",
                name=f"{result.gate.metric} {result.gate.label} {result.gate.limit:g}",
                time="0",
            )
            if not result.passed:
                kind = "error" if result.gate.incomplete_run else "failure"
                message = f"{result.gate.metric}: {result.reason}"
                problem = ET.SubElement(case, kind, message=message, type=result.gate.label)
                problem.text = _details(result)
            else:
                ET.SubElement(case, "system-out").text = _details(result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _counts(element: ET.Element, results: Sequence[GateResult]) -> None:
    failed = [r for r in results if not r.passed]
    errors = sum(r.gate.incomplete_run for r in failed)
    element.set("tests", str(len(results)))
    element.set("failures", str(len(failed) - errors))
    element.set("errors", str(errors))
    element.set("skipped", "0")
    element.set("time", "0")


def _details(result: GateResult) -> str:
    """Every number of one gate, one per line (the body of a JUnit testcase)."""
    lines = [f"{result.model} · {result.task} · {_metric(result)}: {result.reason}"]
    lines.append(f"value: {_value(result.value, result.ci95)}")
    lines.append(f"{'baseline' if result.gate.rule == 'max_drop' else 'threshold'}: {_reference(result)}")
    if result.delta is not None:
        lines.append(f"delta: {_value(result.delta, result.delta_ci95, signed=True)}")
    if result.p_value is not None:
        lines.append(f"p-value: {_p(result.p_value)} (alpha {result.gate.alpha:g})")
    if result.note:
        lines.append(f"note: {result.note}")
    lines.append(f"gate: {result.gate.origin}")
    return "\n".join(lines)


def markdown_summary(report: GateReport) -> str:
    """A short Markdown table for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    many = _many_models(report)
    icon = "✅" if not report.failed else "❌"
    lines = [
        f"### {icon} regbench gates: {_status(report)}",
        "",
        "| | task | metric | value | threshold / baseline | Δ | p | decided by |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for result in report.results:
        cells = [
            "✅" if result.passed else "❌",
            _where(result, many),
            _metric(result),
            _value(result.value, result.ci95),
            _reference(result),
            _value(result.delta, result.delta_ci95, signed=True),
            _p(result.p_value),
            result.reason + (f" ({result.note})" if result.note else ""),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    if any(r.gate.rule == "max_drop" for r in report.results):
        lines += [COMPARED, ""]
    lines.append(f"Exit codes: {EXIT_CODES}.")
    return "\n".join(lines) + "\n"
