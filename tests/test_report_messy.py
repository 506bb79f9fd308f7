"""Reports on a messy leaderboard: four models on three tasks, with a model that never writes a
box (metrics missing, one not a finite number), exact ties, one model scored with IoU threshold
0.3 (its own signature group) and a different bootstrap seed."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regbench.metrics import metric_facts
from regbench.report.collect import Collection, collect
from regbench.report.leaderboard import SCHEMA_FILE, build_leaderboard, marks, places
from regbench.report.tables import Page, Table, build_tables, catalog_column, to_latex, to_markdown
from regbench.signature import Signature
from tests.test_report import ARTIFACTS, needs

MODELS = ["boxless", "model-a", "model-b", "model-c-iou03"]

Scores = dict[str, tuple[str, dict[str, Any]]]
"""Metric key -> (plugin, model -> value); a model left out has no value, "null" is written as null."""
DET = "region_aligned"
DETECTION: Scores = {
    **{
        f"object_{m}": (DET, {"boxless": 0.40, "model-a": 0.70, "model-b": 0.60, "model-c-iou03": 0.75})
        for m in ("precision", "recall", "f1")
    },
    **{
        f"region_{m}": (DET, {"boxless": 0.0, "model-a": 0.45, "model-b": 0.35, "model-c-iou03": 0.55})
        for m in ("precision", "recall", "f1")
    },
    **{
        f"alignment_{m}": (DET, {"model-a": 0.40, "model-b": 0.30, "model-c-iou03": 0.50})
        for m in ("precision", "recall", "f1")
    },
    "iou": (DET, {"model-a": 0.50, "model-b": 0.40, "model-c-iou03": 0.30}),
    "accuracy": (DET, {"model-a": 0.42, "model-b": 0.42, "model-c-iou03": 0.51}),
}
REPORT: Scores = {
    "bleu1": ("nlg", {"boxless": 0.30, "model-a": 0.33, "model-b": 0.31, "model-c-iou03": 0.29}),
    "bleu4": ("nlg", {"boxless": 0.08, "model-a": 0.10, "model-b": 0.11, "model-c-iou03": 0.09}),
    "meteor": ("nlg", {"boxless": 0.12, "model-a": 0.14, "model-b": 0.15, "model-c-iou03": 0.13}),
    "rouge_l": ("nlg", {"boxless": 0.26, "model-a": 0.28, "model-b": 0.27, "model-c-iou03": 0.25}),
    "cider": ("nlg", {"boxless": 0.31, "model-a": 0.45, "model-b": 0.41, "model-c-iou03": 0.38}),
    "bertscore_f1": ("bertscore", {"boxless": 0.52, "model-a": 0.55, "model-b": 0.56, "model-c-iou03": 0.50}),
    "chexbert_f1_micro14": ("chexbert", {"boxless": 0.50, "model-a": 0.58, "model-b": 0.60, "model-c-iou03": 0.55}),
    "chexbert_f1_macro14": ("chexbert", {"boxless": 0.30, "model-a": 0.39, "model-b": 0.40, "model-c-iou03": 0.35}),
    "chexbert_f1_micro5": ("chexbert", {"boxless": 0.52, "model-a": 0.62, "model-b": 0.61, "model-c-iou03": 0.57}),
    "chexbert_f1_macro5": ("chexbert", {"boxless": 0.41, "model-a": 0.50, "model-b": 0.49, "model-c-iou03": 0.45}),
    "chexbert_f1_example14": ("chexbert", {"boxless": 0.44, "model-a": 0.50, "model-b": 0.54, "model-c-iou03": 0.47}),
    "chexbert_f1_atelectasis": ("chexbert", {"boxless": 0.20, "model-a": 0.31, "model-b": 0.33, "model-c-iou03": 0.25}),
    "radgraph_f1": ("radgraph", {"boxless": 0.18, "model-a": 0.22, "model-b": 0.21, "model-c-iou03": 0.20}),
    "radcliq_v1": ("radcliq", {"boxless": "null", "model-a": 1.02, "model-b": 0.98, "model-c-iou03": 1.10}),
}
# model-a and model-b tie on token_f1 and bleu1, and overall (mean rank 1.5 each)
VQA: Scores = {
    "closed_accuracy": ("vqa", {"boxless": 0.50, "model-a": 0.80, "model-b": 0.70, "model-c-iou03": 0.60}),
    "open_recall": ("vqa", {"boxless": 0.50, "model-a": 0.70, "model-b": 0.80, "model-c-iou03": 0.60}),
    "open_accuracy": ("vqa", {"boxless": 0.40, "model-a": 0.55, "model-b": 0.65, "model-c-iou03": 0.45}),
    "token_f1": ("vqa", {"boxless": 0.40, "model-a": 0.60, "model-b": 0.60, "model-c-iou03": 0.50}),
    "exact_match": ("vqa", {"boxless": 0.40, "model-a": 0.65, "model-b": 0.55, "model-c-iou03": 0.45}),
    "bleu1": ("vqa", {"boxless": 0.20, "model-a": 0.30, "model-b": 0.30, "model-c-iou03": 0.20}),
}
TASKS = {
    "grounding_det": ("detection", "ct", DETECTION),
    "mimic_report": ("report", "chest_xray", REPORT),
    "slake_vqa": ("vqa", "mixed", VQA),
}


def _higher_is_better(plugin: str, key: str) -> bool:
    facts = metric_facts(plugin, key)
    assert facts is not None, (plugin, key)
    return facts.higher_is_better


def _signature(plugin: str, key: str, model: str) -> str:
    parts: list[tuple[str, str | None]] = [("mode", "standard")]
    if plugin == DET:
        parts += [("iou_threshold", "0.3" if model == "model-c-iou03" else "0.5"), ("agg", "sample_mean")]
    seed = 7 if model == "model-c-iou03" else 1234  # a different bootstrap seed does not split a group
    return Signature.for_plugin(plugin, key, parts, version="0.3.0").with_bootstrap(1000, seed).format()


def _detection_samples(model: str) -> list[dict[str, Any]]:
    """Four samples; boxless writes no box (so it has no per-sample IoU)."""
    boxes = [] if model == "boxless" else [{"boxes": [[0.1, 0.1, 0.6, 0.7]]}]
    return [
        {
            "id": f"s{i}",
            "output": "no box here" if model == "boxless" else "liver [[100, 100, 600, 700]]",
            "parsed": {"text": "liver", "objects": boxes},
            "reference": {"answer": "liver", "objects": [{"boxes": [[0.1, 0.1, 0.5, 0.6]]}]},
            "scores": {} if model == "boxless" else {"iou": 0.2 * i},
        }
        for i in range(4)
    ]


def write_task(root: Path, task: str, family: str, modality: str, table: Scores, models: list[str]) -> None:
    """One results.json per model (and, for a detection task, a samples.jsonl)."""
    for model in models:
        metrics: dict[str, Any] = {}
        ci95: dict[str, list[float]] = {}
        for key, (_, values) in table.items():
            value = values.get(model)
            if value is None:
                continue
            metrics[key] = None if value == "null" else value
            if value != "null":
                ci95[key] = [round(value - 0.05, 4), round(value + 0.05, 4)]
        run = root / model / task
        run.mkdir(parents=True)
        results = {
            "task": task,
            "model": model,
            "family": family,
            "language": "en",
            "modality": modality,
            "n_samples": 4,
            # half its outputs unreadable: at the failure rule's threshold (more than half), so still ranked
            "n_parse_failures": 2 if model == "boxless" and family == "detection" else 0,
            "metrics": metrics,
            "ci95": ci95,
            "higher_is_better": {k: _higher_is_better(table[k][0], k) for k in metrics},
            "signatures": {k: _signature(table[k][0], k, model) for k in metrics},
            "plugins": {k: table[k][0] for k in metrics},
            "bootstrap": {"trials": 1000, "seed": 7 if model == "model-c-iou03" else 1234},
            "regbench_version": "0.3.0",
            "schema_version": 1,
        }
        (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
        if family == "detection":
            samples = "".join(json.dumps(r) + "\n" for r in _detection_samples(model))
            (run / "samples.jsonl").write_text(samples, encoding="utf-8")


def write_messy_runs(root: Path) -> Path:
    """results.json (and, for the detection task, samples.jsonl) of 4 models x 3 tasks under ``root``."""
    for task, (family, modality, table) in TASKS.items():
        write_task(root, task, family, modality, table, MODELS)
    return root


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_messy_runs(tmp_path_factory.mktemp("messy"))


@pytest.fixture(scope="module")
def messy(messy_dir: Path) -> Collection:
    return collect(messy_dir)


# -- defects -------------------------------------------------------------------------------------


def test_metric_bars_pair_each_interval_with_its_own_model(messy: Collection, tmp_path: Path, monkeypatch) -> None:
    """boxless has no IoU: the intervals used to be zipped with every run, so model-b got model-a's
    interval (a negative error bar: matplotlib raised) and model-c-iou03 boxless's (none)."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from regbench.report.plots import metric_bars

    calls: list[tuple[Axes, list[float], Any]] = []
    bar = Axes.bar

    def recording_bar(ax: Axes, x: Any, height: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((ax, list(height), kwargs.get("yerr")))
        return bar(ax, x, height, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", recording_bar)
    path = metric_bars(messy, "grounding_det", tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = {ax.get_title(): ([t.get_text() for t in ax.get_xticklabels()], h, e) for ax, h, e in calls}
    models, values, (below, above) = drawn["iou"]
    assert models == ["model-a", "model-b", "model-c-iou03"] and values == [0.50, 0.40, 0.30]
    assert below == pytest.approx([0.05, 0.05, 0.05]) and above == pytest.approx([0.05, 0.05, 0.05])


def test_a_model_ranked_only_in_other_signature_groups_is_listed_unranked(messy: Collection) -> None:
    """model-c-iou03 is scored with IoU threshold 0.3 on every detection metric, so it is in no first
    group: it used to vanish from the family's standing instead of being listed as unranked."""
    board = build_leaderboard(messy)
    for name, family in board["families"].items():
        listed = [o["model"] for o in family["overall"]] + family["unranked"]
        ran = {m for t in family["tasks"] for m in board["tasks"][t]["models"]}
        assert sorted(listed) == sorted(ran), name
    detection = board["families"]["detection"]
    assert detection["unranked"] == ["model-c-iou03"]
    assert (
        "scored differently in 11 (IoU threshold 0.3 instead of 0.5)" in detection["unranked_reasons"]["model-c-iou03"]
    )
    assert [o["model"] for o in detection["overall"]] == ["model-a", "model-b", "boxless"]


def test_messy_leaderboard_validates_ties_share_ranks_and_seeds_do_not_split(messy: Collection) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    board = build_leaderboard(messy)
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    vqa = board["families"]["vqa"]["overall"]
    assert [(o["model"], o["rank"]) for o in vqa] == [
        ("model-a", 1),
        ("model-b", 1),
        ("model-c-iou03", 3),
        ("boxless", 4),
    ]
    # model-c-iou03's intervals used another bootstrap seed: the same group as everyone else
    assert all(len(groups) == 1 for groups in board["tasks"]["slake_vqa"]["rankings"].values())
    assert board["tasks"]["slake_vqa"]["rankings"]["token_f1"][0]["ranks"]["model-a"] == 1.5
    iou = board["tasks"]["grounding_det"]["rankings"]["iou"]
    assert [g["order"] for g in iou] == [["model-a", "model-b"], ["model-c-iou03"]]
    assert "difference" not in iou[0] and iou[1]["difference"] == "IoU threshold 0.3 instead of 0.5"
    missing = {t: board["tasks"][t]["models"]["boxless"]["missing"] for t in board["tasks"]}
    assert missing["mimic_report"] == {"radcliq_v1": "null in results.json, not a finite number"}
    assert missing["grounding_det"]["iou"] == "no value in its results.json" and missing["slake_vqa"] == {}


# -- tables --------------------------------------------------------------------------------------


def _table(tables: list[Table], task: str) -> Table:
    return next(t for t in tables if t.task == task)


def test_the_marking_rule() -> None:
    assert places({"a": 0.9, "b": 0.9, "c": 0.5, "d": 0.5}, True) == {"a": 1, "b": 1}  # 0.5 is also the last
    assert places({"a": 0.9, "b": 0.9, "c": 0.7, "d": 0.5}, True) == {"a": 1, "b": 1, "c": 2}
    assert places({"a": 0.1, "b": 0.3, "c": 0.2}, False) == {"a": 1, "c": 2}
    assert places({"a": 0.4}, True) == {"a": 1}  # one row, one group: as before
    # several groups: each marked on its own, a group of one not at all
    assert marks([{"a": 0.5, "b": 0.4}, {"c": 0.9}], True) == {"a": 1}
    two_groups = [{"a": 0.5, "b": 0.4, "c": 0.3}, {"d": 0.9, "e": 0.8, "f": 0.1}]
    assert marks(two_groups, True) == {"a": 1, "b": 2, "d": 1, "e": 2}


def test_tables_mark_within_a_signature_group_and_flag_rows_scored_differently(messy: Collection) -> None:
    markdown = to_markdown([_table(build_tables(messy), "grounding_det")])
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    # model-c-iou03 has the highest Object-Level values but was scored at IoU 0.3: not marked, flagged
    assert rows["model-c-iou03 †"].startswith("| model-c-iou03 † | 75.00 | 75.00 | 75.00 | 55.00 |")
    assert rows["model-a"].startswith("| model-a | **70.00** | **70.00** | **70.00** | **45.00** |")
    assert rows["model-b"].startswith("| model-b | _60.00_ |")
    assert "† IoU threshold 0.3 instead of 0.5 (all columns); ranked apart" in markdown
    latex = to_latex([_table(build_tables(messy), "grounding_det")])
    assert r"model-c-iou03$^{\dagger}$ & 75.00 & 75.00 & 75.00" in latex
    assert r"$^{\dagger}$IoU threshold 0.3 instead of 0.5 (all columns)" in latex  # in the caption
    assert latex.count(r"\dagger") == 4  # two parts, each: the row and the caption


def test_ties_are_all_best_and_the_second_is_never_the_last(messy: Collection) -> None:
    vqa = to_markdown([_table(build_tables(messy), "slake_vqa")])
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ") for line in vqa.splitlines() if "| " in line}
    f1, bleu1 = 4, 5  # token_f1: 60, 60, 50, 40; bleu1 has two values: 30, 30, 20, 20
    assert [rows[m][f1] for m in MODELS] == ["40.00", "**60.00**", "**60.00**", "_50.00_"]
    assert [rows[m][bleu1] for m in MODELS] == ["20.00", "**30.00**", "**30.00**", "20.00"]
    # radcliq_v1 is lower-is-better and boxless has none (a dash, not a mark)
    report = to_markdown([_table(build_tables(messy), "mimic_report")])
    row = next(line for line in report.splitlines() if line.startswith("| boxless |"))
    assert "| – |" in row and "RadCliQ ↓" in report


def test_every_metric_has_a_display_name_and_a_group(messy: Collection) -> None:
    from regbench.metrics import METRICS

    builtin = [name for name in METRICS.names() if METRICS.get(name).__module__.startswith("regbench.metrics.")]
    assert len(builtin) >= 12  # (other tests register plugins of their own)
    for plugin in builtin:
        for key in METRICS.get(plugin).keys:
            title, column = catalog_column(key, plugin)
            assert title and column.label != key, (plugin, key)
    for table in build_tables(messy):
        assert all(g.title != "Other" for g in table.groups)
        assert all(c.label != c.key for g in table.groups for c in g.columns), table.task
    report = to_markdown([_table(build_tables(messy), "mimic_report")])
    assert "CheXbert F1 Atelectasis" in report and "Clinical efficacy eF1-14" in report


def pdflatex(tex: Path) -> str:
    """Compile ``tex``; the log (the test fails with its end if pdflatex does)."""
    needs("pdflatex")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = tex.with_suffix(".log").read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, done.stdout[-3000:]
    assert tex.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    return log


def readable(latex: str) -> bool:
    """Nothing set below footnote size, nothing scaled down."""
    return not any(s in latex for s in (r"\scriptsize", r"\tiny", r"\resizebox", r"\scalebox", "adjustbox"))


@pytest.mark.parametrize("page", ["article", "twocolumn"])
def test_every_table_compiles_and_fits_the_text_width(messy: Collection, tmp_path: Path, page: str) -> None:
    latex = to_latex(build_tables(messy), standalone=True, page=page)
    assert readable(latex)
    tex = tmp_path / "tables.tex"
    tex.write_text(latex, encoding="utf-8")
    log = pdflatex(tex)
    assert "Overfull \\hbox" not in log
    if page == "article":  # 11 and 14 columns do not fit at footnote size: two parts each
        assert latex.count("(part 1 of 2)") == 2 and r"\begin{table*}" not in latex
    else:  # the 7-column table fits a column; the wider ones span both
        assert r"\begin{table*}" in latex and r"\caption{slake\_vqa" in latex.split(r"\begin{table}[tbp]")[-1]


def test_a_table_too_wide_to_split_in_two_turns_sideways(messy: Collection, tmp_path: Path) -> None:
    narrow = Page(column_width=150.0, text_width=150.0, text_height=550.0)
    latex = to_latex([_table(build_tables(messy), "grounding_det")], page=narrow)
    assert r"\begin{sidewaystable}" in latex and "usepackage{booktabs,rotating}" in latex and readable(latex)
    tex = tmp_path / "sideways.tex"
    preamble = "\\documentclass{article}\n\\usepackage{booktabs,rotating}\n\\setlength{\\textwidth}{150pt}\n"
    tex.write_text(preamble + "\\begin{document}\n" + latex + "\\end{document}\n", encoding="utf-8")
    assert "Overfull \\hbox" not in pdflatex(tex)


# -- paper presets -------------------------------------------------------------------------------
PAPER_MODELS = ["m3d-lamed", "radfm"]
PAPER_TASKS: dict[str, tuple[str, str, Scores]] = {
    "m3d_rec": (
        "detection",
        "ct",
        {
            "miou": ("grounding", {"m3d-lamed": 0.42, "radfm": 0.18}),
            "hit_rate": ("grounding", {"m3d-lamed": 0.61, "radfm": 0.22}),
            "acc_iou50": ("grounding", {"m3d-lamed": 0.35, "radfm": 0.08}),
        },
    ),
    "m3d_reg": (
        "region_identification",
        "ct",
        {
            "bleu1": ("nlg", {"m3d-lamed": 0.33, "radfm": 0.12}),
            "rouge1": ("rouge1", {"m3d-lamed": 0.38, "radfm": 0.15}),
            "meteor": ("nlg", {"m3d-lamed": 0.29, "radfm": 0.10}),
            "bertscore_f1": ("bertscore", {"m3d-lamed": 0.88, "radfm": 0.84}),
        },
    ),
    "vindr_boxes": (
        "detection",
        "chest_xray",
        {
            "l1": ("box_regression", {"m3d-lamed": 0.121, "radfm": 0.180}),
            "giou": ("box_regression", {"m3d-lamed": -0.43, "radfm": -0.60}),
            "giou_loss": ("box_regression", {"m3d-lamed": 1.43, "radfm": 1.60}),
        },
    ),
}


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paper")
    for task, (family, modality, scores) in PAPER_TASKS.items():
        write_task(root, task, family, modality, scores, PAPER_MODELS)
    return root


def export(kind: str, directory: Path, output: Path, *options: str) -> str:
    """``regbench export KIND DIRECTORY -o OUTPUT OPTIONS``; the file written."""
    from typer.testing import CliRunner

    from regbench.cli import app

    result = CliRunner().invoke(app, ["export", kind, str(directory), "-o", str(output), *options])
    assert result.exit_code == 0, result.output
    return output.read_text(encoding="utf-8")


def test_m4cxr_ce_preset_lays_the_table_out_as_the_paper(messy_dir: Path, messy: Collection, tmp_path: Path) -> None:
    columns = r"Model & mF1-14 & mF1-5 & MF1-14 & MF1-5 & eF1-14 & F1 & -1 & -4 & -L \\"
    groups = r"\multicolumn{5}{c}{CheXbert} & \multicolumn{1}{c}{RadGraph} & \multicolumn{2}{c}{BLEU}"
    # two-column paper (as M4CXR's): one table across both columns, with the paper's header
    latex = to_latex(build_tables(messy, preset="m4cxr_ce"), decimals=1, standalone=True, page="twocolumn")
    assert latex.count(r"\begin{table*}") == 1 and groups + r" & \multicolumn{1}{c}{ROUGE} \\" in latex
    assert columns in latex and "mimic\\_report (as M4CXR Table III" in latex  # the report task only
    assert "% mimic_report: not in this layout: meteor, cider, bertscore_f1" in latex
    (tmp_path / "ce2.tex").write_text(latex, encoding="utf-8")
    assert "Overfull \\hbox" not in pdflatex(tmp_path / "ce2.tex")
    # the command, on an article page: too wide at footnote size, so two tables splitting the header
    latex = export("latex", messy_dir, tmp_path / "ce.tex", "--preset", "m4cxr_ce", "--standalone", "--decimals", "1")
    assert "(part 1 of 2)" in latex and r"\multicolumn{5}{c}{CheXbert} \\" in latex
    assert r"Model & mF1-14 & mF1-5 & MF1-14 & MF1-5 & eF1-14 \\" in latex and r"Model & F1 & -1 & -4 & -L \\" in latex
    assert readable(latex) and "Overfull \\hbox" not in pdflatex(tmp_path / "ce.tex")


def test_medrega_presets(messy_dir: Path, tmp_path: Path) -> None:
    detection = export("markdown", messy_dir, tmp_path / "det.md", "--preset", "medrega_detection")
    assert (
        "| Model | Object-Level P | Object-Level R | Object-Level F1 | Region-Level Acc | Region-Level P | "
        "Region-Level R | Region-Level F1 | Alignment P | Alignment R | Alignment F1 | IoU |"
    ) in detection
    grounded = export("markdown", messy_dir, tmp_path / "gr.md", "--preset", "medrega_grounded_report")
    assert "| Model | NLG BLEU-1 | NLG ROUGE-L | NLG BertScore | CE CheXBert | CE RadGraph | CE RadCliQ ↓ |" in grounded
    assert "grounding_det" not in grounded  # MedRegA's Table 4 is of report tasks
    latex = export("latex", messy_dir, tmp_path / "medrega.tex", "--preset", "medrega_detection", "--standalone")
    assert readable(latex) and "Overfull \\hbox" not in pdflatex(tmp_path / "medrega.tex")


def test_m3d_and_vividmed_presets(paper_dir: Path, tmp_path: Path) -> None:
    m3d = export("markdown", paper_dir, tmp_path / "m3d.md", "--preset", "m3d_grounding")
    assert (
        "| Model | REC IoU | REC Acc |" in m3d
        and "| Model | REG BLEU | REG ROUGE | REG METEOR | REG BERT-Score |" in m3d
    )
    assert "Not in this layout: acc_iou50." in m3d and "vindr_boxes" not in m3d
    vividmed = export("markdown", paper_dir, tmp_path / "v.md", "--preset", "vividmed_grounding", "--decimals", "3")
    assert "| Model | Mean ℓ1 ↓ | Mean GIoU | Mean 1−GIoU ↓ |" in vividmed  # no Dice reported: no column
    assert "| m3d-lamed | **0.121** | **-0.430** | **1.430** |" in vividmed  # as they are, not x100
    latex = export("latex", paper_dir, tmp_path / "v.tex", "--preset", "vividmed_grounding", "--standalone")
    assert r"Model & Mean $\ell^1$$\downarrow$ & Mean GIoU & Mean 1$-$GIoU$\downarrow$ \\" in latex
    assert "Overfull \\hbox" not in pdflatex(tmp_path / "v.tex")


def test_a_paper_preset_no_task_matches_is_an_error(paper_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    result = CliRunner().invoke(
        app, ["export", "latex", str(paper_dir), "-o", str(tmp_path / "x.tex"), "--preset", "m4cxr_ce"]
    )
    assert result.exit_code == 2 and "preset m4cxr_ce: no task has any of its metrics among the report" in result.output


# -- plots ---------------------------------------------------------------------------------------


def test_the_radar_leaves_out_a_family_a_model_did_not_run(messy: Collection, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.projections.polar import PolarAxes

    from regbench.report.plots import all_plots, radar_scores

    runs = [r for r in messy.runs if (r.results.model, r.results.family) != ("boxless", "vqa")]
    partial = Collection(runs=runs, notes=list(messy.notes))
    families, scores = radar_scores(partial)
    assert families == ["detection", "report", "vqa"] and scores["boxless"][2] is None
    assert scores["model-a"][2] == pytest.approx((0.80 + 0.70 + 0.55 + 0.60 + 0.65 + 0.30) / 6)

    lines: dict[str, list[float]] = {}
    plot = PolarAxes.plot

    def recording_plot(ax: PolarAxes, *args: Any, **kwargs: Any) -> Any:
        drawn = plot(ax, *args, **kwargs)
        lines[drawn[0].get_label()] = list(drawn[0].get_ydata())
        return drawn

    monkeypatch.setattr(PolarAxes, "plot", recording_plot)
    paths = all_plots(partial, tmp_path)
    assert {p.name for p in paths} >= {"radar_families.png", "bars_grounding_det.png", "iou_distribution.png"}
    boxless = next(values for label, values in lines.items() if label.startswith("boxless"))
    assert boxless[2] != boxless[2] and 0.0 not in boxless  # NaN (a gap), never 0
    assert next(label for label in lines if label.startswith("boxless")) == "boxless (no vqa)"


# -- the page --------------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium driven by selenium (no network, no background services)."""
    needs("chromium")
    needs("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1600,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    )
    try:
        yield driver
    finally:
        driver.quit()


def test_page_ranks_rows_marks_within_groups_and_explains_dashes(messy: Collection, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from regbench.report.html import render_html

    page = tmp_path / "leaderboard.html"
    page.write_text(render_html(build_leaderboard(messy), messy), encoding="utf-8")
    with chromium(tmp_path) as driver:
        driver.get(page.as_uri())
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

        def table(family: str) -> tuple[list[str], dict[str, list[Any]]]:
            """The header keys and, per model, its cells (WebElements), in the page's row order."""
            found = driver.find_element(By.CSS_SELECTOR, f"table[data-family='{family}']")
            keys = [th.get_attribute("data-key") for th in found.find_elements(By.TAG_NAME, "th")]
            rows = found.find_elements(By.CSS_SELECTOR, "tbody tr")
            return keys, {r.get_attribute("data-model"): r.find_elements(By.TAG_NAME, "td") for r in rows}

        # rows in overall order with a rank column; the model ranked apart last, unranked, with why
        keys, rows = table("detection")
        assert keys[:2] == ["rank", "model"] and list(rows) == ["model-a", "model-b", "boxless", "model-c-iou03"]
        assert [cells[0].text for cells in rows.values()] == ["1", "2", "3", "–"]
        assert "scored differently in 11 (IoU threshold 0.3 instead of 0.5)" in rows["model-c-iou03"][0].get_attribute(
            "title"
        )
        _, vqa = table("vqa")
        assert [cells[0].text for cells in vqa.values()] == ["1", "1", "3", "4"]  # a tie shares the rank

        # the row scored differently is marked, its cells flagged and not marked best though highest
        row = driver.find_element(By.CSS_SELECTOR, "table[data-family='detection'] tr[data-model='model-c-iou03']")
        assert "scored-differently" in row.get_attribute("class") and "†" in rows["model-c-iou03"][1].text
        object_f1 = keys.index("object_f1")
        apart = rows["model-c-iou03"][object_f1]
        assert apart.get_attribute("class") == "apart" and "IoU threshold 0.3 instead of 0.5" in apart.get_attribute(
            "title"
        )
        best = rows["model-a"][object_f1]
        assert "best" in best.get_attribute("class").split()
        assert int(best.find_element(By.CSS_SELECTOR, "span.value").value_of_css_property("font-weight")) >= 700
        second = rows["model-b"][object_f1].find_element(By.CSS_SELECTOR, "span.value")
        assert "underline" in second.value_of_css_property("text-decoration")
        assert "best" not in rows["boxless"][object_f1].get_attribute("class")

        # ties: both best; the next value is second only when it is not the last
        vqa_keys, _ = table("vqa")
        marks = {m: cells[vqa_keys.index("token_f1")].get_attribute("class") for m, cells in vqa.items()}
        assert marks == {"model-a": "best", "model-b": "best", "model-c-iou03": "second", "boxless": ""}
        marks = {m: cells[vqa_keys.index("bleu1")].get_attribute("class") for m, cells in vqa.items()}
        assert marks == {"model-a": "best", "model-b": "best", "model-c-iou03": "", "boxless": ""}

        # missing values: a dash, and a tooltip saying why
        iou = rows["boxless"][keys.index("iou")]
        assert iou.text == "–" and iou.get_attribute("title") == "no value in its results.json"
        report_keys, report = table("report")
        radcliq = report["boxless"][report_keys.index("radcliq_v1")]
        assert radcliq.text == "–" and radcliq.get_attribute("title") == "null in results.json, not a finite number"
        header = driver.find_element(By.CSS_SELECTOR, "table[data-family='report'] th[data-key='chexbert_f1_micro14']")
        assert header.text == "Clinical efficacy mF1-14" and header.get_attribute("title") == "chexbert_f1_micro14"
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "leaderboard_messy.png"))
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


@pytest.mark.parametrize("page", ["article", "twocolumn"])
def test_every_preset_compiles_and_fits(messy: Collection, paper_dir: Path, tmp_path: Path, page: str) -> None:
    from regbench.report.tables import PRESETS

    both = Collection(runs=[*messy.runs, *collect(paper_dir).runs])
    chunks = []
    for preset in sorted(PRESETS):
        latex = to_latex(build_tables(both, preset=preset), page=page)
        assert readable(latex), preset
        chunks.append(f"% preset {preset}\n{latex}\\clearpage\n")
    options = "[twocolumn]" if page == "twocolumn" else ""
    tex = tmp_path / "presets.tex"
    document = "".join(chunks)
    tex.write_text(
        f"\\documentclass{options}{{article}}\n\\usepackage{{booktabs,rotating}}\n\\begin{{document}}\n{document}"
        "\\end{document}\n",
        encoding="utf-8",
    )
    log = pdflatex(tex)
    assert "Overfull \\hbox" not in log and document.count(r"\begin{tabular}") > 30
