"""Reports rank only runs that should be ranked (issue 22), checked through the commands.

Real runs, written by ``regbench score`` from the demo recordings: two full runs of the VQA demo
task (``good``, and ``fair`` with half its answers wrong), one over its first three samples only
(``limited``: right on all of them, so it would top a table it has no place in), one whose
predictions lack four of six samples (``dead``: 4 failed, 67%), one lacking three (``half``: 50%,
not more than half, so still ranked); on the detection demo task a full run (``good``) and one
whose every output has no box (``unreadable``: 6 parse failures).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from regbench.cli import app
from tests.conftest import REPO, write_jsonl
from tests.test_report import needs
from tests.test_report_messy import chromium, pdflatex

RECORDED = REPO / "models" / "recorded" / "medrega"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def score(out: Path, task: str, name: str, rows: list[dict[str, Any]], *options: str) -> Result:
    predictions = out.parent / "predictions" / f"{name}-{Path(task).stem}.jsonl"
    write_jsonl(predictions, rows)
    return invoke("score", "--task", task, "-p", predictions, "--name", name, "-o", out, "--bootstrap", "20", *options)


def recorded(task: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (RECORDED / f"{task}.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ranking") / "runs"
    vqa = recorded("demo_vqa_en")
    assert score(out, "demo_vqa_en", "good", vqa).exit_code == 0
    fair = [{**row, "output": "Maybe" if i >= 3 else row["output"]} for i, row in enumerate(vqa)]
    assert score(out, "demo_vqa_en", "fair", fair).exit_code == 0
    assert score(out, "demo_vqa_en", "limited", vqa, "--limit", "3").exit_code == 0
    assert score(out, "demo_vqa_en", "dead", vqa[:2]).exit_code == 3  # 4 samples have no prediction
    assert score(out, "demo_vqa_en", "half", vqa[:3]).exit_code == 3
    detection = recorded("demo_detection")
    assert score(out, "demo_detection", "good", detection, "--box-format", "medrega").exit_code == 0
    boxless = [{**row, "output": "I see nothing to mark."} for row in detection]
    assert score(out, "demo_detection", "unreadable", boxless, "--box-format", "medrega").exit_code == 0
    return out


def leaderboard(runs: Path, output: Path, *options: str) -> tuple[Result, dict[str, Any]]:
    result = invoke("leaderboard", runs, "-o", output, *options)
    assert result.exit_code == 0, result.output
    return result, json.loads(output.read_text())


def ranked_anywhere(board: dict[str, Any], task: str) -> set[str]:
    return {m for groups in board["tasks"][task]["rankings"].values() for g in groups for m in g["ranks"]}


def test_results_record_which_samples_were_scored(runs: Path) -> None:
    from regbench.results import sample_ids_digest

    def ids(model: str) -> tuple[str, list[str]]:
        directory = runs / model / "demo_vqa_en"
        lines = (directory / "samples.jsonl").read_text().splitlines()
        return json.loads((directory / "results.json").read_text())["sample_ids"], [json.loads(x)["id"] for x in lines]

    good, good_ids = ids("good")
    limited, limited_ids = ids("limited")
    assert good == sample_ids_digest(good_ids) == sample_ids_digest(reversed(good_ids)) == ids("fair")[0]
    assert limited == sample_ids_digest(limited_ids) != good and len(limited_ids) == 3
    assert ids("dead")[0] == good  # the failed samples are scored (as errors), so the set is the same


def test_a_mostly_failed_run_is_ranked_nowhere_and_listed_with_why(runs: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from regbench.report.leaderboard import SCHEMA_FILE

    result, board = leaderboard(runs, tmp_path / "lb.json")
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    vqa, detection = board["tasks"]["demo_vqa_en"], board["tasks"]["demo_detection"]
    dead = vqa["excluded"]["dead"]
    assert (dead["n_samples"], dead["n_errors"], dead["n_parse_failures"]) == (6, 4, 0)
    assert "4 of 6 samples failed (4 model requests failed, 0 outputs could not be read): 67%" in dead["reason"]
    assert "more than the 50%" in dead["reason"]
    assert "unreadable" in detection["excluded"] and detection["excluded"]["unreadable"]["n_parse_failures"] == 6
    assert "dead" not in vqa["models"] and "dead" not in ranked_anywhere(board, "demo_vqa_en")
    assert "unreadable" not in detection["models"] and "unreadable" not in ranked_anywhere(board, "demo_detection")
    assert "half" in ranked_anywhere(board, "demo_vqa_en")  # 3 of 6 failed: not more than half
    assert board["families"]["vqa"]["unranked_reasons"]["dead"].startswith(
        "no run ranked: demo_vqa_en: set aside, 4 of 6 samples failed"
    )
    assert board["max_failure_rate"] == 0.5 and "50%" in board["ranking_rule"]
    aside = "set aside, in no ranking, table or chart"
    assert f"dead · demo_vqa_en: {aside}: 4 of 6 samples failed" in result.stderr
    assert f"unreadable · demo_detection: {aside}: 6 of 6 samples failed" in result.stderr

    # the threshold is an option: at 1.0 every run is ranked; a bad value is a usage error
    _, board = leaderboard(runs, tmp_path / "all.json", "--max-failure-rate", "1")
    assert {"dead", "half"} <= ranked_anywhere(board, "demo_vqa_en") and board["tasks"]["demo_vqa_en"]["excluded"] == {}
    bad = invoke("leaderboard", runs, "-o", tmp_path / "x.json", "--max-failure-rate", "1.5")
    assert bad.exit_code == 2 and "--max-failure-rate" in bad.output and "Traceback" not in bad.output


def test_a_run_over_other_samples_is_shown_marked_and_not_ranked(runs: Path, tmp_path: Path) -> None:
    _, board = leaderboard(runs, tmp_path / "lb.json")
    vqa = board["tasks"]["demo_vqa_en"]
    limited = vqa["models"]["limited"]
    assert limited["comparable"] is False and limited["n_samples"] == 3
    assert limited["note"] == "scored on 3 samples (--limit 3), not the 6 samples the 3 ranked runs share"
    assert limited["values"]["token_f1"] >= vqa["models"]["good"]["values"]["token_f1"]  # shown; it would top it
    assert "limited" not in ranked_anywhere(board, "demo_vqa_en")
    for model in ("good", "fair", "half"):
        entry = vqa["models"][model]
        assert entry["comparable"] is True and "note" not in entry and entry["n_samples"] == 6
    assert (vqa["models"]["half"]["n_errors"], vqa["models"]["good"]["n_errors"]) == (3, 0)
    assert vqa["rankings"]["token_f1"][0]["order"][0] == "good"
    assert "limited" not in board["families"]["vqa"]["mean_rank"]
    assert board["families"]["vqa"]["unranked_reasons"]["limited"] == (
        "no run ranked: demo_vqa_en: scored on 3 samples (--limit 3), not the 6 samples the 3 ranked runs share"
    )


def test_another_data_file_and_unrecorded_ids(runs: Path, tmp_path: Path) -> None:
    # the same task (same name, same ids) over an edited copy of its data: other references, not comparable
    copy = tmp_path / "tasks" / "vqa"
    shutil.copytree(REPO / "tasks" / "vqa", copy)
    (tmp_path / "tasks" / "data").symlink_to(REPO / "tasks" / "data")  # the images the data file points at
    data = copy / "data" / "demo_vqa_en.jsonl"
    edited = data.read_text().replace('"answer": "yes"', '"answer": "no"', 1)
    assert edited != data.read_text()
    data.write_text(edited)
    mixed = tmp_path / "runs"
    for model in ("good", "fair"):
        shutil.copytree(runs / model / "demo_vqa_en", mixed / model / "demo_vqa_en")
    assert score(mixed, str(copy / "demo_vqa_en.yaml"), "edited", recorded("demo_vqa_en")).exit_code == 0
    # an older run: no sample_ids in its results.json and no samples.jsonl beside it
    old = mixed / "old" / "demo_vqa_en"
    shutil.copytree(runs / "fair" / "demo_vqa_en", old)
    results = json.loads((old / "results.json").read_text())
    del results["sample_ids"]
    (old / "results.json").write_text(json.dumps({**results, "model": "old"}))
    (old / "samples.jsonl").unlink()

    result, board = leaderboard(mixed, tmp_path / "lb.json")
    models = board["tasks"]["demo_vqa_en"]["models"]
    assert models["edited"]["comparable"] is False
    assert models["edited"]["note"] == "scored against another data file than the 3 ranked runs (sha256 differs)"
    assert models["old"]["comparable"] is True and "taken as the same samples" in models["old"]["note"]
    assert models["old"]["sample_ids"] is None
    assert ranked_anywhere(board, "demo_vqa_en") == {"good", "fair", "old"}
    assert "edited · demo_vqa_en: scored against another data file" in result.stderr


def test_tables_mark_the_other_sample_set_and_show_counts(runs: Path, tmp_path: Path) -> None:
    tex = tmp_path / "tables.tex"
    result = invoke("export", "latex", runs, "-o", tex, "--standalone")
    assert result.exit_code == 0, result.output
    latex = tex.read_text()
    table = latex[latex.index("demo\\_vqa\\_en") - 30 :].split(r"\end{table}")[0]
    rows = [line.split(" & ")[0] for line in latex.splitlines() if line.endswith(r"\\")]
    assert "good" in rows and "dead" not in rows and "unreadable" not in rows
    row = next(line for line in table.splitlines() if line.startswith("limited"))
    assert row.startswith(r"limited$^{\dagger}$ &") and r"\textbf" not in row  # its perfect 3 answers: unmarked
    good = next(line for line in table.splitlines() if line.startswith("good"))
    assert r"\textbf" in good
    caption = table.split(r"\caption{")[1].split("\n")[0]
    assert r"$^{\dagger}$scored on 3 samples (-{}-limit 3), not the 6 samples the 3 ranked runs share" in caption
    assert "limited: n = 3, failed requests 0, parse failures 0" in caption
    assert "half: n = 6, failed requests 3, parse failures 0" in caption
    assert "dead · demo_vqa_en: set aside, in no ranking, table or chart" in result.stderr
    assert "Overfull" not in pdflatex(tex)

    md = tmp_path / "tables.md"
    assert invoke("export", "markdown", runs, "-o", md).exit_code == 0
    markdown = md.read_text()
    assert "| limited † |" in markdown and "† scored on 3 samples (--limit 3)" in markdown
    assert "good: n = 6, failed requests 0, parse failures 0" in markdown and "dead" not in markdown
    # at 1.0 the mostly failed runs are rows again
    assert invoke("export", "markdown", runs, "-o", md, "--max-failure-rate", "1.0").exit_code == 0
    assert "| dead |" in md.read_text()


def test_plots_leave_out_failed_runs_and_mark_other_sample_sets(runs: Path, tmp_path: Path) -> None:
    result = invoke("plot", runs, "-o", tmp_path, "--format", "svg")
    assert result.exit_code == 0, result.output
    bars = (tmp_path / "bars_demo_vqa_en.svg").read_text()
    assert "limited ‡" in bars and "scored on 3 samples (--limit 3)" in bars and "dead" not in bars
    assert "good" in bars and "unreadable" not in (tmp_path / "bars_demo_detection.svg").read_text()
    radar = (tmp_path / "radar_families.svg").read_text()
    assert "fair" in radar and "limited" not in radar and "dead" not in radar
    assert "set aside, in no ranking, table or chart" in result.stderr


def test_every_run_set_aside_is_an_error(runs: Path, tmp_path: Path) -> None:
    only = tmp_path / "runs"
    shutil.copytree(runs / "dead", only / "dead")
    result = invoke("leaderboard", only, "-o", tmp_path / "lb.json")
    assert result.exit_code == 2 and "was set aside" in result.output and "Traceback" not in result.output


def test_the_cli_default_is_the_reports_default() -> None:
    from regbench import cli_report
    from regbench.report import collect

    assert cli_report.DEFAULT_MAX_FAILURE_RATE == collect.DEFAULT_MAX_FAILURE_RATE


def test_page_marks_the_other_sample_set_and_lists_the_failed_run(runs: Path, tmp_path: Path) -> None:
    needs("chromium")
    from selenium.webdriver.common.by import By

    leaderboard(runs, tmp_path / "lb.json", "--html")
    page = tmp_path / "lb.html"
    with chromium(tmp_path) as driver:
        driver.get(page.as_uri())
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        table = driver.find_element(By.CSS_SELECTOR, "table[data-family='vqa']")
        keys = [th.get_attribute("data-key") for th in table.find_elements(By.TAG_NAME, "th")]
        rows = {r.get_attribute("data-model"): r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert set(rows) == {"good", "fair", "half", "limited"}  # dead is in no table

        def cell(model: str, key: str) -> Any:
            return rows[model].find_elements(By.TAG_NAME, "td")[keys.index(key)]

        limited = rows["limited"]
        assert "not-comparable" in (limited.get_attribute("class") or "")
        assert cell("limited", "rank").text == "–" and "--limit 3" in cell("limited", "rank").get_attribute("title")
        assert cell("limited", "note").text.startswith("scored on 3 samples (--limit 3)")
        assert "best" not in (cell("limited", "token_f1").get_attribute("class") or "")
        assert "best" in (cell("good", "token_f1").get_attribute("class") or "")
        assert (cell("limited", "n").text, cell("half", "n").text, cell("half", "errors").text) == ("3", "6", "3")
        assert cell("good", "rank").text == "1" and cell("good", "note").text == ""
        aside = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "p.excluded")]  # one per family
        assert any("dead · demo_vqa_en: 4 of 6 samples failed" in text for text in aside)
        assert any("unreadable · demo_detection: 6 of 6 samples failed" in text for text in aside)
        driver.save_screenshot(str(tmp_path / "page.png"))
