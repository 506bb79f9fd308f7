"""results.json / samples.jsonl writers and readers: the bytes are those of plain ``json.dumps``, and a
samples.jsonl read into SampleRecords and written back is byte-identical."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regbench.errors import DataError
from regbench.results import SAMPLES_FILE, SampleRecord, atomic_write, read_samples, write_json_lines, write_samples

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
_values = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)
_records = st.lists(st.dictionaries(st.text(), _values, max_size=6), max_size=5)


def _as_before(records: list[dict[str, Any]]) -> bytes:
    """What samples.jsonl held before it was streamed: one json.dumps per record, joined."""
    return ("\n".join(json.dumps(r, ensure_ascii=False, sort_keys=False) for r in records) + "\n").encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(_records)
def test_samples_lines_are_json_dumps_of_each_record(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_json_lines(Path(tmp) / SAMPLES_FILE, records)
        assert path.read_bytes() == _as_before(records)


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2000, 2500])
def test_samples_written_in_chunks_join_exactly(tmp_path: Path, n: int) -> None:
    records = [{"id": str(i), "text": "ünïcode ✓ \u2028", "box": [i / 7, 0.1, 1e-320, 1e16]} for i in range(n)]
    write_json_lines(tmp_path / SAMPLES_FILE, iter(records))
    assert (tmp_path / SAMPLES_FILE).read_bytes() == _as_before(records)


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / SAMPLES_FILE, "old\n")

    def records() -> Any:
        yield _record("0")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_samples(tmp_path, records())
    assert (tmp_path / SAMPLES_FILE).read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [SAMPLES_FILE]


def _record(sample_id: str, **changes: Any) -> SampleRecord:
    fields = {
        "id": sample_id,
        "prompt": [{"role": "user", "content": "Où est le foie ? 肝脏", "images": []}],
        "outputs": ["<ref>liver</ref><box>[[1, 2, 30, 40]]</box>"],
        "output": "<ref>liver</ref><box>[[1, 2, 30, 40]]</box>",
        "error": None,
        "parsed": {"ok": True, "objects": [{"name": "liver", "boxes": [[0.001, 0.002, 0.03, 0.04]]}]},
        "reference": {
            "answer": "",
            "objects": [{"name": "liver", "boxes": [[0, 0, 0.5, 0.5]]}],
            "labels": [],
            "image": [],
        },
        "scores": {"iou": 0.25, "hits": 1},
        "stats": {"region_aligned": {"hits": 1, "iou_sum": float("nan")}},
        "index": 3,
    }
    return SampleRecord(**{**fields, **changes})


def test_a_record_is_written_with_its_fields_in_order() -> None:
    record = _record("s0")
    written = [name for name in SampleRecord.__dataclass_fields__ if name not in ("reading_errors", "judge")]
    assert list(record.to_dict()) == written  # reading_errors only when a plugin's own reading failed
    assert record.to_dict() == {name: getattr(record, name) for name in written}
    assert not record.parse_failed and _record("s1", parsed={"ok": False}).parse_failed
    assert not _record("s2", parsed={"ok": False}, error="turn 0: HTTP 500").parse_failed  # an error, not a parse
    failed_reading = _record("s3", reading_errors={"medrega_released": "no box"})
    assert failed_reading.parse_failed
    assert list(failed_reading.to_dict())[-2:] == ["reading_errors", "index"]
    judged = _record("s4", judge={"llm_judge": {"raw": "Score: 1", "verdict": 1, "parse_error": None}})
    assert list(judged.to_dict())[-3:] == ["stats", "judge", "index"]  # judge only for judged metrics


def test_samples_read_and_written_back_are_byte_identical(tmp_path: Path) -> None:
    records = [_record(f"s{i}", index=i) for i in range(3)]
    first = write_samples(tmp_path / "a", records).read_bytes()
    assert first == _as_before([r.to_dict() for r in records])
    assert write_samples(tmp_path / "b", read_samples(tmp_path / "a")).read_bytes() == first


def test_bundled_demo_samples_round_trip_through_sample_records(tmp_path: Path) -> None:
    """Bundled tasks with 3D boxes, Chinese text and multi-label outputs, run as the README does."""
    from typer.testing import CliRunner

    from regbench.cli import app

    tasks = "demo_detection_3d,demo_vqa_zh,demo_classification_multilabel"
    result = CliRunner().invoke(app, ["run", "--model", "medrega-demo", "--task", tasks, "-o", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "runs").rglob(SAMPLES_FILE))
    assert len(files) == 3
    for index, path in enumerate(files):
        records = read_samples(path)
        assert records and all(isinstance(r, SampleRecord) for r in records)
        assert write_samples(tmp_path / f"copy{index}", records).read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "not a samples.jsonl record (a JSON list, not an object)"),
        (
            '{"id": "s0", "extra": 1}',
            "missing prompt, outputs, output, error, parsed, reference, scores, stats, index; unknown extra",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_line_that_is_not_a_record_is_named_with_its_number(tmp_path: Path, line: str, problem: str) -> None:
    good = json.dumps(_record("s0").to_dict(), ensure_ascii=False)
    (tmp_path / SAMPLES_FILE).write_text(f"{good}\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"samples.jsonl:2: ") as info:
        read_samples(tmp_path)
    assert problem in str(info.value)
