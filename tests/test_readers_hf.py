"""hf: Hugging Face datasets on disk (save_to_disk, hub parquet, datasets cache) read with pyarrow."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from regbench.data.readers.common import ReaderError  # noqa: E402  (after the skip)
from regbench.data.readers.hf import Hf, discover  # noqa: E402
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings  # noqa: E402
from tests.test_readers_path_vqa import png_bytes  # noqa: E402

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema(
    [
        ("qid", pa.int64()),
        ("img", IMAGE),
        ("q", pa.string()),
        ("a", pa.string()),
        ("kind", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("organ", pa.string()),
        ("raw", pa.binary()),
    ]
)
COLUMNS = {"id": "qid", "image": "img", "question": "q", "answer": "a", "answer_type": "kind", "labels": "tags"}


def arrow_stream(path: Path, rows: list[dict[str, Any]], schema: Any = SCHEMA) -> Path:
    """What `datasets` writes: the Arrow IPC stream format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def row(qid: int, q: str | None, a: Any, **extra: Any) -> dict[str, Any]:
    base = {"qid": qid, "img": {"bytes": png_bytes(qid), "path": f"{qid}.png"}, "q": q, "a": a, "kind": "OPEN"}
    base |= {"tags": ["liver", "ct"], "organ": "abdomen", "raw": b"\x00"}
    return base | extra


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """`DatasetDict.save_to_disk` output."""
    root = tmp_path / "saved"
    png(root / "files" / "7.png")
    (root / "train").mkdir(parents=True)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    arrow_stream(
        root / "test" / "data-00000-of-00001.arrow",
        [
            row(1, "What organ is shown? ", "Liver"),
            row(2, "Is it normal?", "yes", kind="CLOSED", tags=["single"]),
            row(3, None, "x"),
            row(4, "q", "a", img={"bytes": None, "path": None}),
            row(1, "Again?", "x"),
            row(7, "Local?", "y", img={"bytes": None, "path": "files/7.png"}, kind=None),
            row(8, "Which?", "z", kind="maybe"),
        ],
    )
    arrow_stream(root / "train" / "data-00000-of-00001.arrow", [row(9, "q", "a")])
    return root


def test_save_to_disk_layout_with_column_mapping(saved: Path, tmp_path: Path, cache: Path) -> None:
    samples, skips, stderr = load(Hf(), saved, "test", {"columns": COLUMNS}, base=tmp_path)
    got = [dump(s) for s in samples]
    images = [d.pop("image") for d in got]
    common = {"objects": [], "language": "en", "width": None, "height": None, "depth": None, "options": []}
    assert got == [
        {
            "id": "1",
            "question": "What organ is shown?",
            "answer": "Liver",
            "labels": ["liver", "ct"],
            "answer_type": "open",
            "meta": {"organ": "abdomen"},
            **common,
        },
        {
            "id": "2",
            "question": "Is it normal?",
            "answer": "yes",
            "labels": ["single"],
            "answer_type": "closed",
            "meta": {"organ": "abdomen"},
            **common,
        },
        {
            "id": "7",
            "question": "Local?",
            "answer": "y",
            "labels": ["liver", "ct"],
            "answer_type": None,
            "meta": {"organ": "abdomen"},
            **common,
        },
    ]
    assert Path(images[0][0]).parent == cache and Path(images[0][0]).read_bytes() == png_bytes(1)
    assert images[2] == [str(saved / "files" / "7.png")]
    path = saved / "test" / "data-00000-of-00001.arrow"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: no question",
        f"{path}: row 4: skipped: image has neither bytes nor path",
        f"{path}: row 5: skipped: repeated id '1' (first at row 1)",
        f"{path}: row 7: skipped: answer_type 'maybe' is neither open nor closed",
    ]
    assert skips.count == 4


def test_data_export_writes_the_canonical_lines(saved: Path, spec_root: Path, tmp_path: Path, cache: Path) -> None:
    columns = "{id: qid, image: img, question: q, answer: a, answer_type: kind, labels: tags}"
    written, stderr = export(
        spec_root, tmp_path, f"{{loader: hf, root: {saved}, split: test, options: {{columns: {columns}}}}}"
    )

    def record(qid: int, image: str, question: str, answer: str, labels: list[str], kind: str | None) -> dict:
        return {
            "id": str(qid), "image": [image], "question": question, "answer": answer, "objects": [],
            "labels": labels, "answer_type": kind, "language": "en", "width": None, "height": None, "depth": None,
            "options": [], "meta": {"organ": "abdomen"},  # the binary column `raw` is left out
        }  # fmt: skip

    def cached(qid: int) -> str:  # embedded bytes written once, unchanged, named by their sha256
        return str(cache / (hashlib.sha256(png_bytes(qid)).hexdigest()[:32] + ".png"))

    assert written == canonical_lines(
        [
            record(1, cached(1), "What organ is shown?", "Liver", ["liver", "ct"], "open"),
            record(2, cached(2), "Is it normal?", "yes", ["single"], "closed"),
            record(7, str(saved / "files" / "7.png"), "Local?", "y", ["liver", "ct"], None),
        ]
    )
    path = saved / "test" / "data-00000-of-00001.arrow"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: no question",
        f"{path}: row 4: skipped: image has neither bytes nor path",
        f"{path}: row 5: skipped: repeated id '1' (first at row 1)",
        f"{path}: row 7: skipped: answer_type 'maybe' is neither open nor closed",
    ]
    assert stderr.splitlines()[-1] == "skipped 4 records"


def test_constants_and_positional_ids(saved: Path, tmp_path: Path) -> None:
    options = {
        "columns": {"question": "q", "answer": "a", "options": "organ"},
        "language": "zh",
        "answer_type": "closed",
    }
    samples, _, _ = load(Hf(), saved, "train", options, base=tmp_path)
    # A string column mapped to a list field is a one-item list; binary columns never reach meta.
    assert [(s.id, s.language, s.answer_type, s.image, s.options, s.meta) for s in samples] == [
        ("train-0", "zh", "closed", [], ["abdomen"], {"qid": 9, "kind": "OPEN", "tags": ["liver", "ct"]}),
    ]


def test_hub_parquet_and_datasets_cache_layouts(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    for name in ("data/test-00000-of-00002.parquet", "data/test-00001-of-00002.parquet", "data/train.parquet"):
        (hub / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([row(len(name), "q", "a")], schema=SCHEMA), hub / name)
    assert {k: [p.name for p in v] for k, v in discover(hub).items()} == {
        "test": ["test-00000-of-00002.parquet", "test-00001-of-00002.parquet"],
        "train": ["train.parquet"],
    }
    converted = tmp_path / "converted"
    (converted / "default" / "validation").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([row(5, "q", "a")], schema=SCHEMA), converted / "default" / "validation" / "0000.parquet"
    )
    assert list(discover(converted)) == ["validation"]
    samples, _, _ = load(Hf(), converted, "validation", {"columns": {"id": "qid", "answer": "a"}}, base=tmp_path)
    assert [s.id for s in samples] == ["5"]

    cache_dir = tmp_path / "hf-cache" / "path-vqa" / "default" / "0.0.0" / "abc123"
    arrow_stream(cache_dir / "path-vqa-test-00000-of-00002.arrow", [row(1, "q", "a")])
    arrow_stream(cache_dir / "path-vqa-test-00001-of-00002.arrow", [row(2, "q", "a")])
    arrow_stream(cache_dir / "path-vqa-train.arrow", [row(3, "q", "a")])
    arrow_stream(cache_dir / "cache-5f2e.arrow", [row(4, "q", "a")])
    samples, _, _ = load(Hf(), tmp_path / "hf-cache", "test", {"columns": {"answer": "a"}}, base=tmp_path)
    assert [s.id for s in samples] == ["test-0", "test-1"]
    assert sorted(discover(tmp_path / "hf-cache")) == ["test", "train"]


def test_errors_name_the_field(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ReaderError, match=r"^dataset\.options\.columns\.question: no column 'question' in .*columns: \["
    ):
        load(Hf(), saved, "test", {"columns": {"question": "question"}}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.columns: Field required"):
        load(Hf(), saved, "test", {}, base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.options\.columns\.caption: unknown option of hf; valid: id, image, question"
    ):
        load(Hf(), saved, "test", {"columns": {"caption": "c"}}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'validation' is not a split of hf; valid: test, train$"):
        load(Hf(), saved, "validation", {"columns": COLUMNS}, base=tmp_path)
    arrow_stream(saved / "validation" / "data-00000-of-00001.arrow", [row(1, None, "a")])
    with pytest.raises(
        ReaderError, match=r"^dataset\.root: no valid record left .*split 'validation'; 1 records skipped"
    ):
        load(Hf(), saved, "validation", {"columns": COLUMNS}, base=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'test' is not a split of hf; valid: none found under"):
        load(Hf(), empty, "test", {"columns": COLUMNS}, base=tmp_path)
