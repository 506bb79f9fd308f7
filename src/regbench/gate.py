"""Quality gates for CI: thresholds on a run's metrics, and regressions against a baseline run.

A gate names a metric key (of one task, or of every task that reports it) and one rule:

- ``fail_under`` (``--fail-under``): the value must be at least the limit, or at most the
  limit for a lower-is-better key such as ``radcliq_v1`` (the direction is results.json's
  ``higher_is_better``);
- ``min`` / ``max``: the value must be at least / at most the limit, whatever the direction;
- ``max_drop`` (``--max-drop`` with ``--baseline``): the value may be worse than the baseline
  run's by at most the limit, in the metric's own units. When both runs keep samples.jsonl, a
  larger drop fails only if the paired permutation test of :func:`regbench.stats.compare_runs`
  (the one ``regbench compare`` prints) also finds the difference significant, p < alpha;
  with alpha ``None`` (``--significance off``) the results.json values decide alone.

Two shares of the run's samples are gated like metrics, with ``max``: ``error_rate`` (the
request failed after the retries) and ``parse_failure_rate`` (the output could not be read
as the task needs). A failed ``error_rate`` gate means the run is incomplete: exit code 3
rather than 1 (:attr:`GateReport.exit_code`).

Every input problem (a malformed flag or gates file, a metric or task that no run reports, a
baseline of another task or computed differently) is a :class:`RegbenchError`, exit code 2.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regbench.errors import RegbenchError, SpecError
from regbench.registry import did_you_mean
from regbench.results import RESULTS_FILE, SAMPLES_FILE, Results, read_results
from regbench.signature import Signature
from regbench.spec import TaskSpec, spec_error_from
from regbench.stats import Comparison, compare_runs

Rule = Literal["fail_under", "min", "max", "max_drop"]
RATES = ("error_rate", "parse_failure_rate")
"""Shares of a run's samples, gated with ``max`` like metrics (lower is better)."""
DEFAULT_ALPHA = 0.05
DEFAULT_TRIALS = 1000
"""Bootstrap and permutation trials of the paired test (as ``regbench compare``'s default)."""
_EPSILON = 1e-12  # a value exactly at the limit passes, whatever the float rounding


@dataclass(frozen=True)
class Gate:
    """One gate as given: a metric, a rule and its limit, for one task or for every task (``None``)."""

    metric: str
    rule: Rule
    limit: float
    task: str | None = None
    alpha: float | None = DEFAULT_ALPHA
    """``max_drop`` only: significance level of the paired test; ``None`` compares the values alone."""
    origin: str = ""
    """Where the gate was given (``--fail-under grounded_rg:region_f1=0.5``, ``ci/gates.yaml [2]``)."""

    @property
    def incomplete_run(self) -> bool:
        """Failing this gate means the run itself is incomplete (exit 3), not that it got worse."""
        return self.metric == "error_rate"

    @property
    def label(self) -> str:
        """The rule as written on the command line: ``fail-under``, ``max-drop``, ``max``, ..."""
        if self.metric in RATES and self.rule in ("max", "fail_under"):
            return f"max-{self.metric.replace('_', '-')}"
        return self.rule.replace("_", "-")


# ---------------------------------------------------------------- gates from flags and files


def parse_significance(text: str) -> float | None:
    """``--significance``: a level in (0, 1), or ``off`` (``None``: compare point values only)."""
    if text.strip().lower() in ("off", "false", "none", "no"):
        return None
    try:
        alpha = float(text)
    except ValueError:
        alpha = math.nan
    if not 0 < alpha < 1:
        raise RegbenchError(f"--significance: expected a level in (0, 1) such as 0.05, or 'off'; got {text!r}")
    return alpha


def parse_gate_flag(text: str, *, flag: str, rule: Rule, alpha: float | None = DEFAULT_ALPHA) -> Gate:
    """A ``[TASK:]METRIC=VALUE`` flag (``--fail-under``, ``--max-drop``) as a :class:`Gate`."""
    target, equals, number = text.rpartition("=")
    task, _, metric = target.strip().rpartition(":")
    what = "DELTA" if rule == "max_drop" else "VALUE"
    if not equals or not metric or "=" in target:
        raise RegbenchError(f"{flag}: expected [TASK:]METRIC={what} (e.g. grounded_rg:region_f1=0.5), got {text!r}")
    try:
        limit = float(number)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit):
        raise RegbenchError(f"{flag} {text}: {what} must be a number, got {number!r}")
    if rule == "max_drop" and limit < 0:
        raise RegbenchError(f"{flag} {text}: DELTA is how much worse the metric may get, a number >= 0")
    gate = Gate(metric.strip(), rule, limit, task.strip() or None, alpha, f"{flag} {text}")
    if problem := _problem(gate):
        raise RegbenchError(f"{flag} {text}: {problem}")
    return gate


def rate_gates(max_error_rate: float = 0.0, max_parse_failure_rate: float | None = None) -> list[Gate]:
    """The ``--max-error-rate`` and ``--max-parse-failure-rate`` gates (the latter only when given)."""
    gates = [Gate("error_rate", "max", max_error_rate, origin=f"--max-error-rate {max_error_rate:g}")]
    if max_parse_failure_rate is not None:
        origin = f"--max-parse-failure-rate {max_parse_failure_rate:g}"
        gates.append(Gate("parse_failure_rate", "max", max_parse_failure_rate, origin=origin))
    return gates


class GateEntry(BaseModel):
    """One entry of a gates YAML file: a metric and exactly one of min, max, fail_under, max_drop."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metric: str = Field(min_length=1)
    """A metric key of results.json, or error_rate / parse_failure_rate."""
    task: str | None = None
    """The task (results.json ``task``); left out: every task that reports the metric."""
    min: float | None = None
    max: float | None = None
    fail_under: float | None = None
    """Like ``--fail-under``: ``min`` for a higher-is-better key, ``max`` for a lower-is-better one."""
    max_drop: float | None = Field(None, ge=0)
    significance: Annotated[float, Field(gt=0, lt=1)] | bool | None = None
    """``max_drop`` only: the level of the paired test, ``false`` for point values, unset for ``--significance``."""


def load_gates(path: Path, *, alpha: float | None = DEFAULT_ALPHA) -> list[Gate]:
    """The gates of a YAML file, a top-level list of :class:`GateEntry` mappings; ``alpha`` is
    ``--significance``, for entries that set no ``significance`` of their own."""
    file = str(path)
    if not path.is_file():
        raise RegbenchError(f"--gates {path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(file, where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, list):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        raise SpecError(file, "", f"expected a list of gates at the top level (- metric: ..., min: ...), got {got}")
    gates = []
    for index, item in enumerate(data):
        where = f"[{index}]"
        try:
            entry = GateEntry.model_validate(item)
        except ValidationError as exc:
            raise spec_error_from(exc, file=file, prefix=where) from None
        rules = [r for r in ("min", "max", "fail_under", "max_drop") if getattr(entry, r) is not None]
        if len(rules) != 1:
            given = " and ".join(rules) if rules else "none"
            raise SpecError(file, where, f"give exactly one of min, max, fail_under, max_drop (got {given})")
        rule: Rule = rules[0]  # type: ignore[assignment]
        if entry.significance is not None and rule != "max_drop":
            raise SpecError(file, f"{where}.significance", "applies to max_drop only (a baseline comparison)")
        gate_alpha = alpha if entry.significance in (None, True) else entry.significance or None
        gate = Gate(entry.metric, rule, getattr(entry, rule), entry.task, gate_alpha, f"{file} {where}")
        if problem := _problem(gate):
            raise SpecError(file, where, problem)
        gates.append(gate)
    return gates


def _problem(gate: Gate) -> str | None:
    """What is wrong with a well-formed gate: a share of samples asked for anything but a maximum."""
    if gate.metric in RATES and gate.rule not in ("max", "fail_under"):
        return f"{gate.metric} takes a maximum only (max, or --max-{gate.metric.replace('_', '-')})"
    return None


# ---------------------------------------------------------------- runs and baselines


@dataclass(frozen=True)
class Run:
    """A run's results.json and the directory that holds it (and maybe samples.jsonl)."""

    results: Results
    directory: Path

    @property
    def has_samples(self) -> bool:
        return (self.directory / SAMPLES_FILE).is_file()

    @property
    def name(self) -> str:
        return f"{self.results.model}/{self.results.task}"


def find_runs(paths: Iterable[Path], *, what: str) -> list[Run]:
    """The runs ``paths`` stand for: a run directory ``DIR/<model>/<task>``, its results.json, or a
    directory with runs below it (every results.json under it, shard folders left out).
    ``what`` names the argument in errors (``--baseline``)."""
    runs = []
    for path in paths:
        if path.is_file() or (path / RESULTS_FILE).is_file():
            files = [path if path.is_file() else path / RESULTS_FILE]
        elif path.is_dir():
            files = [p for p in sorted(path.rglob(RESULTS_FILE)) if not any(x.startswith("shard-") for x in p.parts)]
            if not files:
                raise RegbenchError(f"{what} {path}: no results.json in or under it (shards count once merged)")
        else:
            raise RegbenchError(f"{what} {path}: no such file or directory")
        for file in files:
            try:
                runs.append(Run(read_results(file), file.parent))
            except RegbenchError as exc:
                raise RegbenchError(f"{what}: {exc}") from None
    return runs


def baselines_by_task(baselines: Sequence[Run]) -> dict[str, Run]:
    """Baselines by task name; two baselines of one task are ambiguous."""
    found: dict[str, Run] = {}
    for run in baselines:
        if (other := found.get(run.results.task)) is not None:
            raise RegbenchError(
                f"--baseline: two baselines of task {run.results.task!r} ({other.directory} and {run.directory}); "
                "give one per task"
            )
        found[run.results.task] = run
    return found


# ---------------------------------------------------------------- which gate applies where


def _targets(gate: Gate, runs: Sequence[tuple[str, Collection[str]]], baseline_tasks: Collection[str]) -> list[int]:
    """Indices of the runs (task, metric keys) a gate applies to; an error when it names a task or
    metric no run has, or a baseline comparison without a baseline."""
    tasks = [task for task, _ in runs]
    if gate.task is not None and gate.task not in tasks:
        raise RegbenchError(f"{gate.origin}: {did_you_mean('task', gate.task, sorted(set(tasks)))}")
    chosen = [i for i, (task, _) in enumerate(runs) if gate.task in (None, task)]
    if gate.metric not in RATES:
        reporting = [i for i in chosen if gate.metric in runs[i][1]]
        if not reporting:
            keys = sorted({key for i in chosen for key in runs[i][1]} | set(RATES))
            where = f" (task {gate.task})" if gate.task else ""
            raise RegbenchError(f"{gate.origin}: {did_you_mean('metric', gate.metric, keys)}{where}")
        chosen = reporting
    if gate.rule == "max_drop":
        compared = [i for i in chosen if runs[i][0] in baseline_tasks]
        if not compared:
            which = f"task {gate.task}" if gate.task else "any task reporting " + gate.metric
            have = ", ".join(sorted(baseline_tasks)) or "none"
            raise RegbenchError(f"{gate.origin}: no --baseline for {which} (baselines given for: {have})")
        chosen = compared
    return chosen


def check_gates(gates: Sequence[Gate], runs: Mapping[str, Collection[str]], baseline_tasks: Collection[str]) -> None:
    """Check before a run that every gate names a task and metric key the run will report
    (``runs``: task -> its keys, as :func:`planned_keys` gives) and has its baseline."""
    listed = list(runs.items())
    for gate in gates:
        _targets(gate, listed, baseline_tasks)
    _unused_baselines(gates, baseline_tasks)


def planned_keys(tasks: Sequence[TaskSpec]) -> dict[str, set[str]]:
    """The metric keys each task's plugins report (built, not prepared: no weights are loaded)."""
    from regbench.metrics import build_plugins

    keys: dict[str, set[str]] = {}
    for task in tasks:
        with warnings.catch_warnings():  # the run itself warns (e.g. a chest X-ray metric on CT)
            warnings.simplefilter("ignore")
            plugins = build_plugins(task)
        keys.setdefault(task.task, set()).update(k for plugin in plugins for k in plugin.output_keys())
        for plugin in plugins:
            plugin.close()
    return keys


def _unused_baselines(gates: Sequence[Gate], baseline_tasks: Collection[str]) -> None:
    if baseline_tasks and not any(gate.rule == "max_drop" for gate in gates):
        raise RegbenchError("--baseline is given but no gate compares with it: add --max-drop (or max_drop in --gates)")


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class GateResult:
    """One gate on one run: the numbers, and whether it passed and why."""

    gate: Gate
    model: str
    task: str
    higher_is_better: bool
    passed: bool
    reason: str
    """Which rule decided, with the numbers: ``0.3333 < 0.5``, ``drop 0.17 > 0.05, p = 0.031 < 0.05``."""
    value: float | None = None
    """The run's value (over the samples both runs hold when compared on a subset)."""
    ci95: tuple[float, float] | None = None
    """The run's 95% bootstrap interval (results.json), when the value is the whole run's."""
    baseline: float | None = None
    baseline_ci95: tuple[float, float] | None = None
    delta: float | None = None
    """Value - threshold, or value - baseline (signed, in the metric's units)."""
    delta_ci95: tuple[float, float] | None = None
    """95% paired bootstrap interval of value - baseline."""
    p_value: float | None = None
    note: str = ""

    @property
    def threshold(self) -> float | None:
        return None if self.gate.rule == "max_drop" else self.gate.limit

    @property
    def bound(self) -> Literal["min", "max"] | None:
        """Whether a threshold is a lower (``min``) or upper (``max``) bound; ``None`` for max_drop."""
        if self.gate.rule == "fail_under":
            return "min" if self.higher_is_better else "max"
        return None if self.gate.rule == "max_drop" else self.gate.rule  # type: ignore[return-value]


@dataclass
class GateReport:
    """Every gate's result, in the order of the runs and then of the gates."""

    results: list[GateResult] = field(default_factory=list)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    @property
    def incomplete(self) -> list[GateResult]:
        """Failed gates that mean the run is incomplete (error rate over its limit)."""
        return [r for r in self.failed if r.gate.incomplete_run]

    @property
    def exit_code(self) -> int:
        """0 every gate passed, 3 a run is incomplete, else 1 a quality gate failed."""
        return 3 if self.incomplete else 1 if self.failed else 0


def evaluate_gates(
    runs: Sequence[Run],
    gates: Sequence[Gate],
    baselines: Sequence[Run] = (),
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int = 1234,
) -> GateReport:
    """Every gate on every run it applies to. Raises a :class:`RegbenchError` (exit 2) for a gate
    that names an unknown task or metric, and for a baseline of the same task whose metric was
    computed differently (signatures differ beyond bootstrap settings and patch version)."""
    by_task = baselines_by_task(baselines)
    listed = [(run.results.task, run.results.metrics.keys()) for run in runs]
    targets = [(gate, _targets(gate, listed, by_task.keys())) for gate in gates]
    _unused_baselines(gates, by_task.keys())
    for gate, indices in targets:
        if gate.rule == "max_drop":
            for i in indices:
                _check_baseline(runs[i], by_task[runs[i].results.task], gate.metric)
    # one paired comparison per (run, baseline), over every key a significance-aware gate asks for
    tested: dict[int, set[str]] = {}
    for gate, indices in targets:
        for i in indices:
            if gate.rule == "max_drop" and gate.alpha is not None:
                tested.setdefault(i, set()).add(gate.metric)
    comparisons: dict[int, dict[str, Comparison]] = {}
    report = GateReport()
    for i, run in enumerate(runs):
        for gate, indices in targets:
            if i not in indices:
                continue
            if gate.rule != "max_drop":
                report.results.append(_threshold(gate, run))
                continue
            baseline = by_task[run.results.task]
            row = None
            if gate.alpha is not None and run.has_samples and baseline.has_samples:
                if i not in comparisons:
                    rows = compare_runs(
                        baseline.directory, run.directory, trials=trials, seed=seed, keys=tested[i], patch=False
                    )
                    comparisons[i] = {r.key: r for r in rows}
                row = comparisons[i].get(gate.metric)
            report.results.append(_max_drop(gate, run, baseline, row))
    return report


def _check_baseline(run: Run, baseline: Run, metric: str) -> None:
    """The baseline reports ``metric``, computed as the run computed it, on the same data."""
    new, old = run.results, baseline.results
    if metric not in old.metrics:
        raise RegbenchError(
            f"--baseline {baseline.directory}: task {old.task} reports no {metric!r} "
            f"(it reports {', '.join(sorted(old.metrics)) or 'nothing'})"
        )
    signature_new, signature_old = new.signatures.get(metric, ""), old.signatures.get(metric, "")
    if Signature.parse(signature_new).comparable(patch=False) != Signature.parse(signature_old).comparable(patch=False):
        raise RegbenchError(
            f"--baseline {baseline.directory}: {old.task} {metric} was computed differently, so the two numbers "
            f"cannot be compared. Baseline: {signature_old or '(none)'}; this run: {signature_new or '(none)'}. "
            "Only the bootstrap settings (bs, rs) and regbench's patch version may differ."
        )
    data_new = new.config.get("data", {}).get("sha256")
    data_old = old.config.get("data", {}).get("sha256")
    if data_new and data_old and data_new != data_old:
        raise RegbenchError(
            f"--baseline {baseline.directory}: task {old.task} was run on another data file (sha256 differs)"
        )


def _num(value: float) -> str:
    return f"{value:.4g}"


def _threshold(gate: Gate, run: Run) -> GateResult:
    results = run.results
    if gate.metric in RATES:
        count = results.n_errors if gate.metric == "error_rate" else results.n_parse_failures
        value: float = count / results.n_samples if results.n_samples else 0.0
        higher, ci, note = False, None, f"{count} of {results.n_samples} samples"
    else:
        value = results.metrics[gate.metric]
        higher = results.higher_is_better.get(gate.metric, True)
        interval = results.ci95.get(gate.metric)
        ci, note = (interval[0], interval[1]) if interval else None, ""
    rule = gate.rule if gate.rule != "fail_under" else "min" if higher else "max"
    if not math.isfinite(value):
        passed, reason = False, f"{gate.label} {_num(gate.limit)}: the value is not a number"
    elif rule == "min":
        passed = value >= gate.limit - _EPSILON
        reason = f"{gate.label}: {_num(value)} {'≥' if passed else '<'} {_num(gate.limit)}"
    else:
        passed = value <= gate.limit + _EPSILON
        reason = f"{gate.label}: {_num(value)} {'≤' if passed else '>'} {_num(gate.limit)}"
    return GateResult(
        gate,
        results.model,
        results.task,
        higher,
        passed,
        reason,
        value=value,
        ci95=ci,
        delta=value - gate.limit,
        note=note,
    )


def _max_drop(gate: Gate, run: Run, baseline: Run, row: Comparison | None) -> GateResult:
    new, old = run.results, baseline.results
    higher = new.higher_is_better.get(gate.metric, True)
    value, base = new.metrics[gate.metric], old.metrics[gate.metric]
    ci, base_ci = new.ci95.get(gate.metric), old.ci95.get(gate.metric)
    note = ""
    delta_ci = p_value = None
    if row is not None:
        if not row.n == new.n_samples == old.n_samples:
            ci = base_ci = None  # the intervals are of the whole runs, the values of the shared samples
        if row.a is not None and row.b is not None:
            base, value = row.a, row.b
        delta_ci, p_value, note = row.ci95, row.p_value, row.note
    elif gate.alpha is None:
        note = "point values, significance off"
    else:
        missing = [str(r.directory) for r in (baseline, run) if not r.has_samples]
        note = f"point values: no samples.jsonl in {' and '.join(missing)}"
    if row is None and new.n_samples != old.n_samples:
        note += f"; the runs hold different samples (baseline {old.n_samples}, this run {new.n_samples})"
    delta = value - base
    drop = -delta if higher else delta
    limit = f"{gate.label} {_num(gate.limit)}"
    if not math.isfinite(drop):
        passed, reason = False, f"{limit}: a value is not a number"
    elif drop <= gate.limit + _EPSILON:
        passed, reason = True, f"{limit}: drop {_num(max(drop, 0.0))} ≤ {_num(gate.limit)}"
    elif p_value is not None and gate.alpha is not None:
        passed = p_value >= gate.alpha
        verdict = "not significant" if passed else "significant"
        sign = "≥" if passed else "<"
        reason = f"{limit}: drop {_num(drop)} > {_num(gate.limit)}, p = {p_value:.3g} {sign} {gate.alpha:g} ({verdict})"
    else:
        passed, reason = False, f"{limit}: drop {_num(drop)} > {_num(gate.limit)}"
    return GateResult(
        gate,
        new.model,
        new.task,
        higher,
        passed,
        reason,
        value=value,
        ci95=(ci[0], ci[1]) if ci else None,
        baseline=base,
        baseline_ci95=(base_ci[0], base_ci[1]) if base_ci else None,
        delta=delta,
        delta_ci95=delta_ci,
        p_value=p_value,
        note=note,
    )
