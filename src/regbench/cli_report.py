"""The reporting commands of ``regbench``: ``leaderboard``, ``export latex|markdown``, ``plot``.

They read the results.json files under a directory (:mod:`regbench.report` does the work)
and write files; :func:`register` adds them to the ``regbench`` app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from regbench.console import err, out, user_errors
from regbench.errors import RegbenchError

if TYPE_CHECKING:
    from regbench.report.collect import Collection

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
MaxFailureOpt = Annotated[
    float,
    typer.Option(
        "--max-failure-rate",
        min=0.0,
        max=1.0,
        help="A run whose failed samples (request errors + parse failures) are more than this share of its "
        "samples is ranked and shown nowhere (listed with why).",
    ),
]
DEFAULT_MAX_FAILURE_RATE = 0.5  # the same as regbench.report.collect's (not imported: --help stays light)


def _collect(directory: Path, max_failure_rate: float) -> Collection:
    from regbench.report.collect import collect

    collection = collect(directory, max_failure_rate=max_failure_rate)
    for note in collection.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if not collection.runs:
        if collection.excluded:
            raise RegbenchError(
                f"every results.json under {directory} was set aside (more than {max_failure_rate:.0%} of its "
                "samples failed); nothing to report (--max-failure-rate sets the threshold)"
            )
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


@user_errors
def leaderboard(
    directory: DirArg,
    output: OutOpt,
    html: Annotated[bool, typer.Option("--html", help="Also write a self-contained page beside the JSON.")] = False,
    max_failure_rate: MaxFailureOpt = DEFAULT_MAX_FAILURE_RATE,
) -> None:
    """Collect every results.json under DIR into one leaderboard JSON (and a web page)."""
    from regbench.report.leaderboard import build_leaderboard

    collection = _collect(directory, max_failure_rate)
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
@user_errors
def export_latex(
    directory: DirArg,
    output: OutOpt,
    preset: PresetOpt = "auto",
    labels: LabelsOpt = None,
    decimals: DecimalsOpt = 2,
    standalone: Annotated[bool, typer.Option("--standalone", help="A compilable document, not only tables.")] = False,
    max_failure_rate: MaxFailureOpt = DEFAULT_MAX_FAILURE_RATE,
) -> None:
    """booktabs tables: grouped headers, values x100, best bold, second underlined."""
    from regbench.report.tables import build_tables, to_latex

    tables = build_tables(_collect(directory, max_failure_rate), preset=preset)
    _write(output, to_latex(tables, decimals=decimals, labels=_labels(labels), standalone=standalone), len(tables))


@export_app.command("markdown")
@user_errors
def export_markdown(
    directory: DirArg,
    output: OutOpt,
    preset: PresetOpt = "auto",
    labels: LabelsOpt = None,
    decimals: DecimalsOpt = 2,
    max_failure_rate: MaxFailureOpt = DEFAULT_MAX_FAILURE_RATE,
) -> None:
    """Markdown tables: best bold, second italic."""
    from regbench.report.tables import build_tables, to_markdown

    tables = build_tables(_collect(directory, max_failure_rate), preset=preset)
    _write(output, to_markdown(tables, decimals=decimals, labels=_labels(labels)), len(tables))


def _write(output: Path, text: str, n_tables: int) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    out.print(f"{n_tables} tables → {output}")


@user_errors
def plot(
    directory: DirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the charts.")] = Path("plots"),
    fmt: Annotated[str, typer.Option("--format", help="png or svg.")] = "png",
    max_failure_rate: MaxFailureOpt = DEFAULT_MAX_FAILURE_RATE,
) -> None:
    """Charts: metric bars with intervals, family radar, IoU distribution, parse-failure rates."""
    from regbench.report.plots import all_plots

    if fmt not in ("png", "svg"):
        raise RegbenchError(f"--format: expected png or svg, got {fmt!r}")
    for path in all_plots(_collect(directory, max_failure_rate), output, fmt):
        out.print(str(path))


def register(app: typer.Typer) -> None:
    """Add ``leaderboard``, ``plot`` and the ``export`` group to the ``regbench`` app."""
    app.command("leaderboard")(leaderboard)
    app.command("plot")(plot)
    app.add_typer(export_app, name="export")
