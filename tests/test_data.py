"""The canonical JSONL loader: relative images, unknown fields to meta, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.data import load_samples
from regbench.errors import DataError
from regbench.spec import TaskSpec, load_spec
from tests.conftest import write_jsonl


def task_at(tmp_path: Path, data: str = "data/d.jsonl") -> TaskSpec:
    path = tmp_path / "t.yaml"
    path.write_text(f"task: t\nfamily: vqa\ndataset: {{path: {data}}}\nmetrics: [vqa]\n")
    return load_spec(path, TaskSpec)


def test_images_resolve_relative_to_the_data_file_and_extra_fields_go_to_meta(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "data" / "d.jsonl",
        [
            {"id": 1, "image": "img/a.png", "question": "q", "answer": "a", "source": "slake", "meta": {"k": 1}},
            {"id": "2", "image": ["img/b.png", "img/c.png"], "objects": [{"name": "x", "boxes": [[0, 0, 1, 1]]}]},
            {"id": "3", "image": None, "meta": None},
        ],
    )
    samples = load_samples(task_at(tmp_path))
    assert samples[0].id == "1" and samples[0].image == [str(tmp_path / "data" / "img" / "a.png")]
    assert samples[0].meta == {"source": "slake", "k": 1}
    assert len(samples[1].image) == 2 and samples[1].objects[0].boxes == [[0, 0, 1, 1]]
    assert samples[2].image == [] and samples[2].meta == {}


def test_limit(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "d.jsonl", [{"id": str(i)} for i in range(10)])
    assert [s.id for s in load_samples(task_at(tmp_path), limit=3)] == ["0", "1", "2"]


def test_missing_data_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset file not found: .*nope\.jsonl"):
        load_samples(task_at(tmp_path, "nope.jsonl"))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "d.jsonl:2: not valid JSON"),
        ('["a list"]', "d.jsonl:2: expected a JSON object"),
        ('{"id": "b", "objects": [{"name": "x", "boxes": [[0, 1, 2]]}]}', "d.jsonl:2: field objects.0.boxes"),
        ('{"question": "no id"}', "d.jsonl:2: field id"),
        ('{"id": "a"}', "sample id 'a' appears twice"),
        ('{"id": "b", "meta": "ab"}', "d.jsonl:2: field meta: expected a JSON object, got str"),
        ('{"id": "b", "meta": [["k", 1]]}', "d.jsonl:2: field meta: expected a JSON object, got list"),
        ('{"id": "b", "image": 5}', "d.jsonl:2: field image: expected a path or a list of paths, got 5"),
        ('{"id": "b", "image": {"a.png": 1}}', "d.jsonl:2: field image: expected a path or a list"),
        ('{"id": "b", "image": ["a.png", null]}', "d.jsonl:2: field image: expected a path or a list"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "data" / "d.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"id": "a"}\n' + line + "\n")
    with pytest.raises(DataError, match=fragment.replace(".", r"\.").replace("[", r"\[")):
        load_samples(task_at(tmp_path))


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no samples"):
        load_samples(task_at(tmp_path))


def test_data_check_reports_what_a_family_needs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    write_jsonl(
        tmp_path / "data" / "d.jsonl",
        [
            {"id": "ok", "objects": [{"name": "liver", "boxes": [[0.1, 0.1, 0.5, 0.5]]}]},
            {"id": "swapped", "objects": [{"name": "liver", "boxes": [[0.5, 0.1, 0.1, 0.5]]}]},
            {"id": "pixels", "image": "missing.png", "objects": [{"name": "x", "boxes": [[10, 10, 50, 50]]}]},
            {"id": "empty"},
        ],
    )
    (tmp_path / "t.yaml").write_text("task: t\nfamily: detection\ndataset: {path: data/d.jsonl}\nmetrics: [x]\n")
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path / "t.yaml")])
    assert result.exit_code == 1
    assert "4 samples, 4 problem(s)" in result.output
    assert "'swapped': object 'liver' box 0: [0.5, 0.1, 0.1, 0.5] has a corner swapped" in result.output
    assert "'pixels': image not found" in result.output and "is not in 0–1" in result.output
    assert "'empty': `objects` is empty" in result.output
    assert CliRunner().invoke(app, ["data", "check", "demo"]).exit_code == 0
