"""The command line: exit codes and messages for bad input, run/score/list on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tests.test_runner  # noqa: F401  (registers the test_exact plugin)
from regbench.cli import app
from tests.conftest import write_jsonl

cli = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_help_lists_commands() -> None:
    code, text = invoke("--help")
    assert code == 0
    for command in ("run", "score", "list"):
        assert command in text


def test_unknown_task_exits_2_with_suggestion(tmp_path: Path) -> None:
    code, text = invoke("run", "--model", "medrega-demo", "--task", "grounded_gr", "--output", str(tmp_path))
    assert code == 2
    assert "Unknown task 'grounded_gr'" in text and "Did you mean: grounded_rg" in text


def test_unknown_model_exits_2_with_suggestion(tmp_path: Path) -> None:
    code, text = invoke("run", "--model", "medrega-dmeo", "--task", "grounded_rg", "--output", str(tmp_path))
    assert code == 2 and "Did you mean: medrega-demo" in text


def test_malformed_task_yaml_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: x\nfamily: detection\ndataset: {path: d.jsonl}\nmetrics: [region_aligned]\nlanguage: fr\n")
    code, text = invoke("score", "--task", str(bad), "--predictions", str(bad))
    assert code == 2
    assert "bad.yaml" in text and "language" in text and "expected one of" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("adapter: opnai\n", "adapter: Unknown model adapter 'opnai'. Did you mean: openai?"),
        ("adapter: openai\nbase_url: http://127.0.0.1:9/v1\nbox_format: medregaa\n", "box_format: Unknown box format"),
        ("adapter: openai\n", "base_url: the openai adapter needs the server's URL"),
        (
            "adapter: openai\nbase_url: http://127.0.0.1:9/v1\nbox_format: qwen25_vl(pixels=1)\n",
            "box_format: box format qwen25_vl has no option 'pixels'",
        ),
    ],
)
def test_a_bad_model_yaml_names_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "m.yaml").write_text("model: m\n" + body)
    code, text = invoke("run", "--model", str(tmp_path / "m.yaml"), "--task", "demo_vqa_en", "-o", str(tmp_path))
    assert code == 2 and f"m.yaml: {message}" in " ".join(text.split())


def test_a_box_format_typo_names_the_flag(tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "vqa1", "output": "yes"}])
    code, text = invoke("score", "--task", "demo_vqa_en", "-p", str(preds), "--box-format", "medregaa")
    flat = " ".join(text.replace("│", " ").split())
    expected = "Unknown box format 'medregaa'. Did you mean: medrega, medrega_released?"
    assert code == 2 and f"Invalid value for '--box-format': {expected}" in flat


def test_a_box_format_typo_in_a_task_yaml_names_file_and_field(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "answer": "x"}])
    (tmp_path / "t.yaml").write_text(
        "task: t\nfamily: vqa\nbox_format: medrga\ndataset: {path: d.jsonl}\nmetrics: [vqa]\n"
    )
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": "x"}])
    code, text = invoke("score", "--task", str(tmp_path / "t.yaml"), "-p", str(preds), "-o", str(tmp_path / "o"))
    assert code == 2 and "t.yaml: box_format: Unknown box format 'medrga'" in " ".join(text.split()), text


def test_a_duplicate_sample_id_names_the_data_file(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "answer": "x"}, {"id": "b"}, {"id": "a", "answer": "y"}])
    (tmp_path / "t.yaml").write_text("task: t\nfamily: vqa\ndataset: {path: d.jsonl}\nmetrics: [vqa]\n")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": "x"}])
    code, text = invoke("score", "--task", str(tmp_path / "t.yaml"), "-p", str(preds), "-o", str(tmp_path / "o"))
    flat = " ".join(text.split())
    assert code == 2 and f"{data}: sample id 'a' appears twice (samples 1 and 3; task t)" in flat, text


def test_missing_data_file_exits_2(tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text("task: x\nfamily: vqa\ndataset: {path: missing.jsonl}\nmetrics: [test_exact]\n")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "output": "a"}])
    code, text = invoke("score", "--task", str(task), "--predictions", str(preds), "--output", str(tmp_path))
    assert code == 2 and "dataset file not found" in text and "missing.jsonl" in text


def test_missing_predictions_file_exits_2(tmp_path: Path) -> None:
    code, text = invoke("score", "--task", "grounded_rg", "--predictions", str(tmp_path / "none.jsonl"))
    assert code == 2 and "predictions file not found" in text


def test_list_commands_run() -> None:
    for what in ("tasks", "models", "metrics", "formats"):
        code, text = invoke("list", what)
        assert code == 0, text
    assert "grounded_rg" in invoke("list", "tasks")[1]
    assert "medrega" in invoke("list", "formats")[1]


def test_piped_tables_are_not_cut_at_80_columns() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "regbench", "list", "tasks"], capture_output=True, text=True, env=env, timeout=60
    )
    row = next(line for line in done.stdout.splitlines() if "demo_classification_multilabel " in line)
    assert "demo_classification_multilabel.yaml" in row and len(row) > 80


def test_console_script_cold_start_and_exit_code(tmp_path: Path) -> None:
    env = {**os.environ, "REGBENCH_PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "regbench", "run", "--model", "nope", "--task", "grounded_rg"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2 and "Unknown model 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from regbench.cli import app; "
        "heavy = [m for m in ('numpy', 'scipy', 'torch', 'jieba', 'regbench.runner') if m in sys.modules]; "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("flag", ["--box-format", None])
def test_score_handwritten_task_and_predictions_outside_the_repo(tmp_path: Path, flag: str | None) -> None:
    data = write_jsonl(
        tmp_path / "elsewhere" / "data.jsonl",
        [
            {"id": "a", "question": "Where?", "objects": [{"name": "liver", "boxes": [[0.1, 0.1, 0.5, 0.5]]}]},
            {"id": "b", "question": "Where?", "objects": [{"name": "liver", "boxes": [[0.1, 0.1, 0.5, 0.5]]}]},
        ],
    )
    task = tmp_path / "elsewhere" / "task.yaml"
    task.write_text(f"task: mine\nfamily: detection\ndataset: {{path: {data.name}}}\nmetrics: [test_exact]\n")
    preds = write_jsonl(
        tmp_path / "preds.jsonl",
        [
            {"id": "a", "output": "<ref>liver</ref><box>[[0.1, 0.1, 0.5, 0.5]]</box>"},
            {"id": "b", "output": "<ref>liver</ref><box>[[100, 100, 500, 500]]</box>"},
        ],
    )
    args = ["score", "--task", str(task), "--predictions", str(preds), "--output", str(tmp_path / "out")]
    if flag:
        args += [flag, "normalized"]
    code, text = invoke(*args)
    assert code == 0, text
    results = json.loads((tmp_path / "out" / "preds" / "mine" / "results.json").read_text())
    assert results["config"]["run"]["box_format"] == ("normalized" if flag else "auto")
    records = [json.loads(x) for x in (tmp_path / "out/preds/mine/samples.jsonl").read_text().splitlines()]
    if flag:  # read as 0-1 floats: sample a is exact, sample b's 100s clip to 1
        assert records[0]["parsed"]["objects"][0]["boxes"] == [[0.1, 0.1, 0.5, 0.5]]
        assert records[1]["parsed"]["objects"][0]["boxes"] == [[1.0, 1.0, 1.0, 1.0]]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n', "preds.jsonl:2: id 'a' appears twice"),
        ('{"id": "a", "output": "x"}\nnot json\n', "preds.jsonl:2: not valid JSON"),
        ('{"output": "x"}\n', 'preds.jsonl:1: expected {"id": ..., "output": ...}'),
        ("\n", "no predictions in the file"),
        ('{"id": "zzz", "output": "x"}\n', "none of its 1 ids is a sample of task demo_vqa_en"),
        ('{"id": "vqa1", "output": [5]}\n', "preds.jsonl:1: output must be a string or a list of strings"),
    ],
)
def test_a_malformed_predictions_file_stops_before_scoring(tmp_path: Path, lines: str, message: str) -> None:
    (tmp_path / "preds.jsonl").write_text(lines)
    out = tmp_path / "out"
    code, text = invoke(
        "score", "--task", "demo_vqa_en", "--predictions", str(tmp_path / "preds.jsonl"), "-o", str(out)
    )
    assert code == 2 and message in " ".join(text.split()), text
    assert not out.exists()  # nothing scored as zeros


def test_predictions_that_are_not_utf8_or_carry_a_bom(tmp_path: Path) -> None:
    (tmp_path / "preds.jsonl").write_bytes(b'{"id": "vqa1", "output": "\xff"}\n')
    out = tmp_path / "out"
    code, text = invoke(
        "score", "--task", "demo_vqa_en", "--predictions", str(tmp_path / "preds.jsonl"), "-o", str(out)
    )
    assert code == 2 and "not UTF-8 text" in text, text
    (tmp_path / "preds.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "vqa1", "output": "yes"}\n')
    code, text = invoke(
        "score", "--task", "demo_vqa_en", "--predictions", str(tmp_path / "preds.jsonl"), "-o", str(out)
    )
    assert code == 3 and "samples have no prediction" in text, text  # read fine; the other samples have none
    assert json.loads((out / "preds" / "demo_vqa_en" / "samples.jsonl").read_text().splitlines()[0])["output"] == "yes"


def test_a_null_turn_in_a_list_is_an_empty_answer_as_a_null_output_is(tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"id": "vqa1", "output": [None]}])
    invoke("score", "--task", "demo_vqa_en", "--predictions", str(preds), "-o", str(tmp_path / "out"))
    record = json.loads((tmp_path / "out/preds/demo_vqa_en/samples.jsonl").read_text().splitlines()[0])
    assert record["output"] == "" and record["error"] is None  # was a pydantic ValidationError per sample


def test_template_include_is_a_spec_error(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "question": "q", "answer": "x"}])
    task = tmp_path / "t.yaml"
    task.write_text(
        f"task: t\nfamily: vqa\ndataset: {{path: {data.name}}}\n"
        "prompt: \"{% include '/etc/passwd' %}\"\nmetrics: [vqa]\n"
    )
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": "x"}])
    code, text = invoke("score", "--task", str(task), "--predictions", str(preds), "-o", str(tmp_path / "out"))
    assert code == 2 and "prompt" in text and "Traceback" not in text, text


def test_missing_and_unknown_prediction_ids_are_named(tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"id": "vqa1", "output": "yes"}, {"id": "zzz", "output": "no"}])
    code, text = invoke("score", "--task", "demo_vqa_en", "--predictions", str(preds), "-o", str(tmp_path / "out"))
    flat = " ".join(text.split())
    assert code == 3 and "ids are not in task demo_vqa_en and are ignored (e.g. 'zzz')" in flat, text
    assert "scored as errors" in flat and "samples have no prediction (demo_vqa_en: " in flat
    run = json.loads((tmp_path / "out" / "preds" / "demo_vqa_en" / "run.json").read_text())
    assert len(run["notes"]) == 2


def test_a_list_of_outputs_longer_than_the_turns_is_noted(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "answer": "x"}])
    (tmp_path / "t.yaml").write_text("task: t\nfamily: vqa\ndataset: {path: d.jsonl}\nmetrics: [vqa]\n")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": ["x", "y"]}])
    code, text = invoke("score", "--task", str(tmp_path / "t.yaml"), "-p", str(preds), "-o", str(tmp_path / "o"))
    assert code == 0, text
    notes = json.loads((tmp_path / "o" / "p" / "t" / "run.json").read_text())["notes"]
    expected = f"{preds}: 1 outputs are lists longer than the task's 1 turn(s) (e.g. 'a'); only the first 1 are used"
    assert notes == [expected]


def test_cache_info_and_clear(tmp_path: Path) -> None:
    from regbench.cache import ResponseCache
    from regbench.types import Response

    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", Response(text="x"))
    cache.close()
    code, text = invoke("cache", "info", str(tmp_path))
    assert code == 0 and "1 cached responses" in text
    assert invoke("cache", "clear", str(tmp_path))[0] == 0
    assert not (tmp_path / "cache.sqlite").exists()
    code, text = invoke("cache", "info", str(tmp_path))
    assert code == 2 and "no response cache" in text


def test_a_model_yaml_mistake_is_exit_2_not_3(tmp_path: Path) -> None:
    """Exit 3 means the run could not finish (a server down); a model YAML that lacks a field is input (2)."""
    model = tmp_path / "no-path.yaml"
    model.write_text("model: no-path\nadapter: replay\n", encoding="utf-8")
    code, text = invoke("run", "--model", str(model), "--task", "demo_vqa_en", "-o", str(tmp_path / "runs"))
    assert code == 2, text
    assert "no-path.yaml: path: the replay adapter needs `path`" in text


@pytest.mark.parametrize(
    ("family", "row", "field", "message"),
    [
        (
            "detection",
            {"id": "px", "objects": [{"name": "liver", "boxes": [[120, 200, 480, 830]]}]},
            "objects[0].boxes[0]",
            "[120.0, 200.0, 480.0, 830.0] is not in 0–1",
        ),
        (
            "detection",
            {"id": "sw", "objects": [{"name": "liver", "boxes": [[0.5, 0.1, 0.1, 0.5]]}]},
            "objects[0].boxes[0]",
            "has a corner swapped",
        ),
        ("detection", {"id": "no"}, "objects", "`objects` is empty but detection tasks score against it"),
        (
            "grounded_report",
            {"id": "no", "answer": "Clear lungs."},
            "objects",
            "`objects` is empty but grounded_report tasks score against it",
        ),
    ],
)
def test_a_bad_reference_stops_run_and_score_naming_file_line_and_field(
    tmp_path: Path, family: str, row: dict[str, object], field: str, message: str
) -> None:
    good = {"id": "ok", "answer": "Clear.", "objects": [{"name": "liver", "boxes": [[0.1, 0.1, 0.5, 0.5]]}]}
    data = write_jsonl(tmp_path / "d.jsonl", [good, row])
    task = tmp_path / "t.yaml"
    task.write_text(f"task: t\nfamily: {family}\ndataset: {{path: d.jsonl}}\nmetrics: [test_exact]\n")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "ok", "output": "x"}, {"id": row["id"], "output": "x"}])
    out = tmp_path / "o"
    code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(out))
    flat = " ".join(text.split())
    assert code == 2 and f"{data}:2: field {field}: sample '{row['id']}'" in flat and message in flat, text
    assert "Traceback" not in text and not out.exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": f"vqa{i}", "output": "yes"} for i in range(1, 7)])
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        code, text = invoke("score", "--task", "demo_vqa_en", "-p", str(preds), "-o", str(out), "--bootstrap", "0")
    finally:
        os.umask(previous)
    assert code == 0, text
    for name in ("results.json", "samples.jsonl", "run.json"):
        assert (out / "p" / "demo_vqa_en" / name).stat().st_mode & 0o777 == mode, name


def test_a_garbage_output_s_parse_error_is_capped_and_the_rest_of_the_record_kept(tmp_path: Path) -> None:
    box = {"name": "liver", "boxes": [[0.1, 0.1, 0.5, 0.5]]}
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "objects": [box]}])
    task = tmp_path / "t.yaml"
    task.write_text(f"task: t\nfamily: detection\ndataset: {{path: {data.name}}}\nmetrics: [test_exact]\n")
    garbage = " ".join(f"<box>[[{i}, 2, 3]]</box>" for i in range(2000))
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": garbage}])
    code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(tmp_path / "o"), "--bootstrap", "0")
    assert code == 0, text
    record = json.loads((tmp_path / "o" / "p" / "t" / "samples.jsonl").read_text())
    parsed = record["parsed"]
    assert parsed["ok"] is False and len(parsed["error"]) == 300 and parsed["error"].endswith("…"), parsed["error"]
    assert parsed["raw"] == garbage  # the output itself is kept whole


def test_an_unknown_metric_option_lists_the_allowed_ones(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "question": "q", "answer": "yes"}])
    task = tmp_path / "t.yaml"
    task.write_text(f"task: t\nfamily: vqa\ndataset: {{path: {data.name}}}\nmetrics: [{{name: vqa, mdoe: x}}]\n")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "output": "yes"}])
    code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(tmp_path / "o"))
    flat = " ".join(text.split())
    expected = f"{task}: metrics[0].mdoe: unknown option of the vqa metric (it takes mode, closed_threshold,"
    assert code == 2 and expected in flat, text


def test_a_replay_run_leaves_no_cache_file(tmp_path: Path) -> None:
    """Replayed outputs are their own record: no (empty) cache.sqlite next to them."""
    out = tmp_path / "runs"
    code, text = invoke("run", "--model", "medrega-demo", "--task", "demo_vqa_en", "-o", str(out))
    assert code == 0, text
    assert (out / "medrega-demo" / "demo_vqa_en" / "results.json").is_file()
    assert not (out / "cache.sqlite").exists()


def test_weights_folds_long_paths_in_a_narrow_terminal(tmp_path: Path) -> None:
    deep = tmp_path / ("a-very-long-directory-name-" * 4) / "weights"
    env = {**os.environ, "REGBENCH_WEIGHTS_DIR": str(deep), "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "regbench", "weights"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    flat = "".join(done.stdout.split()).replace("│", "").replace("┃", "")
    assert f"{deep}/bertscore".replace(" ", "") in flat or str(deep) in flat
