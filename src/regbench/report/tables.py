"""Paper-style tables (LaTeX with booktabs, and Markdown) from collected runs.

One table per task: models as rows, metrics as columns grouped under headers (a preset lays
them out the way a seed paper does, e.g. MedRegA's Table 3: Object-Level / Region-Level /
Alignment with P, R, F1 under each). Values have fixed decimals and are shown as their plugin
class's ``scale`` says (:meth:`regbench.metrics.Metric.facts`): a ``fraction`` x100, a ``raw``
value (CIDEr-D, RadCliQ) as it is; per column the best value is bold and the second
underlined (italic in Markdown), following each metric's direction.

The plugin of a key is the one results.json names (``plugins``). When this installation does
not have it (or the file names none), the column is shown x100 if every value in it lies in
[0, 1], else as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from regbench.errors import RegbenchError
from regbench.metrics import Scale, metric_facts
from regbench.report.collect import Collection
from regbench.results import Results


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass(frozen=True)
class Group:
    title: str
    columns: tuple[Column, ...]


def _group(title: str, *pairs: tuple[str, str]) -> Group:
    return Group(title, tuple(Column(k, label) for k, label in pairs))


PRF = (("precision", "P"), ("recall", "R"), ("f1", "F1"))
PRESETS: dict[str, tuple[Group, ...]] = {
    # MedRegA Table 3 / Table 4 (region-centric)
    "medrega_region": (
        _group("Object-Level", *((f"object_{k}", label) for k, label in PRF)),
        _group("Region-Level", *((f"region_{k}", label) for k, label in PRF)),
        _group("Alignment", *((f"alignment_{k}", label) for k, label in PRF)),
        _group("", ("iou", "IoU"), ("accuracy", "Acc")),
    ),
    # M4CXR Table II / MedRegA report tables: NLG then clinical efficacy
    "report": (
        _group(
            "NLG",
            ("bleu1", "B-1"),
            ("bleu4", "B-4"),
            ("meteor", "MTR"),
            ("rouge_l", "R-L"),
            ("cider", "CIDEr"),
            ("bertscore_f1", "BS"),
        ),
        _group(
            "Clinical efficacy",
            ("chexbert_f1_micro14", "mF1-14"),
            ("chexbert_f1_macro14", "MF1-14"),
            ("chexbert_f1_micro5", "mF1-5"),
            ("chexbert_f1_macro5", "MF1-5"),
            ("radgraph_f1", "RG"),
            ("radcliq_v1", "RadCliQ"),
        ),
    ),
    # MedRegA Table 1 (VQA)
    "vqa": (
        _group("Closed", ("closed_accuracy", "Acc")),
        _group("Open", ("open_recall", "Recall"), ("open_accuracy", "Acc")),
        _group("All", ("token_f1", "F1"), ("bleu1", "BLEU-1"), ("exact_match", "EM"), ("bertscore_f1", "BS")),
    ),
    # MedRegA Table 2 (region-to-text)
    "region_to_text": (
        _group(
            "",
            ("bleu1", "BLEU-1"),
            ("token_f1", "F1"),
            ("token_recall", "Recall"),
            ("accuracy", "Acc"),
            ("bertscore_f1", "BS"),
        ),
    ),
    "classification": (
        _group(
            "",
            ("accuracy", "Acc"),
            ("f1_macro", "Macro-F1"),
            ("f1_micro", "Micro-F1"),
            ("f1_samples", "Sample-F1"),
            ("auroc", "AUROC"),
        ),
    ),
    "grounding": (
        _group(
            "",
            ("acc_iou50", "Acc@0.5"),
            ("miou", "mIoU"),
            ("hit_rate", "Hit"),
            ("l1", "l1"),
            ("giou", "GIoU"),
            ("giou_loss", "1-GIoU"),
        ),
    ),
}
FAMILY_PRESET = {
    "detection": "detection",
    "grounded_report": "grounded_report",
    "report": "report",
    "vqa": "vqa",
    "region_identification": "region_to_text",
    "classification": "classification",
}
PRESETS["detection"] = PRESETS["medrega_region"] + PRESETS["grounding"]
PRESETS["grounded_report"] = PRESETS["report"] + PRESETS["medrega_region"]


@dataclass
class Table:
    task: str
    family: str
    groups: list[Group]
    models: list[str]
    values: dict[str, dict[str, float]]
    higher_is_better: dict[str, bool]
    scales: dict[str, Scale] = field(default_factory=dict)
    """Key -> how its column is shown (``fraction``: x100); a key not here is a fraction."""


def build_tables(collection: Collection, *, preset: str = "auto") -> list[Table]:
    """A table per task, its columns laid out by the preset (``auto``: by task family)."""
    if preset != "auto" and preset not in PRESETS:
        raise RegbenchError(f"unknown preset {preset!r}; choose auto or one of: {', '.join(sorted(PRESETS))}")
    by_task: dict[str, list] = {}
    for run in collection.runs:
        by_task.setdefault(run.results.task, []).append(run.results)
    tables = []
    for task, runs in by_task.items():
        present = {k for r in runs for k in r.metrics}
        name = FAMILY_PRESET.get(runs[0].family, "") if preset == "auto" else preset
        layout = PRESETS.get(name, ())
        groups = [Group(g.title, tuple(c for c in g.columns if c.key in present)) for g in layout]
        groups = [g for g in groups if g.columns]
        placed = {c.key for g in groups for c in g.columns}
        rest = [k for k in sorted(present) if k not in placed]
        if rest:  # metrics the preset does not place still appear, in a group of their own
            groups.append(Group("Other" if groups else "", tuple(Column(k, k) for k in rest)))
        directions = {k: v for r in runs for k, v in r.higher_is_better.items()}
        scales = {k: column_scale(runs, k) for k in sorted(present)}
        tables.append(
            Table(
                task,
                runs[0].family,
                groups,
                [r.model for r in runs],
                {r.model: r.metrics for r in runs},
                directions,
                scales,
            )
        )
    return tables


def column_scale(runs: Sequence[Results], key: str) -> Scale:
    """How a key's column is shown: as its plugin class says (the first run naming a plugin this
    installation knows), else ``fraction`` when every value lies in [0, 1] and ``raw`` otherwise."""
    for run in runs:
        facts = metric_facts(run.plugins.get(key), key)
        if facts is not None:
            return facts.scale
    values = [r.metrics[key] for r in runs if key in r.metrics]
    return "fraction" if all(0.0 <= v <= 1.0 for v in values) else "raw"


def _scaled(table: Table, key: str, value: float) -> float:
    return value * 100 if table.scales.get(key, "fraction") == "fraction" else value


def _places(table: Table, key: str) -> dict[str, int]:
    """1 for the best model(s) in a column, 2 for the second best value."""
    values = {m: table.values[m][key] for m in table.models if key in table.values[m]}
    distinct = sorted(set(values.values()), reverse=table.higher_is_better.get(key, True))
    return {m: distinct.index(v) + 1 for m, v in values.items() if distinct.index(v) < 2}


def _rows(
    table: Table, columns: Sequence[Column], decimals: int, marks: tuple[str, str, str]
) -> list[tuple[str, list[str]]]:
    """Each model's formatted cells: x100, best and second marked, a dash where missing."""
    best, second, missing = marks
    places = {c.key: _places(table, c.key) for c in columns}
    rows = []
    for model in table.models:
        cells = []
        for column in columns:
            value = table.values[model].get(column.key)
            if value is None:
                cells.append(missing)
                continue
            text = f"{_scaled(table, column.key, value):.{decimals}f}"
            place = places[column.key].get(model)
            cells.append(best % text if place == 1 else second % text if place == 2 else text)
        rows.append((model, cells))
    return rows


def _label(mapping: Mapping[str, str], name: str) -> str:
    return mapping.get(name, name)


def _latex_escape(text: str) -> str:
    for char, replacement in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
    ):
        text = text.replace(char, replacement)
    return text


def to_latex(
    tables: Sequence[Table], *, decimals: int = 2, labels: Mapping[str, str] | None = None, standalone: bool = False
) -> str:
    """booktabs tables; ``standalone`` wraps them in a compilable article."""
    labels = labels or {}
    chunks = []
    for table in tables:
        columns = [c for g in table.groups for c in g.columns]
        header_groups = []
        rules = []
        start = 2
        for group in table.groups:
            width = len(group.columns)
            header_groups.append(
                rf"\multicolumn{{{width}}}{{c}}{{{_latex_escape(group.title)}}}"
                if group.title
                else " & ".join([""] * width)
                if width > 1
                else ""
            )
            if group.title:
                rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        arrows = [("" if table.higher_is_better.get(c.key, True) else r"$\downarrow$") for c in columns]
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{_latex_escape(_label(labels, table.task))}}}",
            r"\resizebox{\linewidth}{!}{%" if len(columns) > 9 else "",
            r"\begin{tabular}{l" + "c" * len(columns) + "}",
            r"\toprule",
        ]
        if any(g.title for g in table.groups):
            lines.append(" & " + " & ".join(header_groups) + r" \\")
            lines.append(" ".join(rules))
        lines.append(
            "Model & "
            + " & ".join(_latex_escape(_label(labels, c.label)) + a for c, a in zip(columns, arrows, strict=True))
            + r" \\"
        )
        lines.append(r"\midrule")
        marks = (r"\textbf{%s}", r"\underline{%s}", "--")
        for model, cells in _rows(table, columns, decimals, marks):
            lines.append(_latex_escape(_label(labels, model)) + " & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}" + ("}" if len(columns) > 9 else ""), r"\end{table}"]
        chunks.append("\n".join(line for line in lines if line))
    body = "\n\n".join(chunks) + "\n"
    if not standalone:
        return "% regbench tables: \\usepackage{booktabs,graphicx}\n" + body
    return "\\documentclass{article}\n\\usepackage{booktabs,graphicx}\n\\begin{document}\n" + body + "\\end{document}\n"


def to_markdown(tables: Sequence[Table], *, decimals: int = 2, labels: Mapping[str, str] | None = None) -> str:
    """GitHub Markdown tables: group titles prefix the column labels; best bold, second italic."""
    labels = labels or {}
    chunks = []
    for table in tables:
        columns = [(g.title, c) for g in table.groups for c in g.columns]
        header = ["Model"] + [
            (f"{title} " if title else "")
            + _label(labels, c.label)
            + ("" if table.higher_is_better.get(c.key, True) else " ↓")
            for title, c in columns
        ]
        lines = [
            f"### {_label(labels, table.task)}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" + "---:|" * len(columns),
        ]
        for model, cells in _rows(table, [c for _, c in columns], decimals, ("**%s**", "_%s_", "–")):
            lines.append("| " + " | ".join([_label(labels, model), *cells]) + " |")
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n"
