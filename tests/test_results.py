"""results.json / samples.jsonl writers: the bytes are those of plain ``json.dumps``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regbench.results import SAMPLES_FILE, atomic_write, write_samples

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
_values = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)
_records = st.lists(st.dictionaries(st.text(), _values, max_size=6), max_size=5)


def _as_before(records: list[dict[str, Any]]) -> bytes:
    """What write_samples wrote before it streamed: one json.dumps per record, joined."""
    return ("\n".join(json.dumps(r, ensure_ascii=False, sort_keys=False) for r in records) + "\n").encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(_records)
def test_samples_lines_are_json_dumps_of_each_record(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_samples(Path(tmp), records)
        assert path.read_bytes() == _as_before(records)


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2000, 2500])
def test_samples_written_in_chunks_join_exactly(tmp_path: Path, n: int) -> None:
    records = [{"id": str(i), "text": "ünïcode ✓ \u2028", "box": [i / 7, 0.1, 1e-320, 1e16]} for i in range(n)]
    write_samples(tmp_path, iter(records))
    assert (tmp_path / SAMPLES_FILE).read_bytes() == _as_before(records)


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / SAMPLES_FILE, "old\n")

    def records() -> Any:
        yield {"id": "0"}
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_samples(tmp_path, records())
    assert (tmp_path / SAMPLES_FILE).read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [SAMPLES_FILE]
