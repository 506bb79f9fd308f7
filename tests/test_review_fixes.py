"""Bad input found by a review of the restructured code: each is a one-paragraph error or a right number."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from regbench.cli import app
from regbench.report.tables import _latex_escape, _md_cell
from tests.test_readers_common import png, write

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_an_error_message_holding_rich_markup_is_printed_as_text() -> None:
    code, text = invoke("run", "--model", "medrega-demo", "--task", "a[/b]")
    assert code == 2, text
    assert "a[/b]" in text and "Traceback" not in text


def test_a_task_yaml_that_is_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    task = tmp_path / "bad.yaml"
    task.write_bytes(b"task: x\xff\n")
    code, text = invoke("run", "--model", "medrega-demo", "--task", str(task))
    assert code == 2, text
    assert "not UTF-8 text" in text


def _slake(tmp_path: Path, records: bytes, ids: bytes | None = None) -> Path:
    root = tmp_path / "Slake1.0"
    png(root / "imgs" / "a.jpg")
    write(root / "test.json", records)
    options = ""
    if ids is not None:
        write(tmp_path / "ids.txt", ids)
        options = ", options: {ids: ids.txt}"
    task = tmp_path / "slake.yaml"
    task.write_text(
        f"task: s\nfamily: vqa\ndataset: {{loader: slake, root: {root}, split: test{options}}}\n"
        "prompt: '{{ question }}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    return task


def _record(qid: int) -> dict[str, object]:
    return {"qid": qid, "img_name": "a.jpg", "question": "q?", "answer": "a", "q_lang": "en", "answer_type": "OPEN"}


def test_a_dataset_file_that_is_not_utf8_is_exit_2_naming_the_root(tmp_path: Path) -> None:
    task = _slake(tmp_path, b'[{"qid": 1, "question": "caf\xe9"}]')
    code, text = invoke("data", "export", str(task), "-o", str(tmp_path / "x.jsonl"))
    assert code == 2, text
    assert "dataset.root" in text and "not UTF-8" in text and "Traceback" not in text


def test_an_ids_file_with_a_byte_order_mark_keeps_its_first_id(tmp_path: Path) -> None:
    records = json.dumps([_record(1), _record(2), _record(3)]).encode()
    task = _slake(tmp_path, records, ids=b"\xef\xbb\xbf1\n2\n")
    out = tmp_path / "x.jsonl"
    code, text = invoke("data", "export", str(task), "-o", str(out))
    assert code == 0, text
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1", "2"]


def test_data_export_to_a_directory_is_exit_2(tmp_path: Path) -> None:
    task = _slake(tmp_path, json.dumps([_record(1)]).encode())
    code, text = invoke("data", "export", str(task), "-o", str(tmp_path))
    assert code == 2, text
    assert "is a directory" in text


def test_a_corrupt_medmnist_file_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "mnist" / "breastmnist.npz", b"garbage")
    task = tmp_path / "m.yaml"
    task.write_text(
        f"task: m\nfamily: classification\ndataset: {{loader: medmnist, root: {tmp_path / 'mnist'}, split: test, "
        "options: {flag: breastmnist}}\nprompt: '{{ question }}'\nmetrics: [classification]\n",
        encoding="utf-8",
    )
    code, text = invoke("data", "export", str(task), "-o", str(tmp_path / "x.jsonl"))
    assert code == 2, text
    assert "not a MedMNIST .npz file" in text


def test_shards_run_with_another_model_spec_or_bootstrap_do_not_merge(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    other = tmp_path / "other.yaml"
    demo = (Path(__file__).resolve().parents[1] / "models" / "medrega-demo.yaml").read_text()
    recorded = Path(__file__).resolve().parents[1] / "models" / "recorded" / "medrega"
    other.write_text(
        demo.replace("recorded/medrega/{task}.jsonl", f"{recorded}/{{task}}.jsonl") + "generation: {temperature: 0.9}\n"
    )
    task = "demo_detection_medrega"
    assert invoke("run", "--model", "medrega-demo", "--task", task, "-o", str(out), "--shard", "0/2")[0] == 0
    assert invoke("run", "--model", str(other), "--task", task, "-o", str(out), "--shard", "1/2")[0] == 0
    shards = sorted(str(p) for p in (out / "medrega-demo" / task).glob("shard-*"))
    code, text = invoke("merge", *shards, "-o", str(tmp_path / "merged"))
    assert code == 2, text
    assert "model spec differs" in text
    assert (
        invoke("run", "--model", "medrega-demo", "--task", task, "-o", str(out), "--shard", "1/2", "--bootstrap", "50")[
            0
        ]
        == 0
    )
    code, text = invoke("merge", *shards, "-o", str(tmp_path / "merged"))
    assert code == 2 and "bootstrap" in text, text


def test_a_results_json_with_a_broken_interval_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert invoke("run", "--model", "medrega-demo", "--task", "demo_vqa_en", "-o", str(out))[0] == 0
    path = out / "medrega-demo" / "demo_vqa_en" / "results.json"
    data = json.loads(path.read_text())
    data["ci95"]["token_f1"] = [1.0]
    path.write_text(json.dumps(data))
    code, text = invoke("gate", str(path.parent), "--fail-under", "token_f1=0.1")
    assert code == 2, text
    assert "Traceback" not in text and "ci95" in text


def test_names_are_escaped_once_in_tables() -> None:
    assert _md_cell("a|b") == "a\\|b"
    assert _latex_escape("a\\b_{c}") == "a\\textbackslash{}b\\_\\{c\\}"
