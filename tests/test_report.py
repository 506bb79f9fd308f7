"""Reports: leaderboard JSON against its schema, ranking rules, partial and malformed results,
LaTeX compiled by pdflatex, Markdown, plots, and the page in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from regbench.metrics import METRICS, KeyFacts, metric_facts
from regbench.models import build_adapter
from regbench.registry import find_spec
from regbench.report.collect import collect
from regbench.report.leaderboard import SCHEMA_FILE, build_leaderboard, rank
from regbench.report.tables import build_tables, to_latex, to_markdown
from regbench.runner import RunOptions, evaluate
from regbench.spec import ModelSpec, TaskSpec, load_spec
from tests.conftest import REPO, write_jsonl

TASKS = ["demo_vqa_en", "demo_detection", "demo_detection_3d", "demo_classification"]
ARTIFACTS = REPO / "test-artifacts"
IN_CI = bool(os.environ.get("CI"))


def needs(tool: str) -> None:
    if shutil.which(tool) is None:
        if IN_CI:
            pytest.fail(f"{tool} is not installed; .ci/apt-packages should provide it")
        pytest.skip(f"{tool} is not installed (CI installs it from .ci/apt-packages)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two models on four demo tasks: the recorded demo outputs, and a copy with some answers broken."""
    root = tmp_path_factory.mktemp("runs")
    recorded = REPO / "models" / "recorded" / "medrega"
    for task_name in TASKS:
        lines = (recorded / f"{task_name}.jsonl").read_text().splitlines()
        worse = [json.loads(x) for x in lines]
        for i, row in enumerate(worse):
            if i % 2 == 0:
                row["output"] = "I cannot tell."
        write_jsonl(root / "worse" / f"{task_name}.jsonl", worse)
    for name, path in (
        ("medrega-demo", str(recorded / "{task}.jsonl")),
        ("worse", str(root / "worse" / "{task}.jsonl")),
    ):
        model = ModelSpec(model=name, adapter="replay", path=path, box_format="medrega")
        for task_name in TASKS:
            task = load_spec(find_spec("task", task_name), TaskSpec)
            options = RunOptions(output=root / "runs", bootstrap_trials=50)
            asyncio.run(evaluate(task, model, build_adapter(model), options))
    return root / "runs"


def test_leaderboard_validates_against_its_schema(runs: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    board = build_leaderboard(collect(runs))
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    vqa = board["tasks"]["demo_vqa_en"]
    assert set(vqa["models"]) == {"medrega-demo", "worse"}
    assert vqa["rankings"]["token_f1"][0]["order"] == ["medrega-demo", "worse"]
    assert board["families"]["vqa"]["overall"][0]["model"] == "medrega-demo"


def test_lower_is_better_metrics_rank_ascending(runs: Path) -> None:
    board = build_leaderboard(collect(runs))
    l1 = board["tasks"]["demo_detection_3d"]["metrics"]["l1"]
    assert l1["higher_is_better"] is False
    values = {m: e["values"]["l1"] for m, e in board["tasks"]["demo_detection_3d"]["models"].items()}
    order = board["tasks"]["demo_detection_3d"]["rankings"]["l1"][0]["order"]
    assert [values[m] for m in order] == sorted(values.values())


def test_rank_ties_share_the_average() -> None:
    assert rank({"a": 0.9, "b": 0.9, "c": 0.5}, True) == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert rank({"a": 0.1, "b": 0.3}, False) == {"a": 1.0, "b": 2.0}


def copy_run(runs: Path, model: str, task: str, target: Path) -> Path:
    shutil.copytree(runs / model / task, target / model / task)
    return target / model / task / "results.json"


def test_partial_malformed_old_and_duplicate_results(runs: Path, tmp_path: Path) -> None:
    copy_run(runs, "medrega-demo", "demo_vqa_en", tmp_path)
    partial = copy_run(runs, "worse", "demo_vqa_en", tmp_path)
    data = json.loads(partial.read_text())
    del data["metrics"]["token_f1"]  # a missing metric
    partial.write_text(json.dumps(data))
    old = tmp_path / "old" / "demo_vqa_en" / "results.json"  # an older regbench: no schema_version, extra field
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"task": "demo_vqa_en", "model": "old", "metrics": {"token_f1": 0.1}, "legacy": 1}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    (tmp_path / "other" / "x").mkdir(parents=True)
    (tmp_path / "other" / "x" / "results.json").write_text(json.dumps({"hello": "world"}))
    duplicate = tmp_path / "again" / "medrega-demo" / "demo_vqa_en"
    shutil.copytree(runs / "worse" / "demo_vqa_en", duplicate)
    dup = json.loads((duplicate / "results.json").read_text())
    (duplicate / "results.json").write_text(json.dumps({**dup, "model": "medrega-demo"}))
    os.utime(duplicate / "results.json", (time.time() + 10, time.time() + 10))

    collection = collect(tmp_path)
    notes = "\n".join(collection.notes)
    assert "broken/results.json: not valid JSON" in notes
    assert "not a regbench results file" in notes
    assert "older regbench" in notes
    assert "two runs" in notes and "the newer one is used" in notes
    board = build_leaderboard(collection)
    task = board["tasks"]["demo_vqa_en"]
    assert set(task["models"]) == {"medrega-demo", "worse", "old"}
    assert task["models"]["medrega-demo"]["values"] == dup["metrics"]  # the newer file won
    assert "worse" not in task["rankings"]["token_f1"][0]["ranks"]  # it did not report token_f1
    assert any("not reported by worse" in n for n in board["notes"])
    markdown = to_markdown(build_tables(collection))
    assert "–" in markdown  # the missing value shows as a dash, not a zero


def test_a_shard_is_skipped_even_when_newer_than_the_merged_run(runs: Path, tmp_path: Path) -> None:
    merged = copy_run(runs, "medrega-demo", "demo_vqa_en", tmp_path)
    shard = tmp_path / "medrega-demo" / "demo_vqa_en" / "shard-1-of-2" / "results.json"
    shard.parent.mkdir()
    data = json.loads(merged.read_text())
    data["config"]["run"]["shard"] = [1, 2]
    data["metrics"] = {key: 0.0 for key in data["metrics"]}
    shard.write_text(json.dumps(data))
    os.utime(shard, (time.time() + 10, time.time() + 10))
    collection = collect(tmp_path)
    assert [run.path for run in collection.runs] == [merged]
    assert any("shard 1/2 of a sharded run" in note for note in collection.notes)


def test_non_finite_values_are_treated_as_not_reported(tmp_path: Path) -> None:
    values = {"a": (0.5, None), "b": (float("nan"), 0.2), "c": (0.7, 0.1)}
    for model, (f1, acc) in values.items():
        path = tmp_path / model / "t" / "results.json"
        path.parent.mkdir(parents=True)
        ci95 = {"f1": [float("nan"), 1.0], "acc": [0.0, 0.3]}
        path.write_text(
            json.dumps({"task": "t", "model": model, "n_samples": 2, "metrics": {"f1": f1, "acc": acc}, "ci95": ci95})
        )
    collection = collect(tmp_path)
    assert {r.results.model for r in collection.runs} == {"a", "b", "c"}  # a null metric does not drop the run
    assert any("b/t/results.json: f1 not a finite number" in n for n in collection.notes)
    board = build_leaderboard(collection)
    rankings = board["tasks"]["t"]["rankings"]
    assert rankings["f1"][0]["ranks"] == {"c": 1.0, "a": 2.0}  # NaN would otherwise have ranked first
    assert rankings["acc"][0]["ranks"] == {"b": 1.0, "c": 2.0}
    assert all("f1" not in m["ci95"] for m in board["tasks"]["t"]["models"].values())
    json.dumps(board, allow_nan=False)  # strict JSON
    markdown = to_markdown(build_tables(collection))
    # f1 has two values (a's is also the last): best bold, no second
    assert "| a | – | 50.00 |" in markdown and "| b | **20.00** | – |" in markdown and "nan" not in markdown


def hostile_run(runs: Path, target: Path) -> Path:
    """A copy of a run whose samples.jsonl holds markup, NaN scores and malformed records."""
    run = target / "hostile" / "demo_vqa_en"
    shutil.copytree(runs / "medrega-demo" / "demo_vqa_en", run)
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "model": "hostile"}))
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    records[0]["output"] = "<!--<script>alert(1)</script> </script><b>bold</b>"
    records[0]["scores"] = {"token_f1": float("nan")}
    records[1]["reference"] = None
    records[1]["parsed"] = {"text": None, "objects": [{"boxes": "x"}, 3]}
    lines = [json.dumps(r) for r in records] + ["[1, 2]", "{not json"]
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_page_data_cannot_break_out_of_its_script(runs: Path, tmp_path: Path) -> None:
    from regbench.report.html import render_html

    copy_run(runs, "medrega-demo", "demo_vqa_en", tmp_path)
    hostile_run(runs, tmp_path)
    collection = collect(tmp_path)
    page = render_html(build_leaderboard(collection), collection)
    data = page.split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "NaN" not in data
    payload = json.loads(data)
    assert payload["samples"]["hostile · demo_vqa_en"][0]["output"].startswith("<!--<script>")
    assert payload["samples"]["hostile · demo_vqa_en"][0]["scores"] == {"token_f1": None}
    assert payload["samples"]["hostile · demo_vqa_en"][1]["answer"] == ""


def test_different_signatures_are_ranked_apart(runs: Path, tmp_path: Path) -> None:
    copy_run(runs, "medrega-demo", "demo_vqa_en", tmp_path)
    other = copy_run(runs, "worse", "demo_vqa_en", tmp_path)
    data = json.loads(other.read_text())
    data["signatures"]["token_f1"] = data["signatures"]["token_f1"].replace("mode:standard", "mode:medrega")
    other.write_text(json.dumps(data))
    board = build_leaderboard(collect(tmp_path))
    groups = board["tasks"]["demo_vqa_en"]["rankings"]["token_f1"]
    assert len(groups) == 2 and all(len(g["order"]) == 1 for g in groups)
    assert any("different signatures" in n for n in board["notes"])


def test_tables_mark_best_and_second(runs: Path) -> None:
    tables = {t.task: t for t in build_tables(collect(runs))}
    latex = to_latex([tables["demo_detection"]])
    assert r"\multicolumn{3}{c}{Object-Level}" in latex and r"\cmidrule(lr){2-4}" in latex
    assert r"\toprule" in latex and r"\bottomrule" in latex
    best = tables["demo_detection"].values["medrega-demo"]["region_f1"] * 100
    # two models: the second is also the last, so it is not underlined
    assert rf"\textbf{{{best:.2f}}}" in latex and r"\underline{" not in latex
    markdown = to_markdown([tables["demo_detection_3d"]], labels={"medrega-demo": "MedRegA (demo)"})
    assert "| MedRegA (demo) |" in markdown and "l1 ↓" in markdown


def write_results(directory: Path, model: str, metrics: dict[str, float], plugins: dict[str, str]) -> None:
    path = directory / model / "t" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"task": "t", "model": model, "n_samples": 1, "metrics": metrics, "plugins": plugins}))


def test_metric_facts_come_from_the_plugin_class() -> None:
    assert METRICS.get("nlg").facts("bleu4") == KeyFacts(higher_is_better=True, scale="fraction", bounds=(0.0, 1.0))
    assert METRICS.get("nlg").facts("cider") == KeyFacts(higher_is_better=True, scale="raw", bounds=(0.0, 10.0))
    assert metric_facts("radcliq", "radcliq_v1") == KeyFacts(higher_is_better=False, scale="raw", bounds=(None, None))
    assert metric_facts("box_regression", "giou") == KeyFacts(higher_is_better=True, bounds=(-1.0, 1.0))
    assert metric_facts("box_regression", "l1") == KeyFacts(higher_is_better=False)
    assert metric_facts("not_installed", "x") is None and metric_facts(None, "x") is None
    assert metric_facts("nlg", "not_a_key_of_nlg") is None


def test_tables_scale_each_key_as_its_plugin_says(tmp_path: Path) -> None:
    write_results(tmp_path, "m", {"cider": 0.5, "bleu4": 0.5, "odd": 0.5, "big": 3.0}, {"cider": "nlg", "bleu4": "nlg"})
    markdown = to_markdown(build_tables(collect(tmp_path)))
    row = next(line for line in markdown.splitlines() if line.startswith("| m |"))
    # columns bleu4, cider (NLG), then big, odd (no family: no preset); a column of an unknown plugin is x100
    # when all in [0, 1]
    assert row == "| m | **50.00** | **0.50** | **3.00** | **50.00** |"


def test_the_radar_averages_keys_bounded_to_unit_by_their_plugin(tmp_path: Path) -> None:
    from regbench.report.plots import _unit_bounded
    from regbench.results import Results

    results = Results(
        task="t",
        model="m",
        n_samples=1,
        metrics={"giou": 0.5, "cider": 0.5, "miou": 0.5, "mine": 0.5, "mine_big": 2.0},
        plugins={"giou": "box_regression", "cider": "nlg", "miou": "grounding", "mine": "gone", "mine_big": "gone"},
    )
    assert [k for k in results.metrics if _unit_bounded(results, k)] == ["miou", "mine"]


def test_latex_compiles_to_a_pdf(runs: Path, tmp_path: Path) -> None:
    needs("pdflatex")
    tex = tmp_path / "tables.tex"
    tex.write_text(to_latex(build_tables(collect(runs)), standalone=True))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    pdf = tmp_path / "tables.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    if shutil.which("pdftoppm"):
        ARTIFACTS.mkdir(exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / "tables")], check=True
        )


def test_plots_render(runs: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from regbench.report.plots import all_plots

    paths = all_plots(collect(runs), tmp_path)
    names = {p.name for p in paths}
    assert {"radar_families.png", "parse_failures.png", "iou_distribution.png", "bars_demo_vqa_en.png"} <= names
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_commands_write_files(runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    cli = CliRunner()
    assert cli.invoke(app, ["leaderboard", str(runs), "-o", str(tmp_path / "lb.json"), "--html"]).exit_code == 0
    assert json.loads((tmp_path / "lb.json").read_text())["schema_version"] == 1
    assert (tmp_path / "lb.html").read_text().startswith("<!DOCTYPE html>")
    assert cli.invoke(app, ["export", "markdown", str(runs), "-o", str(tmp_path / "t.md")]).exit_code == 0
    result = cli.invoke(app, ["leaderboard", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "no usable results.json" in result.output
    result = cli.invoke(app, ["export", "latex", str(runs), "-o", str(tmp_path / "t.tex"), "--preset", "bogus"])
    assert result.exit_code == 2 and "unknown preset 'bogus'" in result.output and "medrega_region" in result.output
    assert not (tmp_path / "t.tex").exists()


def test_page_in_headless_chromium(runs: Path, tmp_path: Path) -> None:
    needs("chromium")
    needs("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By

    from regbench.report.html import render_html

    collection = collect(runs)
    page = tmp_path / "leaderboard.html"
    page.write_text(render_html(build_leaderboard(collection), collection))
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
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        table = driver.find_element(By.CSS_SELECTOR, "table[data-family='vqa']")
        header = table.find_element(By.CSS_SELECTOR, "th[data-key='token_f1']")
        column = [th.get_attribute("data-key") for th in table.find_elements(By.TAG_NAME, "th")].index("token_f1")

        def column_values() -> list[float]:
            rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
            return [float(r.find_elements(By.TAG_NAME, "td")[column].get_attribute("data-value")) for r in rows]

        header.click()
        assert column_values() == sorted(column_values())
        header.click()
        assert column_values() == sorted(column_values(), reverse=True)
        driver.find_element(By.CSS_SELECTOR, "#f-task option[value='demo_detection']").click()
        visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "tr.run") if r.is_displayed()]
        assert visible and all(r.get_attribute("data-task") == "demo_detection" for r in visible)
        samples = driver.find_elements(By.CSS_SELECTOR, "#samples .sample")
        assert samples and driver.find_elements(By.CSS_SELECTOR, "#samples canvas")
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "leaderboard.png"))
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

        # model output with markup and a comment opener is shown as text and leaves the page's script working
        hostile = tmp_path / "hostile"
        hostile_run(runs, hostile)
        collection = collect(hostile)
        page.write_text(render_html(build_leaderboard(collection), collection))
        driver.get(page.as_uri())
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        assert driver.find_elements(By.CSS_SELECTOR, "table[data-family='vqa'] tr.run")
        assert driver.find_elements(By.CSS_SELECTOR, "#samples b") == []
        assert "<!--<script>alert(1)</script>" in driver.find_element(By.ID, "samples").text
    finally:
        driver.quit()
