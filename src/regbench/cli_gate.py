"""Quality gates on the command line: the flags ``run``, ``score`` and ``gate`` share, and ``regbench gate``.

The flags are read and checked before a run starts (a typo in a gate does not cost a run),
and applied to its results after it: a table of every gate, JUnit XML and a Markdown
summary when asked, and the exit code (0 passed, 1 a quality gate failed, 2 usage or input
error, 3 the run is incomplete). The logic is :mod:`regbench.gate`; the rendering is
:mod:`regbench.report.gates`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from regbench.console import err, out, user_errors
from regbench.errors import RegbenchError

if TYPE_CHECKING:
    from regbench.gate import Gate, GateReport, Run
    from regbench.spec import TaskSpec

EXIT_CODES_HELP = (
    "Exit codes: 0 every gate passed; 1 a quality gate failed (results are still written); "
    "2 usage or input error (bad flag or gates file, unknown task or metric in a gate, incompatible baseline); "
    "3 the run is incomplete (model unreachable, error rate over --max-error-rate)."
)
_PANEL = "Gates (CI)"

FailUnderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-under",
        metavar="[TASK:]METRIC=VALUE",
        rich_help_panel=_PANEL,
        help="Fail (exit 1) when METRIC is below VALUE; for a lower-is-better metric (radcliq_v1, giou_loss: "
        "results.json higher_is_better) when it is above. Without TASK: every task that reports METRIC. Repeatable.",
    ),
]
BaselineOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--baseline",
        metavar="DIR_OR_RESULTS",
        rich_help_panel=_PANEL,
        help="Baseline run for --max-drop: a DIR/<model>/<task> directory, its results.json, or a directory "
        "with several runs below it (matched by task). The same task, each gated metric computed the same way "
        "(signature without bootstrap settings and patch version), else exit 2. Repeatable.",
    ),
]
MaxDropOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--max-drop",
        metavar="[TASK:]METRIC=DELTA",
        rich_help_panel=_PANEL,
        help="Fail (exit 1) when METRIC is worse than the baseline by more than DELTA (the metric's own units; "
        "up for a lower-is-better metric) and, when both runs have samples.jsonl, the paired test finds the "
        "difference significant (see --significance). Repeatable.",
    ),
]
SignificanceOpt = Annotated[
    str,
    typer.Option(
        "--significance",
        metavar="ALPHA|off",
        rich_help_panel=_PANEL,
        help="Level of the paired permutation test (as `regbench compare`) a --max-drop needs to fail; "
        "'off' compares the values only.",
    ),
]
MaxErrorRateOpt = Annotated[
    float,
    typer.Option(
        "--max-error-rate",
        min=0.0,
        max=1.0,
        rich_help_panel=_PANEL,
        help="Largest share of samples whose request failed after the retries; over it the run is incomplete (exit 3).",
    ),
]
MaxParseFailureRateOpt = Annotated[
    float | None,
    typer.Option(
        "--max-parse-failure-rate",
        min=0.0,
        max=1.0,
        rich_help_panel=_PANEL,
        help="Fail (exit 1) when a larger share of outputs could not be parsed as the task needs.",
    ),
]
GatesOpt = Annotated[
    Path | None,
    typer.Option(
        "--gates",
        metavar="FILE.yaml",
        rich_help_panel=_PANEL,
        help="Gates kept under version control: a YAML list of {task, metric, min | max | fail_under | max_drop, "
        "significance}; combined with the flags (docs/ci.md).",
    ),
]
JunitOpt = Annotated[
    Path | None,
    typer.Option("--junit", metavar="FILE.xml", rich_help_panel=_PANEL, help="Write the gates as JUnit XML."),
]
SummaryOpt = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        metavar="FILE.md",
        rich_help_panel=_PANEL,
        help="Write the gates as a Markdown table (also appended to $GITHUB_STEP_SUMMARY when it is set).",
    ),
]


@dataclass(frozen=True)
class GateFlags:
    """The gate flags of one command, as given."""

    fail_under: Sequence[str] | None = None
    baseline: Sequence[Path] | None = None
    max_drop: Sequence[str] | None = None
    significance: str = "0.05"
    max_error_rate: float = 0.0
    max_parse_failure_rate: float | None = None
    gates: Path | None = None
    junit: Path | None = None
    summary: Path | None = None

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> GateFlags:
        """The gate flags among a command's parameters (``locals()`` of a typer command)."""
        return cls(**{f.name: params[f.name] for f in dataclasses.fields(cls)})

    @property
    def asked(self) -> bool:
        """Whether any gate or gate output was asked for (else only the error rate is gated, quietly)."""
        return bool(
            self.fail_under
            or self.baseline
            or self.max_drop
            or self.gates
            or self.junit
            or self.summary
            or self.max_error_rate
            or self.max_parse_failure_rate is not None
        )


@dataclass(frozen=True)
class Gating:
    """Gates and baselines read and checked, ready for the runs' results."""

    flags: GateFlags
    gates: list[Gate]
    baselines: list[Run]


def prepare_gates(flags: GateFlags, tasks: Sequence[TaskSpec] | None = None, outputs: Sequence[Path] = ()) -> Gating:
    """Read and check the gate flags and files (and, with ``tasks``, the names they use) before a run
    that will write to the directories ``outputs``."""
    from regbench.gate import (
        baselines_by_task,
        check_gates,
        find_runs,
        load_gates,
        parse_gate_flag,
        parse_significance,
        planned_keys,
        rate_gates,
    )

    alpha = parse_significance(flags.significance)
    gates = [
        parse_gate_flag(text, flag="--fail-under", rule="fail_under", alpha=alpha) for text in flags.fail_under or ()
    ]
    gates += [parse_gate_flag(text, flag="--max-drop", rule="max_drop", alpha=alpha) for text in flags.max_drop or ()]
    if flags.gates is not None:
        gates += load_gates(flags.gates, alpha=alpha)
    gates += rate_gates(flags.max_error_rate, flags.max_parse_failure_rate)
    baselines = find_runs(flags.baseline or (), what="--baseline")
    written = {path.resolve() for path in outputs}
    for baseline in baselines:
        if baseline.directory.resolve() in written:  # the run would overwrite it before the comparison
            raise RegbenchError(
                f"--baseline {baseline.directory}: this run writes its results there; copy the baseline elsewhere "
                "(e.g. ci/baseline) or use another --output"
            )
    if tasks is not None:
        planned = (
            planned_keys(tasks) if any(g.metric not in ("error_rate", "parse_failure_rate") for g in gates) else {}
        )
        check_gates(gates, planned or {t.task: set() for t in tasks}, baselines_by_task(baselines).keys())
    return Gating(flags, gates, baselines)


def finish_gates(gating: Gating, runs: Sequence[Path], *, seed: int, errors: tuple[str, str] | None = None) -> None:
    """Gate the runs (their directories), print and write the report, and exit with its code.

    ``errors``: what a failed request is and what to do about it, for the message of an
    incomplete run (``run`` and ``score`` word it differently).
    """
    from regbench.gate import evaluate_gates, find_runs
    from regbench.report.gates import gate_table, junit_xml, markdown_summary

    report = evaluate_gates(find_runs(runs, what="run"), gating.gates, gating.baselines, seed=seed)
    flags = gating.flags
    if flags.asked or errors is None:
        out.print(gate_table(report))
    if flags.junit is not None:
        _write(flags.junit, junit_xml(report))
    if flags.summary is not None:
        summary = markdown_summary(report)
        _write(flags.summary, summary)
        if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):  # GitHub Actions shows it on the run's page
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(summary)
    _tell_errors(report, errors)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    err.print(f"[dim]wrote {path}[/]", highlight=False)


def _tell_errors(report: GateReport, errors: tuple[str, str] | None) -> None:
    """One paragraph on failed requests: an error over the limit, a note within it."""
    what, advice = errors or ("samples ended in an error", "")
    failing = [r for r in report.results if r.gate.incomplete_run and r.value]
    if not failing:
        return
    many = len({r.model for r in failing}) > 1
    listed = ", ".join(f"{f'{r.model}/' if many else ''}{r.task}: {r.note}" for r in failing)
    if report.incomplete:
        limit = failing[0].gate.limit
        err.print(
            f"[bold red]error:[/] {what} ({listed}; over --max-error-rate {limit:g}); see `error` in samples.jsonl. "
            f"{advice}".rstrip(),
            highlight=False,
        )
    else:
        err.print(f"[yellow]note:[/] {what} ({listed}), within --max-error-rate", highlight=False)


RunsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Runs to gate: DIR/<model>/<task> directories, results.json files, or directories with runs below them."
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``regbench gate`` to the app."""

    @app.command(epilog=EXIT_CODES_HELP)
    @user_errors
    def gate(
        runs: RunsArg,
        fail_under: FailUnderOpt = None,
        baseline: BaselineOpt = None,
        max_drop: MaxDropOpt = None,
        significance: SignificanceOpt = "0.05",
        max_error_rate: MaxErrorRateOpt = 0.0,
        max_parse_failure_rate: MaxParseFailureRateOpt = None,
        gates: GatesOpt = None,
        junit: JunitOpt = None,
        summary: SummaryOpt = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the paired test's resamples.")] = 1234,
    ) -> None:
        """Gate results already written (stored predictions, a finished run) without running or scoring again."""
        flags = GateFlags.of(locals())
        finish_gates(prepare_gates(flags), runs, seed=seed)
