"""The reporting commands: ``leaderboard``, ``export latex|markdown``, ``plot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regbench.errors import RegbenchError

export_app = typer.Typer(help="Paper-style tables from the results under a directory.", no_args_is_help=True)

DirArg = Annotated[Path, typer.Argument(help="Directory searched for results.json files (e.g. runs/).")]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write.")]
PresetOpt = Annotated[
    str, typer.Option("--preset", help="Column layout: auto (by task family), medrega_region, report, vqa, ...")
]
LabelsOpt = Annotated[
    Path | None, typer.Option("--labels", help="YAML or JSON mapping of model / task / metric names to labels.")
]
DecimalsOpt = Annotated[int, typer.Option("--decimals", min=0, max=6, help="Decimals after x100.")]


def _collect(directory: Path):  # type: ignore[no-untyped-def]
    from regbench.cli import err
    from regbench.report.collect import collect

    collection = collect(directory)
    for note in collection.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    if not collection.runs:
        raise RegbenchError(f"no usable results.json under {directory}")
    return collection


def _labels(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise RegbenchError(f"labels file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise RegbenchError(f"{path}: expected a mapping of names to labels")
    return {str(k): v for k, v in data.items()}


def leaderboard(
    directory: DirArg,
    output: OutOpt,
    html: Annotated[bool, typer.Option("--html", help="Also write a self-contained page beside the JSON.")] = False,
) -> None:
    """Collect every results.json under DIR into one leaderboard JSON (and a web page)."""
    from regbench.cli import out
    from regbench.report.leaderboard import build_leaderboard

    collection = _collect(directory)
    board = build_leaderboard(collection, source=str(directory))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.print(f"{len(collection.runs)} runs, {len(board['tasks'])} tasks → {output}")
    if html:
        from regbench.report.html import render_html

        page = output.with_suffix(".html")
        page.write_text(render_html(board, collection), encoding="utf-8")
        out.print(f"page → {page}")


@export_app.command("latex")
def export_latex(
    directory: DirArg,
    output: OutOpt,
    preset: PresetOpt = "auto",
    labels: LabelsOpt = None,
    decimals: DecimalsOpt = 2,
    standalone: Annotated[bool, typer.Option("--standalone", help="A compilable document, not only tables.")] = False,
) -> None:
    """booktabs tables: grouped headers, values x100, best bold, second underlined."""
    from regbench.report.tables import build_tables, to_latex

    tables = build_tables(_collect(directory), preset=preset)
    _write(output, to_latex(tables, decimals=decimals, labels=_labels(labels), standalone=standalone), len(tables))


@export_app.command("markdown")
def export_markdown(
    directory: DirArg, output: OutOpt, preset: PresetOpt = "auto", labels: LabelsOpt = None, decimals: DecimalsOpt = 2
) -> None:
    """Markdown tables: best bold, second italic."""
    from regbench.report.tables import build_tables, to_markdown

    tables = build_tables(_collect(directory), preset=preset)
    _write(output, to_markdown(tables, decimals=decimals, labels=_labels(labels)), len(tables))


def _write(output: Path, text: str, n_tables: int) -> None:
    from regbench.cli import out

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    out.print(f"{n_tables} tables → {output}")


@export_app.command("lm-eval")
def export_lm_eval(
    out_dir: Annotated[Path, typer.Argument(help="Directory for the lm-eval task YAMLs and data.")],
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task or group names, or task YAML paths.")],
    box_format: Annotated[str, typer.Option("--box-format", help="Box format written into prompts.")] = "medrega",
) -> None:
    """Tasks as lm-evaluation-harness YAMLs (prompts rendered here; first turn; exact match)."""
    from regbench.cli import _task_specs, out
    from regbench.export_lmeval import export_task

    for spec in _task_specs(task):
        path, _ = export_task(spec, out_dir, box_format=box_format)
        out.print(str(path))
    out.print(f"run with: lm_eval --include_path {out_dir} --tasks <task> --model ...")


def plot(
    directory: DirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the charts.")] = Path("plots"),
    fmt: Annotated[str, typer.Option("--format", help="png or svg.")] = "png",
) -> None:
    """Charts: metric bars with intervals, family radar, IoU distribution, parse-failure rates."""
    from regbench.cli import out
    from regbench.report.plots import all_plots

    if fmt not in ("png", "svg"):
        raise RegbenchError(f"--format: expected png or svg, got {fmt!r}")
    for path in all_plots(_collect(directory), output, fmt):
        out.print(str(path))


def register(app: typer.Typer) -> None:
    """Add the reporting commands to the `regbench` app."""
    from regbench.cli import user_errors

    app.command("leaderboard")(user_errors(leaderboard))
    app.command("plot")(user_errors(plot))
    for command in export_app.registered_commands:
        command.callback = user_errors(command.callback)  # type: ignore[arg-type]
    app.add_typer(export_app, name="export")
