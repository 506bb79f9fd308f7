"""Paper-style tables (LaTeX with booktabs, and Markdown) from collected runs.

One table per task: models as rows, metrics as columns grouped under headers. A preset lays
the columns out: a family preset (``auto`` picks one by task family) places the metrics it knows
the way a seed paper does and every other metric in its own group under a display name
(:func:`catalog_column`); a paper preset (``m4cxr_ce``, ``medrega_detection``, ...) shows the
columns of that paper's table in its order and lists the other metrics under the table.

Values have fixed decimals and are shown as their plugin class's ``scale`` says
(:meth:`regbench.metrics.Metric.facts`), or as the preset says where the paper differs: a
``fraction`` x100, a ``raw`` value (CIDEr-D, RadCliQ) as it is. The plugin of a key is the one
results.json names (``plugins``); when this installation does not have it (or the file names
none), the column is shown x100 if every value in it lies in [0, 1], else as it is.

Marks follow the leaderboard's rules (:func:`regbench.report.leaderboard.marks`): per column the
best value is bold and the second underlined (italic in Markdown) among the rows scored the same
way only (one signature group); ties are all best; the second value is marked only when it is
not also the last; a row alone in its signature group is compared with nothing and not marked.
A row scored differently gets a symbol (†, ‡, ...) that the caption or the note under the table
explains, e.g. "† IoU threshold 0.3 instead of 0.5".

Only the runs :func:`regbench.report.collect.screen` keeps are rows (a run that mostly failed is
left out and named on stderr). A run over another set of samples than the task's reference set is a
row with its values, compared and marked with nothing, and a symbol whose note says why
("scored on 5 samples (--limit 5), not the 6 samples the 2 ranked runs share"). Every table says
each row's sample count, failed requests and parse failures (in the caption, or under the
Markdown table).

A LaTeX table is set at the largest of normal, small and footnote size at which its estimated
width fits the column (character widths of Computer Modern's footnote-size fonts: close at
that size, generous above it); else across both columns of a two-column page (``table*``);
else split in two, at group boundaries where that fits; else turned sideways
(``sidewaystable``); else split in more parts. Nothing is set below footnote size or scaled.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

from regbench.errors import RegbenchError
from regbench.metrics import Scale, metric_facts
from regbench.metrics.chexbert import CONDITIONS, slug
from regbench.report.collect import Collection
from regbench.report.leaderboard import describe_difference, marks, signature_groups
from regbench.results import Results


@dataclass(frozen=True)
class Column:
    """One metric column: the key it shows and its header."""

    key: str
    label: str
    latex: str | None = None
    """The header in LaTeX where plain text cannot say it (``$\\ell_1$``); else ``label``, escaped."""
    scale: Scale | None = None
    """How the values are shown where a paper differs from the plugin (VividMed prints l1 as it is)."""


@dataclass(frozen=True)
class Group:
    title: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Preset:
    """A column layout."""

    groups: tuple[Group, ...]
    source: str = ""
    """The paper table it follows, named in LaTeX captions."""
    only: bool = False
    """Show these columns only (a paper's table); the task's other metrics are listed under it."""
    families: tuple[str, ...] = ()
    """The task families the paper's table is about (a VQA task's BLEU-1 is not M4CXR's); empty: any."""


def _group(title: str, *columns: tuple[str, str] | Column) -> Group:
    return Group(title, tuple(c if isinstance(c, Column) else Column(*c) for c in columns))


# -- display names: every key a built-in plugin reports has a group and a label ---------------------
LEVELS = {"object": "Object-Level", "region": "Region-Level", "alignment": "Alignment"}
PRF = (("precision", "P"), ("recall", "R"), ("f1", "F1"))
CONDITION_GROUP = "CheXbert F1"
CATALOG: dict[str, tuple[str, dict[str, str]]] = {
    "nlg": (
        "NLG",
        {
            "bleu1": "BLEU-1",
            "bleu2": "BLEU-2",
            "bleu3": "BLEU-3",
            "bleu4": "BLEU-4",
            "meteor": "METEOR",
            "rouge_l": "ROUGE-L",
            "cider": "CIDEr",
        },
    ),
    "rouge1": ("NLG", {"rouge1": "ROUGE-1"}),
    "bertscore": ("NLG", {"bertscore_p": "BERTScore-P", "bertscore_r": "BERTScore-R", "bertscore_f1": "BERTScore"}),
    "chexbert": (
        "Clinical efficacy",
        {
            "chexbert_f1_micro14": "mF1-14",
            "chexbert_f1_macro14": "MF1-14",
            "chexbert_f1_micro5": "mF1-5",
            "chexbert_f1_macro5": "MF1-5",
            "chexbert_f1_example14": "eF1-14",
            "chexbert_accuracy5": "Acc-5",
            "chexbert_similarity": "CheXbert sim.",
        },
    ),
    "radgraph": (
        "Clinical efficacy",
        {
            "radgraph_f1": "RadGraph",
            "radgraph_f1_simple": "RG-simple",
            "radgraph_f1_partial": "RG-partial",
            "radgraph_f1_complete": "RG-complete",
            "radgraph_f1_entity": "RG-entity",
            "radgraph_f1_relation": "RG-relation",
        },
    ),
    "radcliq": ("Clinical efficacy", {"radcliq_v0": "RadCliQ-v0", "radcliq_v1": "RadCliQ-v1"}),
    "llm_judge": (
        "Judged",
        {"judge_accuracy": "Judge Acc", "judge_score": "Judge score", "judge_parse_failures": "Judge parse fail."},
    ),
    "green": (
        "Judged",
        {
            "green": "GREEN",
            **{f"green_errors_{c}": f"GREEN err. ({c})" for c in "abcdef"},
            "green_matched": "GREEN matched",
            "judge_parse_failures": "Judge parse fail.",
        },
    ),
    "vqa": (
        "VQA",
        {
            "closed_accuracy": "Closed Acc",
            "open_recall": "Open Recall",
            "open_accuracy": "Open Acc",
            "token_f1": "F1",
            "token_recall": "Recall",
            "exact_match": "EM",
            "bleu1": "BLEU-1",
        },
    ),
    "region_to_text": (
        "Region-to-text",
        {"bleu1": "BLEU-1", "token_f1": "F1", "token_recall": "Recall", "accuracy": "Acc"},
    ),
    "classification": (
        "Classification",
        {
            "accuracy": "Acc",
            "f1_macro": "Macro-F1",
            "f1_micro": "Micro-F1",
            "f1_samples": "Sample-F1",
            "auroc": "AUROC",
        },
    ),
    "region_aligned": (
        "Region-aligned",
        {f"{level}_{m}": label for level in LEVELS for m, label in PRF} | {"iou": "IoU", "accuracy": "Acc"},
    ),
    "grounding": ("Grounding", {"acc_iou50": "Acc@0.5", "miou": "mIoU", "hit_rate": "Hit"}),
    "box_regression": ("Box regression", {"l1": "ℓ1", "giou": "GIoU", "giou_loss": "1−GIoU"}),
    "semantic_entropy": (
        "Uncertainty",
        {
            "semantic_entropy": "SE",
            "discrete_semantic_entropy": "DSE",
            "semantic_entropy_xmedgpt": "SE (XMedGPT)",
            "auroc_semantic_entropy": "AUROC SE",
            "auroc_discrete_semantic_entropy": "AUROC DSE",
            "auroc_semantic_entropy_xmedgpt": "AUROC SE (XMedGPT)",
            "aurac_semantic_entropy": "AURAC SE",
            "aurac_discrete_semantic_entropy": "AURAC DSE",
            "aurac_semantic_entropy_xmedgpt": "AURAC SE (XMedGPT)",
            "nli_parse_failures": "NLI parse fail.",
        },
    ),
    "kendall_tau": ("Agreement", {"kendall_tau": "Kendall τ-b", "kendall_tau_p": "τ-b P"}),
    "prognosis": ("Prognosis", {"prognosis_auc": "AUC", "prognosis_accuracy": "Acc", "logrank_p": "Log-rank P"}),
}
CONDITION_LABELS = {f"chexbert_f1_{slug(c)}": c for c in CONDITIONS}
LATEX_LABELS = {"ℓ1": r"$\ell_1$", "1−GIoU": r"1$-$GIoU", "Kendall τ-b": r"Kendall $\tau_b$", "τ-b P": r"$\tau_b$ P"}
"""Labels pdflatex cannot set as text."""
_HOME: dict[str, str] = {}
"""Key -> the first plugin that reports it (for results.json files that name no plugin)."""
for _plugin, (_, _labels) in CATALOG.items():
    for _key in _labels:
        _HOME.setdefault(_key, _plugin)
_HOME.update(dict.fromkeys(CONDITION_LABELS, "chexbert"))
_ORDER = {key: i for i, key in enumerate([*_HOME, *CONDITION_LABELS])}


def catalog_column(key: str, plugin: str | None = None) -> tuple[str, Column]:
    """The group title and column of a metric key reported by ``plugin``: the catalogue's for a
    built-in plugin's key; for a key it does not know, a group named after its plugin."""
    plugin = plugin if plugin in CATALOG else _HOME.get(key, plugin)
    if plugin == "chexbert" and key in CONDITION_LABELS:
        return CONDITION_GROUP, Column(key, CONDITION_LABELS[key])
    if plugin in CATALOG and key in CATALOG[plugin][1]:
        title, labels = CATALOG[plugin]
        level = key.partition("_")[0]
        if plugin == "region_aligned" and level in LEVELS:
            title = LEVELS[level]
        label = labels[key]
        return title, Column(key, label, LATEX_LABELS.get(label))
    return plugin or "", Column(key, key)


# -- presets -----------------------------------------------------------------------------------------
def _levels(*levels: str) -> tuple[Group, ...]:
    return tuple(_group(LEVELS[level], *((f"{level}_{m}", label) for m, label in PRF)) for level in levels)


_MEDREGA_REGION = (*_levels("object", "region", "alignment"), _group("", ("iou", "IoU"), ("accuracy", "Acc")))
_REPORT = (
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
        ("chexbert_f1_example14", "eF1-14"),
        ("radgraph_f1", "RG"),
        ("radcliq_v1", "RadCliQ"),
    ),
)
_GROUNDING = (
    _group(
        "",
        ("acc_iou50", "Acc@0.5"),
        ("miou", "mIoU"),
        ("hit_rate", "Hit"),
        ("l1", "l1"),
        ("giou", "GIoU"),
        ("giou_loss", "1-GIoU"),
    ),
)
PRESETS: dict[str, Preset] = {
    # family presets: every metric shown, the known ones where the seed papers put them
    "medrega_region": Preset(_MEDREGA_REGION),
    "report": Preset(_REPORT),
    "vqa": Preset(
        (
            _group("Closed", ("closed_accuracy", "Acc")),
            _group("Open", ("open_recall", "Recall"), ("open_accuracy", "Acc")),
            _group("All", ("token_f1", "F1"), ("bleu1", "BLEU-1"), ("exact_match", "EM"), ("bertscore_f1", "BS")),
        ),
    ),
    "region_to_text": Preset(
        (
            _group(
                "",
                ("bleu1", "BLEU-1"),
                ("token_f1", "F1"),
                ("token_recall", "Recall"),
                ("accuracy", "Acc"),
                ("bertscore_f1", "BS"),
            ),
        ),
    ),
    "classification": Preset(
        (
            _group(
                "",
                ("accuracy", "Acc"),
                ("f1_macro", "Macro-F1"),
                ("f1_micro", "Micro-F1"),
                ("f1_samples", "Sample-F1"),
                ("auroc", "AUROC"),
            ),
        )
    ),
    "grounding": Preset(_GROUNDING),
    "detection": Preset(_MEDREGA_REGION + _GROUNDING),
    "grounded_report": Preset(_REPORT + _MEDREGA_REGION),
    # paper presets: the columns of one seed paper's table, in its order, and nothing else
    "medrega_region_to_text": Preset(
        (
            _group(
                "",
                ("bleu1", "BLEU-1"),
                ("token_f1", "F1"),
                ("token_recall", "Recall"),
                ("accuracy", "Accuracy"),
                ("bertscore_f1", "BertScore"),
            ),
        ),
        "as MedRegA Table 2 (region-to-text identification)",
        only=True,
        families=("region_identification",),
    ),
    "medrega_detection": Preset(
        (
            *_levels("object"),
            _group("Region-Level", ("accuracy", "Acc"), *((f"region_{m}", label) for m, label in PRF)),
            *_levels("alignment"),
            _group("", ("iou", "IoU")),
        ),
        "as MedRegA Table 3 (text-to-region detection)",
        only=True,
        families=("detection",),
    ),
    "medrega_grounded_report": Preset(
        (
            _group("NLG", ("bleu1", "BLEU-1"), ("rouge_l", "ROUGE-L"), ("bertscore_f1", "BertScore")),
            _group("CE", ("chexbert_f1_micro14", "CheXBert"), ("radgraph_f1", "RadGraph"), ("radcliq_v1", "RadCliQ")),
            _group("Region-Aligned", ("object_f1", "Object"), ("region_f1", "Region"), ("alignment_f1", "Alignment")),
            _group("", ("iou", "IoU")),
        ),
        "as MedRegA Table 4 (grounded report generation)",
        only=True,
        families=("grounded_report", "report"),
    ),
    "m4cxr_ce": Preset(
        (
            _group(
                "CheXbert",
                ("chexbert_f1_micro14", "mF1-14"),
                ("chexbert_f1_micro5", "mF1-5"),
                ("chexbert_f1_macro14", "MF1-14"),
                ("chexbert_f1_macro5", "MF1-5"),
                ("chexbert_f1_example14", "eF1-14"),
            ),
            _group("RadGraph", ("radgraph_f1", "F1")),
            _group("BLEU", ("bleu1", "-1"), ("bleu4", "-4")),
            _group("ROUGE", ("rouge_l", "-L")),
        ),
        "as M4CXR Table III (report generation, clinical efficacy)",
        only=True,
        families=("report", "grounded_report"),
    ),
    "m3d_grounding": Preset(
        (
            _group("REC", ("miou", "IoU"), ("hit_rate", "Acc")),
            _group("REG", ("bleu1", "BLEU"), ("rouge1", "ROUGE"), ("meteor", "METEOR"), ("bertscore_f1", "BERT-Score")),
        ),
        "as M3D's 3D positioning evaluation (REC: IoU, accuracy at IoU > 0.2; REG: text metrics)",
        only=True,
        families=("detection", "region_identification"),
    ),
    "vividmed_grounding": Preset(
        (
            _group(
                "",
                ("dice", "Dice (%)"),
                Column("l1", "Mean ℓ1", r"Mean $\ell^1$", scale="raw"),
                Column("giou", "Mean GIoU", scale="raw"),
                Column("giou_loss", "Mean 1−GIoU", r"Mean 1$-$GIoU", scale="raw"),
            ),
        ),
        "as VividMed's grounding table (Dice, mean l1 and GIoU of matched boxes)",
        only=True,
        families=("detection", "grounded_report"),
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


@dataclass
class Table:
    """One task's table: its column groups, and every model's values and signatures."""

    task: str
    family: str
    groups: list[Group]
    models: list[str]
    values: dict[str, dict[str, float]]
    higher_is_better: dict[str, bool]
    scales: dict[str, Scale] = field(default_factory=dict)
    """Key -> how its column is shown (``fraction``: x100); a key not here is a fraction."""
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)
    """Model -> key -> signature: values are compared (and marked) only within a signature group."""
    omitted: list[str] = field(default_factory=list)
    """Keys of the task the preset does not show."""
    source: str = ""
    """The paper table the layout follows."""
    not_comparable: dict[str, str] = field(default_factory=dict)
    """Model -> why its run is not compared with the others (another sample set): shown, never marked."""
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """Model -> (samples, failed requests, parse failures) of its run."""


def build_tables(collection: Collection, *, preset: str = "auto") -> list[Table]:
    """A table per task, its columns laid out by the preset (``auto``: by task family); with a paper
    preset, only the tasks of its families that have one of its columns (an error if none has)."""
    if preset != "auto" and preset not in PRESETS:
        raise RegbenchError(f"unknown preset {preset!r}; choose auto or one of: {', '.join(sorted(PRESETS))}")
    by_task: dict[str, list[Results]] = {}
    apart: dict[str, dict[str, str]] = {}
    for run in collection.runs:
        by_task.setdefault(run.results.task, []).append(run.results)
        if not run.comparable:
            apart.setdefault(run.results.task, {})[run.results.model] = run.note
    tables = []
    for task, runs in by_task.items():
        plugins: dict[str, str | None] = {}
        for r in runs:  # the first run that names the key's plugin
            plugins.update({k: r.plugins.get(k) for k in r.metrics if not plugins.get(k)})
        layout = PRESETS.get(FAMILY_PRESET.get(runs[0].family, "") if preset == "auto" else preset)
        if layout and layout.families and runs[0].family not in layout.families:
            continue
        groups, omitted = _layout(layout, plugins)
        if not groups:
            continue
        tables.append(
            Table(
                task,
                runs[0].family,
                groups,
                [r.model for r in runs],
                {r.model: r.metrics for r in runs},
                {k: v for r in runs for k, v in r.higher_is_better.items()},
                {k: column_scale(runs, k) for k in sorted(plugins)},
                {r.model: r.signatures for r in runs},
                omitted,
                layout.source if layout else "",
                apart.get(task, {}),
                {r.model: (r.n_samples, r.n_errors, r.n_parse_failures) for r in runs},
            )
        )
    if not tables and collection.runs and preset != "auto":
        wanted = ", ".join(c.key for g in PRESETS[preset].groups for c in g.columns)
        families = f" among the {' / '.join(PRESETS[preset].families)} tasks" if PRESETS[preset].families else ""
        raise RegbenchError(f"preset {preset}: no task has any of its metrics{families} ({wanted})")
    return tables


def _layout(preset: Preset | None, plugins: Mapping[str, str | None]) -> tuple[list[Group], list[str]]:
    """The groups of a task's table and the keys left out: the preset's columns the task has, then
    (unless the preset shows its columns only) every other key under its catalogue group."""
    groups = [Group(g.title, tuple(c for c in g.columns if c.key in plugins)) for g in preset.groups] if preset else []
    groups = [g for g in groups if g.columns]
    placed = {c.key for g in groups for c in g.columns}
    rest = sorted((k for k in plugins if k not in placed), key=lambda k: (_ORDER.get(k, len(_ORDER)), k))
    if preset is not None and preset.only:
        return groups, rest
    extra: dict[str, list[Column]] = {}
    for key in rest:
        title, column = catalog_column(key, plugins[key])
        extra.setdefault(title, []).append(column)
    for title, columns in extra.items():
        at = next((i for i, g in enumerate(groups) if g.title == title and title), None)
        if at is None:  # a group of its own, after the preset's
            groups.append(Group(title, tuple(columns)))
        else:  # more of a group the preset has: beside it
            groups[at] = Group(title, groups[at].columns + tuple(columns))
    return groups, []


def column_scale(runs: Sequence[Results], key: str) -> Scale:
    """How a key's column is shown: as its plugin class says (the first run naming a plugin this
    installation knows), else ``fraction`` when every value lies in [0, 1] and ``raw`` otherwise."""
    for run in runs:
        facts = metric_facts(run.plugins.get(key), key)
        if facts is not None:
            return facts.scale
    values = [r.metrics[key] for r in runs if key in r.metrics]
    return "fraction" if all(0.0 <= v <= 1.0 for v in values) else "raw"


# -- cells, marks and notes (shared by LaTeX and Markdown) -------------------------------------------
@dataclass(frozen=True)
class _Cell:
    text: str
    """The formatted value; empty when the model has none."""
    place: int = 0
    """1 best, 2 second among the rows scored alike, else 0."""


@dataclass
class _Body:
    """A table's rows over some of its columns, with the notes they need."""

    rows: list[tuple[str, list[str], list[_Cell]]]
    """(model, its symbols, its cells)."""
    notes: list[tuple[str, str]]
    """(symbol, what it means)."""


SYMBOLS = ("†", "‡", "§", "¶", "‖")
LATEX_SYMBOLS = {"†": r"\dagger", "‡": r"\ddagger", "§": r"\S", "¶": r"\P", "‖": r"\|"}


def _symbol(i: int) -> str:
    return SYMBOLS[i % len(SYMBOLS)] * (i // len(SYMBOLS) + 1)


@dataclass(frozen=True)
class _Marked:
    """One column: each model's cell, and how the models scored differently were scored."""

    cells: dict[str, _Cell]
    apart: dict[str, str]
    """Model (in another signature group than the column's first) -> how it differs."""


def _mark(table: Table, column: Column, decimals: int) -> _Marked:
    """A column's cells, marked among the models of each signature group (runs over another sample set:
    among none)."""
    values = {m: table.values[m][column.key] for m in table.models if column.key in table.values[m]}
    compared = {m: v for m, v in values.items() if m not in table.not_comparable}
    found = signature_groups(compared, {m: table.signatures.get(m, {}).get(column.key, "") for m in compared})
    places = marks([g.values for g in found], table.higher_is_better.get(column.key, True))
    apart: dict[str, str] = {}
    for group in found[1:]:
        apart |= dict.fromkeys(group.values, describe_difference(found[0].signature, group.signature))
    scale = column.scale or table.scales.get(column.key, "fraction")
    cells = {}
    for model in table.models:
        value = values.get(model)
        text = "" if value is None else f"{value * 100 if scale == 'fraction' else value:.{decimals}f}"
        cells[model] = _Cell(text, places.get(model, 0))
    return _Marked(cells, apart)


def _marked(table: Table, decimals: int) -> dict[str, _Marked]:
    return {c.key: _mark(table, c, decimals) for g in table.groups for c in g.columns}


def _body(table: Table, groups: Sequence[Group], marked: Mapping[str, _Marked]) -> _Body:
    """The rows over the columns of ``groups``; rows in another signature group than a column's first
    get a symbol per way they were scored differently, explained in a note naming the columns."""
    columns = [(g.title, c) for g in groups for c in g.columns]
    differences: dict[str, dict[str, list[str]]] = {}  # how -> model -> column names
    for title, column in columns:
        for model, how in marked[column.key].apart.items():
            differences.setdefault(how, {}).setdefault(model, []).append(f"{title} {column.label}".strip())
    notes = []
    symbols: dict[str, list[str]] = {m: [] for m in table.models}
    for i, (how, models) in enumerate(differences.items()):
        symbol = _symbol(i)
        named = list(dict.fromkeys(name for names in models.values() for name in names))
        where = "all columns" if len(named) == len(columns) else ", ".join(named)
        notes.append((symbol, f"{how} ({where}); ranked apart, marked only among rows scored alike"))
        for model in models:
            symbols[model].append(symbol)
    others: dict[str, list[str]] = {}  # why not comparable -> models
    for model, why in table.not_comparable.items():
        others.setdefault(why, []).append(model)
    for i, (why, models) in enumerate(others.items(), start=len(differences)):
        notes.append((_symbol(i), f"{why}: not compared with the other rows, not marked"))
        for model in models:
            symbols[model].append(_symbol(i))
    rows = [(m, symbols[m], [marked[c.key].cells[m] for _, c in columns]) for m in table.models]
    return _Body(rows, notes)


def _label(mapping: Mapping[str, str], name: str) -> str:
    return mapping.get(name, name)


def counts_note(table: Table, labels: Mapping[str, str]) -> str:
    """Each row's samples, failed requests and parse failures, in one sentence (once when all agree)."""
    counts = [table.counts[m] for m in table.models if m in table.counts]
    if not counts:
        return ""

    def said(n: int, errors: int, unread: int) -> str:
        return f"n = {n}, failed requests {errors}, parse failures {unread}"

    if len(counts) == 1:
        return said(*counts[0])
    if len(set(counts)) == 1:
        return "Every row: " + said(*counts[0])
    rows = [f"{_label(labels, m)}: {said(*table.counts[m])}" for m in table.models if m in table.counts]
    return "Per row: " + "; ".join(rows)


# -- LaTeX ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """The room a LaTeX table has, in pt (default: the standard ``article`` class at 10pt)."""

    column_width: float = 345.0
    text_width: float = 345.0
    """Both columns of a two-column page (``table*``)."""
    text_height: float = 550.0
    """The width of a table turned sideways."""
    two_column: bool = False


PAGES = {"article": Page(), "twocolumn": Page(229.5, 469.0, 550.0, two_column=True)}


class Size(NamedTuple):
    command: str
    points: float
    """The font size."""
    sep: float
    """``\\tabcolsep``, pt."""


SIZES = (
    Size(r"\normalsize", 10.0, 6.0),
    Size(r"\small", 9.0, 5.0),
    Size(r"\footnotesize", 8.0, 4.0),
    Size(r"\footnotesize", 8.0, 3.0),
)
"""Tried in order; no smaller font (readable in print)."""
_SAFETY = 0.97
"""Room kept free: the width estimate is an upper bound for Computer Modern, not for every font."""
FLOATS_PER_PAGE_RUN = 8
# character widths of cmr8 and cmbx8 (regular and bold; the footnote-size designs, wider per point than
# the larger ones) in 1/1000 em, "!" to "~"
_ASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
_CMR8 = (
    "295 531 885 531 885 826 295 413 413 531 826 295 354 295 531 531 531 531 531 531 531 531 531 531 531 "
    "295 295 295 826 502 502 826 796 752 767 811 723 693 834 796 383 545 825 664 973 796 826 723 826 782 "
    "590 767 796 796 1091 796 796 649 295 531 295 531 295 295 531 590 472 590 472 325 531 590 295 325 "
    "561 295 885 590 531 590 561 414 419 413 590 561 767 561 561 472 531 1063 531 531"
)
_CMBX8 = (
    "373 636 1021 613 1021 953 340 476 476 613 953 340 408 340 613 613 613 613 613 613 613 613 613 613 "
    "613 340 340 373 953 578 578 953 922 869 885 938 803 769 962 955 459 631 956 735 1159 955 920 835 "
    "920 915 681 852 939 922 1263 922 922 749 340 636 340 613 340 340 595 681 544 681 561 374 613 681 "
    "340 374 647 340 1021 681 613 681 647 506 483 476 681 647 885 647 647 544 613 1225 613 613"
)
_EM = {
    bold: dict(zip(_ASCII, map(int, widths.split()), strict=True)) | {" ": 400}
    for bold, widths in ((False, _CMR8), (True, _CMBX8))
}


@functools.cache
def _ems(text: str, bold: bool) -> float:
    return sum(_EM[bold].get(char, 1000) for char in text) / 1000


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    """An estimate of the width of ``text`` set at ``size`` pt (1 em for a character not listed)."""
    return size * _ems(text, bold)


def _md_cell(text: str) -> str:
    """A Markdown table cell: a ``|`` in a name would start a new cell and shift every value after it."""
    return text.replace("|", "\\|")


def _latex_escape(text: str) -> str:
    # one pass, so the braces of a replacement (\textbackslash{}) are not escaped again
    return _LATEX_SPECIAL.sub(lambda match: _LATEX_REPLACEMENTS[match.group(0)], text)


_LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "--": "-{}-",  # an option (--limit 5) as typed, not an en dash
}
_LATEX_SPECIAL = re.compile("|".join(map(re.escape, _LATEX_REPLACEMENTS)))


def _header_label(table: Table, column: Column, labels: Mapping[str, str]) -> str:
    arrow = "" if table.higher_is_better.get(column.key, True) else r"$\downarrow$"
    if column.latex and column.label not in labels:
        return column.latex + arrow
    return _latex_escape(_label(labels, column.label)) + arrow


def _width(
    table: Table, groups: Sequence[Group], body: _Body, labels: Mapping[str, str], size: float, sep: float
) -> float:
    """Estimated width of the tabular (``@{}`` at both ends) at a font size and column separation."""
    symbol = 0.5 * size
    names = [_text_width(_label(labels, m), size) + symbol * len(s) for m, s, _ in body.rows]
    total = max([_text_width("Model", size), *names])
    index = 0
    for group in groups:
        widths = []
        for column in group.columns:
            arrow = 0.0 if table.higher_is_better.get(column.key, True) else size
            texts = [_text_width(_label(labels, column.label), size) + arrow]
            texts += [_text_width(c[index].text or "--", size, bold=c[index].place == 1) for _, _, c in body.rows]
            widths.append(max(texts) + 2 * sep)
            index += 1
        title = _text_width(_label(labels, group.title), size) + 2 * sep if group.title else 0.0
        total += max(sum(widths), title)  # a title wider than its columns widens the last one
    return total


def _fit(width: Callable[[float, float], float], room: float) -> Size | None:
    """The first of ``SIZES`` at which a table of this ``width(points, sep)`` fits ``room``."""
    return next((size for size in SIZES if width(size.points, size.sep) <= room * _SAFETY), None)


def _split(groups: Sequence[Group], parts: int, width: Callable[[Sequence[Group]], float]) -> list[list[list[Group]]]:
    """Ways to cut ``groups`` into ``parts`` consecutive pieces, each with the widest piece as narrow as
    it can be: with cuts between groups only, then anywhere (none when there are too few columns)."""
    units = [(i, g.title, c) for i, g in enumerate(groups) for c in g.columns]

    def regroup(piece: Sequence[tuple[int, str, Column]]) -> list[Group]:
        out: list[tuple[int, Group]] = []
        for i, title, column in piece:
            if out and out[-1][0] == i:
                out[-1] = (i, Group(title, (*out[-1][1].columns, column)))
            else:
                out.append((i, Group(title, (column,))))
        return [g for _, g in out]

    def best(cuts: Sequence[int]) -> tuple[float, list[list[Group]]] | None:
        # widest[j][n]: the narrowest widest piece when the first n units are cut into j pieces
        if len(cuts) < parts - 1:
            return None
        points = [0, *cuts, len(units)]
        piece_width = {(a, b): width(regroup(units[a:b])) for a in points for b in points if a < b}
        widest: dict[tuple[int, int], tuple[float, list[int]]] = {(0, 0): (0.0, [0])}
        for j in range(1, parts + 1):
            for b in points[1:]:
                options = [
                    (max(widest[j - 1, a][0], piece_width[a, b]), [*widest[j - 1, a][1], b])
                    for a in points
                    if a < b and (j - 1, a) in widest
                ]
                if options:
                    widest[j, b] = min(options)
        if (parts, len(units)) not in widest:
            return None
        score, bounds = widest[parts, len(units)]
        return score, [regroup(units[a:b]) for a, b in pairwise(bounds)]

    between = [n for n in range(1, len(units)) if units[n][0] != units[n - 1][0]]
    return [found[1] for found in (best(between), best(range(1, len(units)))) if found]


def _environments(
    table: Table, body: Callable[[Sequence[Group]], _Body], labels: Mapping[str, str], page: Page
) -> list[tuple[str, Size, list[Group]]]:
    """How a table is set: (environment, size, groups) per float, following the module's order of
    preferences."""

    def fits(groups: Sequence[Group], room: float) -> Size | None:
        part = body(groups)
        return _fit(lambda size, sep: _width(table, groups, part, labels, size, sep), room)

    measured: dict[tuple[tuple[str, tuple[str, ...]], ...], float] = {}

    def narrowest(groups: Sequence[Group]) -> float:
        # the splits try many pieces, most of them again for each number of parts
        identity = tuple((g.title, tuple(c.key for c in g.columns)) for g in groups)
        if identity not in measured:
            measured[identity] = _width(table, groups, body(groups), labels, SIZES[-1].points, SIZES[-1].sep)
        return measured[identity]

    rooms = [("table", page.column_width)] + ([("table*", page.text_width)] if page.two_column else [])
    for environment, room in rooms:
        if size := fits(table.groups, room):
            return [(environment, size, table.groups)]
    n_columns = sum(len(g.columns) for g in table.groups)
    for parts in range(2, n_columns + 1):
        for pieces in _split(table.groups, parts, narrowest):
            for environment, room in rooms:
                sizes = [fits(piece, room) for piece in pieces]
                if all(size is not None for size in sizes):
                    # every part at the smallest size any part needs, so the parts look alike
                    smallest = SIZES[max(SIZES.index(size) for size in sizes if size is not None)]
                    return [(environment, smallest, piece) for piece in pieces]
        if parts == 2 and (size := fits(table.groups, page.text_height)):
            return [("sidewaystable", size, table.groups)]
    return [("table", SIZES[-1], table.groups)]  # a single column too wide for the page: nothing helps


def _latex_table(
    table: Table,
    environment: str,
    size: Size,
    groups: Sequence[Group],
    body: _Body,
    caption: str,
    labels: Mapping[str, str],
) -> str:
    columns = [c for g in groups for c in g.columns]
    lines = [
        rf"\begin{{{environment}}}" + ("" if environment == "sidewaystable" else "[tbp]"),
        r"\centering",
        rf"\caption{{{caption}}}",
        size.command,
        rf"\setlength{{\tabcolsep}}{{{size.sep:g}pt}}",
        r"\begin{tabular}{@{}l" + "c" * len(columns) + "@{}}",
        r"\toprule",
    ]
    if any(g.title for g in groups):
        titles, rules, start = [], [], 2
        for group in groups:
            width = len(group.columns)
            title = _latex_escape(_label(labels, group.title))
            titles.append(rf"\multicolumn{{{width}}}{{c}}{{{title}}}" if title else " & ".join([""] * width))
            if title:
                rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        lines += [" & " + " & ".join(titles) + r" \\", " ".join(rules)]
    lines.append("Model & " + " & ".join(_header_label(table, c, labels) for c in columns) + r" \\")
    lines.append(r"\midrule")
    for model, symbols, cells in body.rows:
        name = _latex_escape(_label(labels, model))
        if symbols:
            name += "$^{" + "".join(LATEX_SYMBOLS.get(s, s) for s in symbols) + "}$"
        texts = [
            "--"
            if not c.text
            else rf"\textbf{{{c.text}}}"
            if c.place == 1
            else rf"\underline{{{c.text}}}"
            if c.place == 2
            else c.text
            for c in cells
        ]
        lines.append(name + " & " + " & ".join(texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{environment}}}"]
    return "\n".join(line for line in lines if line)


def _caption(table: Table, body: _Body, labels: Mapping[str, str], part: str) -> str:
    caption = _latex_escape(_label(labels, table.task))
    if table.source:
        caption += f" ({_latex_escape(table.source)})"
    caption += part
    for symbol, meaning in body.notes:
        caption += ". " + "$^{" + LATEX_SYMBOLS.get(symbol, symbol) + "}$" + _latex_escape(meaning)
    if counts := counts_note(table, labels):
        caption += ". " + _latex_escape(counts)
    return caption


def to_latex(
    tables: Sequence[Table],
    *,
    decimals: int = 2,
    labels: Mapping[str, str] | None = None,
    standalone: bool = False,
    page: Page | str = "article",
) -> str:
    """booktabs tables sized to fit ``page`` (a :class:`Page` or a name in ``PAGES``);
    ``standalone`` wraps them in a compilable document of that page."""
    labels = labels or {}
    page = PAGES[page] if isinstance(page, str) else page
    chunks: list[str] = []
    set_floats = 0
    for table in tables:
        marked = _marked(table, decimals)

        def body(groups: Sequence[Group], table: Table = table, marked: dict[str, _Marked] = marked) -> _Body:
            return _body(table, groups, marked)

        floats = _environments(table, body, labels, page)
        for i, (environment, size, groups) in enumerate(floats):
            part_body = body(groups)
            part = f" (part {i + 1} of {len(floats)})" if len(floats) > 1 else ""
            caption = _caption(table, part_body, labels, part)
            chunks.append(_latex_table(table, environment, size, groups, part_body, caption, labels))
            set_floats += 1
            if standalone and set_floats % FLOATS_PER_PAGE_RUN == 0:
                chunks.append(r"\clearpage")  # LaTeX holds at most 18 floats it has not placed
        if table.omitted:
            chunks.append(f"% {table.task}: not in this layout: {', '.join(table.omitted)}")
    body_text = "\n\n".join(chunks) + "\n"
    packages = "booktabs" + (",rotating" if r"\begin{sidewaystable}" in body_text else "")
    if not standalone:
        return f"% regbench tables: \\usepackage{{{packages}}}\n" + body_text
    options = "[twocolumn]" if page.two_column else ""
    return (
        f"\\documentclass{options}{{article}}\n\\usepackage{{{packages}}}\n\\begin{{document}}\n"
        + body_text
        + "\\end{document}\n"
    )


# -- Markdown ------------------------------------------------------------------------------------------
def to_markdown(tables: Sequence[Table], *, decimals: int = 2, labels: Mapping[str, str] | None = None) -> str:
    """GitHub Markdown tables: group titles prefix the column labels; best bold, second italic; the
    symbols of rows scored differently explained under the table."""
    labels = labels or {}
    chunks = []
    for table in tables:
        columns = [(g.title, c) for g in table.groups for c in g.columns]
        header = ["Model"] + [
            (f"{_label(labels, title)} " if title else "")
            + _label(labels, c.label)
            + ("" if table.higher_is_better.get(c.key, True) else " ↓")
            for title, c in columns
        ]
        lines = [
            f"### {_label(labels, table.task)}",
            "",
            "| " + " | ".join(map(_md_cell, header)) + " |",
            "|" + "---|" + "---:|" * len(columns),
        ]
        body = _body(table, table.groups, _marked(table, decimals))
        for model, symbols, cells in body.rows:
            name = _label(labels, model) + (" " + "".join(symbols) if symbols else "")
            texts = [
                "–" if not c.text else f"**{c.text}**" if c.place == 1 else f"_{c.text}_" if c.place == 2 else c.text
                for c in cells
            ]
            lines.append("| " + " | ".join([_md_cell(name), *texts]) + " |")
        counts = counts_note(table, labels)
        if body.notes or table.omitted or counts:
            lines.append("")
        lines += [f"{symbol} {meaning}." for symbol, meaning in body.notes]
        if counts:
            lines.append(f"{counts}.")
        if table.omitted:
            lines.append(f"Not in this layout: {', '.join(table.omitted)}.")
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n"
