"""path_vqa: PathVQA's Hugging Face parquet shards (embedded images cached) into canonical samples."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from regbench.data.readers.common import ReaderError  # noqa: E402  (after the skip)
from regbench.data.readers.path_vqa import PathVqa  # noqa: E402
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings  # noqa: E402


def png_bytes(value: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (3, 2), value).save(out, format="PNG")
    return out.getvalue()


def shard(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image), ("question", pa.string()), ("answer", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "path-vqa"
    png(root / "images" / "local.jpg")
    # Written out of name order on purpose: shards are read by name.
    shard(
        root / "data" / "test-00001-of-00002-b2.parquet",
        [
            {"image": {"bytes": png_bytes(3), "path": "c.png"}, "question": "Is this malignant?", "answer": "no"},
            {"image": {"bytes": None, "path": None}, "question": "What is shown?", "answer": "fibrosis"},
            {"image": {"bytes": png_bytes(4), "path": None}, "question": "What is shown?", "answer": " "},
        ],
    )
    shard(
        root / "data" / "test-00000-of-00002-a1.parquet",
        [
            {"image": {"bytes": png_bytes(1), "path": "a.png"}, "question": "Is there necrosis? ", "answer": "Yes"},
            {"image": {"bytes": None, "path": "images/local.jpg"}, "question": "What organ?", "answer": "liver"},
        ],
    )
    shard(root / "data" / "train-00000-of-00001-c3.parquet", [])
    return root


def test_reads_shards_in_name_order_with_cached_images(root: Path, tmp_path: Path, cache: Path) -> None:
    samples, skips, stderr = load(PathVqa(), root, "test", base=tmp_path)
    got = [dump(s) for s in samples]
    images = [d.pop("image") for d in got]
    common = {"objects": [], "labels": [], "language": "en", "width": None, "height": None, "depth": None}
    common |= {"options": [], "meta": {}}
    assert got == [
        {"id": "test-0", "question": "Is there necrosis?", "answer": "Yes", "answer_type": "closed", **common},
        {"id": "test-1", "question": "What organ?", "answer": "liver", "answer_type": "open", **common},
        {"id": "test-2", "question": "Is this malignant?", "answer": "no", "answer_type": "closed", **common},
    ]
    assert Path(images[0][0]).parent == cache and Path(images[0][0]).read_bytes() == png_bytes(1)
    assert images[1] == [str(root / "images" / "local.jpg")]
    assert Path(images[2][0]).read_bytes() == png_bytes(3)
    second = root / "data" / "test-00001-of-00002-b2.parquet"
    assert warnings(stderr) == [
        f"{second}: row 2: skipped: image has neither bytes nor path",
        f"{second}: row 3: skipped: empty answer",
    ]
    assert skips.count == 2


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path, cache: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: path_vqa, root: {root}, split: test}}")

    def cached(data: bytes) -> str:  # embedded bytes land in the cache unchanged, named by their sha256
        return str(cache / (hashlib.sha256(data).hexdigest()[:32] + ".png"))

    def record(i: int, image: str, question: str, answer: str, answer_type: str) -> dict[str, Any]:
        return {
            "id": f"test-{i}", "image": [image], "question": question, "answer": answer, "objects": [],
            "labels": [], "answer_type": answer_type, "language": "en", "width": None, "height": None,
            "depth": None, "options": [], "meta": {},
        }  # fmt: skip

    # shards in name order (a1 before b2); ids count every row of the split, the skipped ones too
    assert written == canonical_lines(
        [
            record(0, cached(png_bytes(1)), "Is there necrosis?", "Yes", "closed"),
            record(1, str(root / "images" / "local.jpg"), "What organ?", "liver", "open"),
            record(2, cached(png_bytes(3)), "Is this malignant?", "no", "closed"),
        ]
    )
    second = root / "data" / "test-00001-of-00002-b2.parquet"
    assert warnings(stderr) == [
        f"{second}: row 2: skipped: image has neither bytes nor path",
        f"{second}: row 3: skipped: empty answer",
    ]
    assert stderr.splitlines()[-1] == "skipped 2 records"


def test_ids_count_skipped_rows_and_errors(root: Path, tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("test-4\ntest-0\n")
    samples, _, _ = load(PathVqa(), root, "test", {"ids": "ids.txt"}, base=tmp_path)
    assert [s.id for s in samples] == ["test-0"]  # test-4 is the malformed row 3 of the second shard
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: 'dev' is not a split of path_vqa; valid: train, validation"
    ):
        load(PathVqa(), root, "dev", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: no validation-\*\.parquet under .*data"):
        load(PathVqa(), root, "val", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'train'; 0 records skipped"):
        load(PathVqa(), root, "train", base=tmp_path)
    pq.write_table(pa.table({"question": ["q"]}), root / "data" / "validation-00000-of-00001.parquet")
    with pytest.raises(
        ReaderError, match=r"^dataset\.root: .*validation-00000-of-00001\.parquet: no column image, answer"
    ):
        load(PathVqa(), root, "validation", base=tmp_path)
