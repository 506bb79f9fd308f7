"""The readers through the command line: `regbench data export`, `data check`, and a run that records `n_skipped`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from tests.test_readers_common import png, write

runner = CliRunner()


@pytest.fixture
def slake_task(spec_root: Path, tmp_path: Path) -> Path:
    """A SLAKE 1.0 layout (a JSON array per split, images under imgs/) and a task reading its test split."""
    root = tmp_path / "Slake1.0"
    png(root / "imgs" / "xmlab1" / "source.jpg")
    records = [
        {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Which organ is abnormal?", "answer": "Lung",
         "q_lang": "en", "location": "Lung", "modality": "CT", "answer_type": "OPEN", "base_type": "vqa",
         "content_type": "Organ", "triple": ["vhead", "_", "_"], "qid": 11},
        {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Is this a CT?", "answer": "Yes",
         "q_lang": "en", "location": "Lung", "modality": "CT", "answer_type": "CLOSED", "base_type": "vqa",
         "content_type": "Modality", "triple": ["vhead", "_", "_"], "qid": 12},
        {"img_id": 2, "img_name": "xmlab2/missing.jpg", "question": "Where?", "answer": "Liver",
         "q_lang": "en", "location": "Abdomen", "modality": "MRI", "answer_type": "OPEN", "base_type": "vqa",
         "content_type": "Position", "triple": ["vhead", "_", "_"], "qid": 13},
        {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "哪个器官异常?", "answer": "肺",
         "q_lang": "zh", "location": "Lung", "modality": "CT", "answer_type": "OPEN", "base_type": "vqa",
         "content_type": "Organ", "triple": ["vhead", "_", "_"], "qid": 14},
    ]  # fmt: skip
    write(root / "test.json", json.dumps(records, ensure_ascii=False))
    task = spec_root / "tasks" / "slake_test.yaml"
    task.write_text(
        "task: slake_test\nfamily: vqa\n"
        f"dataset: {{loader: slake, root: {root}, split: test}}\n"
        "prompt: '{{ question }}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    return root


def test_data_export_writes_the_canonical_samples_and_reports_skips(slake_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "slake.jsonl"
    result = runner.invoke(app, ["data", "export", "slake_test", "-o", str(out)])
    assert result.exit_code == 0, result.output
    image = str(slake_task / "imgs" / "xmlab1" / "source.jpg")
    meta = {"img_id": 1, "location": "Lung", "modality": "CT", "base_type": "vqa", "triple": ["vhead", "_", "_"]}
    expected = [
        {"id": "11", "image": [image], "question": "Which organ is abnormal?", "answer": "Lung", "objects": [],
         "labels": [], "answer_type": "open", "language": "en", "width": None, "height": None, "depth": None,
         "options": [], "meta": {**meta, "content_type": "Organ"}},
        {"id": "12", "image": [image], "question": "Is this a CT?", "answer": "Yes", "objects": [],
         "labels": [], "answer_type": "closed", "language": "en", "width": None, "height": None, "depth": None,
         "options": [], "meta": {**meta, "content_type": "Modality"}},
    ]  # fmt: skip
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert list(json.loads(lines[0])) == [
        "id", "image", "question", "answer", "objects", "labels", "answer_type",
        "language", "width", "height", "depth", "options", "meta",
    ]  # fmt: skip
    assert "test.json: record 3: skipped:" in result.stderr and "missing.jpg" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "skipped 1 records"


def test_the_contracts_key_order_is_the_models_field_order() -> None:
    """export writes each model's ``__dict__``: its fields must be the contract's, in its order."""
    from regbench.data.export import FIELDS, OBJECT_FIELDS
    from regbench.types import Region, Sample

    assert tuple(Sample.model_fields) == FIELDS
    assert tuple(Region.model_fields) == OBJECT_FIELDS
    sample = Sample(id="1", objects=[{"name": "a", "boxes": [[0.1, 0.2, 0.3, 0.4]]}])
    assert list(sample.__dict__) == list(FIELDS) and list(sample.objects[0].__dict__) == list(OBJECT_FIELDS)


def test_each_line_is_json_dumps_of_the_canonical_record() -> None:
    """The writer's own object encoding (cached float texts) against json.dumps, unusual values included."""
    from regbench.data.export import canonical_line, canonical_record
    from regbench.data.readers.common import checked_region, checked_sample
    from regbench.types import Region, Sample

    tricky = 'a "quoted" \\ name, 肝脏, \u2028, \x07, "objects": [], '
    samples = [
        Sample(id="plain"),
        Sample(id="q", question=tricky, answer=tricky, meta={"objects": [], "x": [1.5, float("nan")]}),
        Sample(id="boxes", objects=[{"name": tricky, "boxes": [[0.1, 0.2, 0.3, 0.4]] * 2, "phrase": tricky}]),
        Sample(id="3d", objects=[{"boxes": [[0.0, 1e-05, 0.25, 1.0, 0.5, 0.999]]}, {"name": "b", "boxes": []}]),
        Sample(id="zeros", objects=[Region(boxes=[[0.0, -0.0, 0.5, 0.5]]), Region(boxes=[[-0.0, 0.0, 1.0, 1.0]])]),
        Sample(id="inf", objects=[{"boxes": [[float("inf"), float("nan"), 1.0, 1.0]]}]),
        # values the fast path leaves to the encoder: ints and bools in boxes (only trusted construction makes them)
        checked_sample(id="ints", objects=[checked_region("i", [[1, 0, True, 1.0]])]),
    ]
    for sample in samples + samples:  # twice: the second pass reads the cached float texts
        assert canonical_line(sample) == json.dumps(canonical_record(sample), ensure_ascii=False), sample.id


def test_data_export_limit_and_check(slake_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.jsonl"
    result = runner.invoke(app, ["data", "export", "slake_test", "-o", str(out), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["11"]
    assert result.stderr.strip().splitlines()[-1] == "skipped 0 records"
    checked = runner.invoke(app, ["data", "check", "slake_test"])
    assert "slake_test: 2 samples, ok, skipped 1 records" in checked.stdout
    assert "skipped: " in checked.stdout and "test.json: record 3: image not found" in checked.stdout


def test_data_check_opens_a_sample_of_the_images(slake_task: Path) -> None:
    (slake_task / "imgs" / "xmlab1" / "source.jpg").write_bytes(b"not an image")
    checked = runner.invoke(app, ["data", "check", "slake_test"])
    assert checked.exit_code == 1
    assert "image not readable: " in checked.stdout and "source.jpg" in checked.stdout


def test_a_run_on_reader_data_records_n_skipped(slake_task: Path, spec_root: Path, tmp_path: Path) -> None:
    predictions = tmp_path / "answers.jsonl"
    predictions.write_text('{"id": "11", "output": "Lung"}\n{"id": "12", "output": "No"}\n', encoding="utf-8")
    result = runner.invoke(
        app, ["score", "--task", "slake_test", "-p", str(predictions), "--output", str(tmp_path / "runs")]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "answers" / "slake_test" / "results.json").read_text())
    assert results["n_samples"] == 2
    assert results["n_skipped"] == 1
    assert "skipped 1 records" in result.stderr


@pytest.mark.parametrize(
    ("dataset", "field"),
    [
        ("{loader: slake, root: /nonexistent/Slake1.0, split: test}", "dataset.root"),
        ("{loader: slake, root: ROOT, split: dev}", "dataset.split"),
        ("{loader: slake, root: ROOT, split: test, options: {colour: red}}", "dataset.options.colour"),
        ("{loader: slake, root: ROOT, split: test, options: {language: fr}}", "dataset.options.language"),
        ("{loader: slakee, root: ROOT, split: test}", "dataset.loader"),
    ],
)
@pytest.mark.parametrize("command", ["export", "check", "score"])
def test_bad_reader_specs_exit_2_naming_the_field(
    dataset: str, field: str, command: str, slake_task: Path, spec_root: Path, tmp_path: Path
) -> None:
    task = spec_root / "tasks" / "bad.yaml"
    task.write_text(
        f"task: bad\nfamily: vqa\ndataset: {dataset.replace('ROOT', str(slake_task))}\n"
        "prompt: '{{ question }}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    predictions = tmp_path / "answers.jsonl"
    predictions.write_text('{"id": "11", "output": "Lung"}\n', encoding="utf-8")
    args = {
        "export": ["data", "export", str(task), "-o", str(tmp_path / "x.jsonl")],
        "check": ["data", "check", str(task)],
        "score": ["score", "--task", str(task), "-p", str(predictions), "--output", str(tmp_path / "runs")],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["export", "check"])
def test_a_dataset_with_no_valid_record_exits_2_naming_the_field(command: str, spec_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "broken" / "Slake1.0"
    records = [
        {"qid": 1, "img_name": "gone.jpg", "question": "Q?", "answer": "A", "q_lang": "en"},
        {"qid": 2, "q_lang": "en"},
    ]
    write(root / "test.json", json.dumps(records))
    task = spec_root / "tasks" / "broken.yaml"
    task.write_text(
        f"task: broken\nfamily: vqa\ndataset: {{loader: slake, root: {root}, split: test}}\n"
        "prompt: '{{ question }}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    out = tmp_path / "never.jsonl"
    args = ["data", "export", "broken", "-o", str(out)] if command == "export" else ["data", "check", "broken"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "dataset.root: no valid record left in the slake data" in result.output
    assert "2 records skipped" in result.output and "Traceback" not in result.output
    assert "test.json: record 1: skipped: image not found" in result.stderr  # each skip still says why
    assert not out.exists()


def test_data_check_compares_the_split_size_a_task_pins(slake_task: Path, spec_root: Path) -> None:
    task = spec_root / "tasks" / "pinned.yaml"
    task.write_text(
        f"task: pinned\nfamily: vqa\ndataset: {{loader: slake, root: {slake_task}, split: test, size: 3}}\n"
        "prompt: '{{ question }}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    checked = runner.invoke(app, ["data", "check", str(task)])
    assert checked.exit_code == 1
    assert "the split loads 2 samples; the task pins dataset.size: 3" in checked.stdout
    task.write_text(task.read_text().replace("size: 3", "size: 2"), encoding="utf-8")
    assert runner.invoke(app, ["data", "check", str(task)]).exit_code == 0
