"""The ``regbench`` command: flags in, specs and options to the runner, tables and messages out.

Heavy modules (numpy, the runner, metric plugins) are imported inside the commands so
``regbench --help`` starts fast. Every user-facing error (:class:`RegbenchError`) is one
paragraph on stderr and exit code 2, or 3 for a model that cannot be reached
(:func:`regbench.console.user_errors`). ``run`` and ``score`` end by gating their results
(exit 1 when a quality gate fails, 3 when too many requests failed; :mod:`regbench.cli_gate`,
which also holds ``regbench gate``). The reporting commands are in :mod:`regbench.cli_report`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from regbench import __version__
from regbench.cli_gate import (
    EXIT_CODES_HELP,
    BaselineOpt,
    FailUnderOpt,
    GateFlags,
    GatesOpt,
    JunitOpt,
    MaxDropOpt,
    MaxErrorRateOpt,
    MaxParseFailureRateOpt,
    SignificanceOpt,
    SummaryOpt,
    finish_gates,
    prepare_gates,
)
from regbench.cli_gate import register as register_gate_command
from regbench.cli_report import export_app
from regbench.cli_report import register as register_report_commands
from regbench.console import INTERRUPTED, err, out, user_errors
from regbench.errors import RegbenchError

if TYPE_CHECKING:
    from regbench.runner import RunOptions, RunResult, TaskProgress
    from regbench.spec import ModelSpec, TaskSpec

app = typer.Typer(
    name="regbench",
    help="Evaluate medical vision-language models: region-level tasks, grounded reports, clinical metrics.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
list_app = typer.Typer(help="List registered tasks, models, metrics, suites and box formats.", no_args_is_help=True)
app.add_typer(list_app, name="list")


def _version(value: bool) -> None:
    if value:
        out.print(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """regbench: evaluation harness for medical vision-language models."""


# ---------------------------------------------------------------- shared options

TaskOpt = Annotated[
    list[str],
    typer.Option("--task", "-t", help="Task or task-group name, or a task YAML path (repeatable, or comma-separated)."),
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output directory: DIR/<model>/<task>/results.json.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Evaluate only the first N samples of each task.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for bootstrap intervals (and sampling, if enabled).")]


def _box_format(name: str | None) -> str | None:
    """``--box-format`` checked when the command starts (a typo names the flag, not a model)."""
    if name is not None:
        from regbench.parsing import get_box_format

        try:
            get_box_format(name)
        except RegbenchError as exc:
            raise typer.BadParameter(str(exc)) from None
    return name


BoxFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--box-format", callback=_box_format, help="How outputs write boxes (overrides the model and task YAML)."
    ),
]
BootstrapOpt = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap trials for 95% intervals (0: none).")]


@dataclass(frozen=True)
class RayPlan:
    """``--executor ray``: how many shards, and the cluster to join (``None``: start Ray locally)."""

    shards: int
    address: str | None


def _run_all(
    model: ModelSpec, tasks: list[TaskSpec], options: RunOptions, concurrency: int | None, ray: RayPlan | None = None
) -> list[RunResult]:
    if ray is not None:
        from regbench.executor import run_on_ray

        where = f"the Ray cluster at {ray.address}" if ray.address else "a local Ray instance"
        err.print(f"running {ray.shards} shards on {where}", highlight=False)
        results = run_on_ray(model, tasks, options, shards=ray.shards, address=ray.address, concurrency=concurrency)
    else:
        from regbench.runner import run_tasks

        results = run_tasks(model, tasks, options, concurrency=concurrency, progress=_progress_bars(model))
    for result in results:
        _print_scores(result)
    return results


@contextmanager
def _progress_bars(model: ModelSpec) -> Iterator[TaskProgress]:
    """A progress bar per task on stderr, each kept when its task ends; after the answers, the row says
    which scoring step runs (and what it waits for), with a spinner and the time still counting."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    class Spinner(SpinnerColumn):
        """Spins while a scoring step runs (the bar is full by then and shows no movement)."""

        def render(self, task: Any) -> Any:
            return self.spinner.render(task.get_time()) if task.fields.get("phase") else " "

    class Elapsed(TimeElapsedColumn):
        """The task's time until it is done, not until its last answer (rich stops at the bar's total)."""

        def render(self, task: Any) -> Any:
            from datetime import timedelta

            from rich.text import Text

            return Text(str(timedelta(seconds=int(task.elapsed or 0))), style="progress.elapsed")

    with Progress(
        Spinner(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Elapsed(),
        TextColumn("{task.fields[phase]}", style="dim"),
        console=err,
        transient=False,
    ) as progress:

        class TaskRow:
            def __init__(self, task: TaskSpec) -> None:
                self.bar = progress.add_task(f"{model.model} · {task.task}", total=None, phase="")

            def __call__(self, done: int, total: int) -> None:
                progress.update(self.bar, completed=done, total=total)

            def phase(self, text: str | None) -> None:
                if text is None:
                    progress.update(self.bar, phase="")
                    progress.stop_task(self.bar)  # the spinner and the clock stop
                else:
                    progress.update(self.bar, phase=text)

        yield TaskRow


def _print_scores(result: RunResult) -> None:
    from rich.table import Table

    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    res = result.results
    table = Table(
        title=f"{res.model} · {res.task}  (n={res.n_samples}, parse failures={res.n_parse_failures}, "
        f"errors={res.n_errors})",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    for key, value in res.metrics.items():
        low_high = res.ci95.get(key)
        ci = f"[{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else ""
        arrow = "" if res.higher_is_better.get(key, True) else " ↓"
        shown = str(value) if isinstance(value, int) else f"{value:.4f}"  # a count (judge_parse_failures)
        table.add_row(key + arrow, shown, ci)
    out.print(table)
    out.print(f"[dim]{result.directory / 'results.json'}[/]")


# ---------------------------------------------------------------- run / score


@app.command(epilog=EXIT_CODES_HELP)
@user_errors
def run(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name (see `regbench list models`) or a model YAML path.")
    ],
    task: TaskOpt,
    limit: LimitOpt = None,
    output: OutputOpt = Path("runs"),
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Requests in flight (overrides the model YAML).")
    ] = None,
    seed: SeedOpt = 1234,
    box_format: BoxFormatOpt = None,
    bootstrap: BootstrapOpt = 1000,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Response cache file (default: OUTPUT/cache.sqlite).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Query the model even for cached requests.")] = False,
    shard: Annotated[
        str | None, typer.Option("--shard", help="I/N: run every N-th sample from the I-th (0-based); see `merge`.")
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor", help="local (this process), or ray: --shards N Ray tasks, then merged (needs the ray extra)."
        ),
    ] = "local",
    shards: Annotated[
        int | None, typer.Option("--shards", help="With --executor ray: how many shards (Ray tasks) to run.")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="With --executor ray: join this cluster (default: start Ray locally)."),
    ] = None,
    fail_under: FailUnderOpt = None,
    baseline: BaselineOpt = None,
    max_drop: MaxDropOpt = None,
    significance: SignificanceOpt = "0.05",
    max_error_rate: MaxErrorRateOpt = 0.0,
    max_parse_failure_rate: MaxParseFailureRateOpt = None,
    gates: GatesOpt = None,
    junit: JunitOpt = None,
    summary: SummaryOpt = None,
) -> None:
    """Run tasks on a model; write DIR/<model>/<task>/results.json and samples.jsonl; gate the results."""
    from regbench.resolve import resolve_model, resolve_tasks
    from regbench.runner import RunOptions

    model_spec = resolve_model(model)
    tasks = resolve_tasks(task)
    options = RunOptions(
        output=output,
        limit=limit,
        seed=seed,
        bootstrap_trials=bootstrap,
        box_format=box_format,
        cache=cache,
        use_cache=not no_cache,
        shard=_parse_shard(shard),
    )
    _run_gated(
        model_spec,
        tasks,
        options,
        GateFlags.of(locals()),
        concurrency=concurrency,
        ray=_ray_plan(executor, shards, ray_address, shard),
        errors=(
            "requests failed (after the retries, or no recorded output)",
            "Run the same command again to retry only those (finished responses are cached).",
        ),
    )


@app.command(epilog=EXIT_CODES_HELP)
@user_errors
def score(
    task: TaskOpt,
    predictions: Annotated[
        Path, typer.Option("--predictions", "-p", help='JSONL of {"id": ..., "output": ...} lines.')
    ],
    output: OutputOpt = Path("runs"),
    name: Annotated[
        str | None,
        typer.Option("--name", help="Model name for the output folder (default: the predictions file stem)."),
    ] = None,
    box_format: BoxFormatOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 1234,
    bootstrap: BootstrapOpt = 1000,
    fail_under: FailUnderOpt = None,
    baseline: BaselineOpt = None,
    max_drop: MaxDropOpt = None,
    significance: SignificanceOpt = "0.05",
    max_error_rate: MaxErrorRateOpt = 0.0,
    max_parse_failure_rate: MaxParseFailureRateOpt = None,
    gates: GatesOpt = None,
    junit: JunitOpt = None,
    summary: SummaryOpt = None,
) -> None:
    """Score recorded outputs (no model): the predictions replace the model's answers; gate the results."""
    from regbench.resolve import resolve_tasks
    from regbench.runner import RunOptions
    from regbench.spec import ModelSpec

    tasks = resolve_tasks(task)
    if not predictions.is_file():
        raise RegbenchError(f"predictions file not found: {predictions}")
    model_spec = ModelSpec(
        model=name or predictions.stem,
        adapter="replay",
        path=str(predictions.resolve()),
        box_format=box_format or "auto",
    )
    # the replayed outputs are not cached (their file is the record); judge answers are, in OUTPUT/cache.sqlite
    options = RunOptions(output=output, limit=limit, seed=seed, bootstrap_trials=bootstrap, box_format=box_format)
    _run_gated(
        model_spec,
        tasks,
        options,
        GateFlags.of(locals()),
        concurrency=None,
        errors=("samples have no prediction", "Their results are written, scored as errors."),
    )


def _run_gated(
    model: ModelSpec,
    tasks: list[TaskSpec],
    options: RunOptions,
    flags: GateFlags,
    *,
    concurrency: int | None,
    errors: tuple[str, str],
    ray: RayPlan | None = None,
) -> None:
    """Check the gates, run the tasks, then gate their results (``errors``: what failed samples are, and the advice)."""
    from regbench.runner import output_dir

    gating = prepare_gates(flags, tasks, [output_dir(options, model.model, t.task) for t in tasks])
    directories = [r.directory for r in _run_all(model, tasks, options, concurrency, ray)]
    finish_gates(gating, directories, seed=options.seed, errors=errors)


def _ray_plan(executor: str, shards: int | None, address: str | None, shard: str | None) -> RayPlan | None:
    """The ``--executor``/``--shards``/``--ray-address`` flags checked together."""
    if executor not in ("local", "ray"):
        raise RegbenchError(f"--executor: expected local or ray, got {executor!r}")
    if executor == "local":
        if shards is not None or address is not None:
            flag = "--shards" if shards is not None else "--ray-address"
            raise RegbenchError(f"{flag} needs --executor ray (a local run shards by hand with --shard I/N)")
        return None
    if shard is not None:
        raise RegbenchError("--shard and --executor ray exclude each other: --executor ray runs every shard itself")
    if shards is None:
        raise RegbenchError("--executor ray needs --shards N (how many Ray tasks to split the run into)")
    if shards < 1:
        raise RegbenchError(f"--shards: expected a whole number of at least 1, got {shards}")
    return RayPlan(shards, address)


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise RegbenchError(f"--shard: expected I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


@app.command()
@user_errors
def merge(
    shards: Annotated[list[Path], typer.Argument(help="Shard directories (each with results.json, samples.jsonl).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Directory for the merged files (default: the shards' parent)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a results.json / samples.jsonl already in the output.")
    ] = False,
) -> None:
    """Merge the shards of one model and task into one results.json (equal to an unsharded run)."""
    from regbench.merge import merge_shards

    if output is None:
        parents = {shard.resolve().parent for shard in shards}
        if len(parents) != 1 or not all(shard.name.startswith("shard-") for shard in shards):
            raise RegbenchError("give --output: the shards are not the shard-I-of-N folders of one run")
        output = parents.pop()
    existing = [output / name for name in ("results.json", "samples.jsonl") if (output / name).exists()]
    if existing and not overwrite:
        raise RegbenchError(
            f"{existing[0]} exists: merging would replace it; give another --output, or --overwrite to replace it"
        )

    merged = merge_shards(shards, output)
    out.print(f"merged {len(shards)} shards: {merged.n_samples} samples → {output / 'results.json'}")


cache_app = typer.Typer(help="Inspect or clear a response cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
CacheArg = Annotated[Path, typer.Argument(help="A run's output directory or its cache.sqlite file.")]


def _cache_file(path: Path) -> Path:
    file = path / "cache.sqlite" if path.is_dir() else path
    if not file.is_file():
        raise RegbenchError(f"no response cache at {file}")
    return file


@cache_app.command("info")
@user_errors
def cache_info(path: CacheArg) -> None:
    """How many responses a cache holds and how big it is."""
    from regbench.cache import ResponseCache

    file = _cache_file(path)
    cache = ResponseCache(file)
    try:
        out.print(f"{file}: {len(cache)} cached responses, {file.stat().st_size / 1e6:.1f} MB")
    finally:
        cache.close()


@cache_app.command("clear")
@user_errors
def cache_clear(path: CacheArg) -> None:
    """Delete a response cache (the next run asks the model again)."""
    file = _cache_file(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    out.print(f"removed {file}")


@app.command()
@user_errors
def weights() -> None:
    """Model weights each neural metric needs, where regbench looks, and what is present."""
    from rich.table import Table

    from regbench.weights import REQUIREMENTS, weights_dir

    table = Table()
    for column in ("weights", "used by", "status", "what to fetch"):
        table.add_column(column, overflow="fold")  # a path is folded onto the next line, never cut with "…"
    for requirement in REQUIREMENTS.values():
        found = requirement.locate()
        status = (
            f"[green]found[/] {found}" if found else f"[red]missing[/] (put it at {weights_dir() / requirement.name})"
        )
        table.add_row(requirement.name, requirement.used_by, status, requirement.fetch)
    out.print(table)
    out.print(
        f"Weights directory: {weights_dir()} (set REGBENCH_WEIGHTS_DIR to change it); the Hugging Face cache "
        "is searched too. Nothing is downloaded."
    )


@app.command()
@user_errors
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run A: a DIR/<model>/<task> directory (or its results.json).")],
    run_b: Annotated[Path, typer.Argument(help="Run B: the same task, another model or setting.")],
    trials: Annotated[int, typer.Option("--trials", min=10, help="Bootstrap and permutation trials.")] = 1000,
    seed: SeedOpt = 1234,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON.")] = None,
) -> None:
    """Per-metric differences B - A with paired bootstrap 95% intervals and permutation p-values."""
    import json

    from rich.table import Table

    from regbench.stats import compare_runs

    rows = compare_runs(run_a, run_b, trials=trials, seed=seed)
    table = Table("metric", "A", "B", "B - A", "95% CI", "p", "note", title=f"{run_a}  vs  {run_b}")
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    for row in rows:
        ci = f"[{row.ci95[0]:+.4f}, {row.ci95[1]:+.4f}]" if row.ci95 else ""
        arrow = "" if row.higher_is_better else " ↓"
        diff = "" if row.difference is None else f"{row.difference:+.4f}"
        table.add_row(row.key + arrow, fmt(row.a), fmt(row.b), diff, ci, fmt(row.p_value), row.note)
    out.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")


# ---------------------------------------------------------------- list


def _spec_table(kind: str, columns: list[str], row: Callable[[Any], list[str]]) -> None:
    from rich.table import Table

    from regbench.registry import spec_index
    from regbench.spec import load_spec

    table = Table(*columns, "file")
    for name, path in sorted(spec_index(kind).items()):
        try:
            cells = row(load_spec(path))
        except RegbenchError as exc:
            cells = [name, f"[red]invalid: {exc}[/]"] + [""] * (len(columns) - 2)
        table.add_row(*cells, str(path))
    out.print(table)


@list_app.command("tasks")
@user_errors
def list_tasks(
    count: Annotated[
        bool,
        typer.Option(
            "--count/--no-count",
            help="Load the data that is present to count its samples (a first count of images stored inside "
            "data files also fills the image cache, as a first run would).",
        ),
    ] = True,
) -> None:
    """Task YAMLs and task groups; each task's dataset (loader:split), its size when the data is here, and
    whether it is: yes, no, or why present data does not load (it is loaded to count it)."""
    from rich.markup import escape

    from regbench.data.status import data_status, dataset_label

    seen: dict[str, Any] = {}  # one load per dataset, however many tasks share it

    def row(t: Any) -> list[str]:
        status = data_status(t, seen=seen, count=count)
        return [
            t.task,
            t.family,
            t.language,
            t.modality or "",
            escape(dataset_label(t.dataset)),
            status.size_text(),
            escape(status.data_text()),
            ", ".join(m.name for m in t.metrics),
        ]

    _spec_table("task", ["task", "family", "language", "modality", "dataset", "samples", "data", "metrics"], row)
    _spec_table("group", ["group", "tasks"], lambda g: [g.group, ", ".join(g.tasks)])


@list_app.command("models")
@user_errors
def list_models() -> None:
    """Model YAMLs."""
    _spec_table("model", ["model", "adapter", "box format"], lambda m: [m.model, m.adapter, m.box_format])


@list_app.command("metrics")
@user_errors
def list_metrics(
    name: Annotated[
        str | None,
        typer.Argument(help="A metric plugin or suite: show its keys and every option (type, default, meaning)."),
    ] = None,
) -> None:
    """Metric plugins (keys, options with their defaults) and metric suites; NAME shows one in full."""
    from rich.markup import escape
    from rich.table import Table

    from regbench.metrics import METRICS
    from regbench.registry import describe, describe_options

    if name is not None:
        _show_metric(name)
        return
    table = Table("metric", "keys (↓ = lower is better)", "options (= default)", "description")
    for plugin_name in METRICS.names():
        try:
            plugin = METRICS.get(plugin_name)
            keys = ", ".join(k + ("" if up else " ↓") for k, up in plugin.keys.items())
            options = "\n".join(f"{o.name}={o.default}" for o in describe_options(plugin.Options)) or "-"
            table.add_row(plugin_name, keys, escape(options), describe(plugin))
        except ImportError as exc:
            table.add_row(plugin_name, "", "", f"[yellow]needs an optional extra: {exc}[/]")
    out.print(table)
    _spec_table("suite", ["suite", "metrics"], lambda s: [s.suite, ", ".join(m.name for m in s.metrics)])
    out.print("`regbench list metrics NAME` shows a plugin's options with their types and meaning.")


def _plugin_keys(name: str) -> dict[str, bool]:
    """A registered plugin's keys, or none when it needs an extra that is not installed."""
    from regbench.metrics import METRICS

    try:
        return dict(METRICS.get(name).keys)
    except ImportError:
        return {}


def _show_metric(name: str) -> None:
    """One metric plugin in full (keys with direction, scale and range; options), or a suite's members."""
    from rich.markup import escape
    from rich.table import Table

    from regbench.errors import UnknownNameError
    from regbench.metrics import METRICS
    from regbench.registry import describe_options, find_spec, spec_index
    from regbench.spec import SuiteSpec, load_spec

    if name not in METRICS and name in spec_index("suite"):
        suite: SuiteSpec = load_spec(find_spec("suite", name), SuiteSpec)
        out.print(f"suite {name} ({suite.source}): {suite.description}".rstrip(": "), highlight=False)
        for member in suite.metrics:
            out.print(f"  - {member.name} {member.options or ''}".rstrip(), highlight=False)
        for member_name in dict.fromkeys(m.name for m in suite.metrics):
            out.print()
            _show_metric(member_name)
        return
    if name not in METRICS:  # a key (bleu4) is looked up more often than its plugin (nlg)
        owners = [n for n in METRICS.names() if name in _plugin_keys(n)]
        if owners:
            raise UnknownNameError(f"{name!r} is a metric key, not a plugin: it is reported by {', '.join(owners)}")
    plugin = METRICS.get(name)  # an unknown name: exit 2 with did-you-mean
    doc = " ".join((plugin.__doc__ or "").split())
    out.print(f"[bold]{name}[/]: {escape(doc)}", highlight=False)
    keys = Table("key", "direction", "scale", "range", title=f"{name}: keys")
    for key in plugin.keys:
        facts = plugin.facts(key)
        low, high = facts.bounds
        direction = "higher is better" if facts.higher_is_better else "lower is better"
        scale = "fraction (x100 in tables)" if facts.scale == "fraction" else "raw"
        span = f"{'-inf' if low is None else f'{low:g}'} to {'inf' if high is None else f'{high:g}'}"
        keys.add_row(key, direction, scale, span)
    out.print(keys)
    options = describe_options(plugin.Options)
    if not options:
        out.print(f"{name} takes no options.")
        return
    table = Table("option", "type", "default", "meaning", title=f"{name}: options (in a task's metrics: entry)")
    for option in options:
        table.add_row(option.name, escape(option.type), escape(option.default), escape(option.description))
    out.print(table)


@list_app.command("formats")
def list_formats() -> None:
    """Box formats that model outputs can be parsed in."""
    from regbench.parsing import BOX_FORMATS

    for name in BOX_FORMATS.names():
        out.print(name)


data_app = typer.Typer(help="Inspect task data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
@user_errors
def data_check(
    task: Annotated[list[str], typer.Argument(help="Task or group names, or task YAML paths.")],
) -> None:
    """Load each task's data and report what its samples lack for the task's family."""
    from regbench.collector import gc_paused
    from regbench.data import load_split
    from regbench.data.check import check_samples, unreadable_images
    from regbench.resolve import resolve_tasks

    failed = False
    for spec in resolve_tasks(task):
        with gc_paused():
            split = load_split(spec)
        samples = split.samples
        problems = check_samples(spec, samples) + unreadable_images(samples)
        if spec.dataset.size is not None and len(samples) != spec.dataset.size:
            problems.insert(
                0, f"the split loads {len(samples)} samples; the task pins dataset.size: {spec.dataset.size}"
            )
        status = "[green]ok[/]" if not problems else f"[red]{len(problems)} problem(s)[/]"
        out.print(f"{spec.task}: {len(samples)} samples, {status}, skipped {split.n_skipped} records")
        for line in split.skipped[:20]:
            out.print(f"  skipped: {line}", highlight=False, soft_wrap=True)
        if len(split.skipped) > 20:
            out.print(f"  ... and {len(split.skipped) - 20} more skipped")
        for line in problems[:20]:
            out.print(f"  - {line}", highlight=False, soft_wrap=True)
        if len(problems) > 20:
            out.print(f"  ... and {len(problems) - 20} more")
        failed |= bool(problems)
    if failed:
        raise typer.Exit(1)


@data_app.command("export")
@user_errors
def data_export(
    task: Annotated[str, typer.Argument(help="Task name or task YAML path.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The canonical JSONL file to write.")],
    limit: LimitOpt = None,
) -> None:
    """Write the samples a task loads as canonical JSONL (every Sample field, in the reader's order)."""
    from regbench.collector import gc_paused
    from regbench.data import load_split
    from regbench.data.export import write_canonical
    from regbench.resolve import resolve_tasks

    specs = resolve_tasks([task])
    if len(specs) != 1:
        raise RegbenchError(f"data export writes one task; {task!r} names {len(specs)} (a group): name one of them")
    with gc_paused():  # a reader prints ``skipped N records`` on stderr as loading ends
        write_canonical(load_split(specs[0], limit=limit).samples, output)


@export_app.command("lm-eval")
@user_errors
def export_lm_eval(
    out_dir: Annotated[Path, typer.Argument(help="The lm-eval include directory to write (--include_path).")],
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task or group names, or task YAML paths.")],
    box_format: Annotated[
        str, typer.Option("--box-format", callback=_box_format, help="Box format of the prompts and of the parsing.")
    ] = "medrega",
    image_placeholder: Annotated[
        str,
        typer.Option(
            "--image-placeholder",
            help="Put before the prompt once per image, where lm-eval's local multimodal models place it "
            "('' for none).",
        ),
    ] = "<image>",
) -> None:
    """Tasks as an lm-evaluation-harness include directory scored by regbench's own metrics (one-turn tasks)."""
    from rich.markup import escape

    from regbench.export_lmeval import export_tasks
    from regbench.resolve import resolve_tasks

    result = export_tasks(resolve_tasks(task), out_dir, box_format=box_format, image_placeholder=image_placeholder)
    for note in result.skipped:
        err.print(f"[yellow]not exported:[/yellow] {escape(note)}", highlight=False)
    for path in result.written:
        out.print(str(path), highlight=False)
    groups = ",".join(g for g in result.groups if not g.endswith("_text"))
    out.print(
        f"run with: lm_eval --include_path {out_dir} --tasks {groups} --model ... --apply_chat_template "
        "--log_samples --output_path lm_results   (text-only models: the *_text groups)",
        highlight=False,
    )
    out.print(
        f"then, if you like: regbench score --task TASK --box-format {box_format} "
        "--predictions lm_results/<model>/samples_TASK_<time>.jsonl   (the same numbers, with intervals)",
        highlight=False,
    )


register_gate_command(app)
register_report_commands(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print(INTERRUPTED)
        sys.exit(130)
