"""slake: SLAKE 1.0's split JSON arrays into canonical samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.slake import Slake
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings, write, write_json


def qa(qid: Any, question: str, answer: Any, lang: str = "en", **extra: Any) -> dict[str, Any]:
    """A record with SLAKE's keys, in SLAKE's order."""
    record = {
        "img_id": 1,
        "img_name": "xmlab1/source.jpg",
        "question": question,
        "answer": answer,
        "q_lang": lang,
        "location": "Abdomen",
        "modality": "MRI",
        "answer_type": "OPEN",
        "base_type": "vqa",
        "content_type": "Modality",
        "triple": ["vhead", "_", "_"],
        "qid": qid,
    }
    record.update(extra)
    return record


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "Slake1.0"
    png(root / "imgs" / "xmlab1" / "source.jpg")
    write_json(
        root / "test.json",
        [
            qa(11, " What modality is used to take this image? ", "MRI"),
            qa(12, "这张图片是用什么方式拍摄的?", "核磁共振", "zh"),
            qa(13, "How many kidneys are there?", 2, answer_type="CLOSED "),
            qa(14, "Is this normal?", "No", img_name="xmlab9/source.jpg"),
            qa(15, "Which organ?", "Liver", answer_type="MAYBE"),
            qa(16, "  ", "Liver"),
            qa(11, "Again?", "Yes"),
            "not a record",
            qa(None, "Where?", "Here"),
            qa(17, "What is the largest organ?", ""),
        ],
    )
    write_json(root / "validation.json", [qa(21, "Q?", "A")])
    return root


def expected(root: Path) -> list[dict[str, Any]]:
    """The fixture's English test questions as canonical records, worked out by hand from DATASETS.md."""
    image = str(root / "imgs" / "xmlab1" / "source.jpg")
    meta = {
        "img_id": 1,
        "location": "Abdomen",
        "modality": "MRI",
        "base_type": "vqa",
        "content_type": "Modality",
        "triple": ["vhead", "_", "_"],
    }
    return [
        {
            "id": "11",
            "image": [image],
            "question": "What modality is used to take this image?",
            "answer": "MRI",
            "objects": [],
            "labels": [],
            "answer_type": "open",
            "language": "en",
            "width": None,
            "height": None,
            "depth": None,
            "options": [],
            "meta": meta,
        },
        {
            "id": "13",
            "image": [image],
            "question": "How many kidneys are there?",
            "answer": "2",
            "objects": [],
            "labels": [],
            "answer_type": "closed",
            "language": "en",
            "width": None,
            "height": None,
            "depth": None,
            "options": [],
            "meta": meta,
        },
    ]


def expected_warnings(root: Path) -> list[str]:
    path = root / "test.json"
    return [
        f"{path}: record 4: skipped: image not found: {root / 'imgs'}/xmlab9/source.jpg",
        f"{path}: record 5: skipped: answer_type 'MAYBE' is neither open nor closed",
        f"{path}: record 6: skipped: empty question",
        f"{path}: record 7: skipped: repeated id '11' (first at record 1)",
        f"{path}: record 8: skipped: expected a JSON object, got str",
        f"{path}: record 9: skipped: no qid",
        f"{path}: record 10: skipped: empty answer",
    ]


def test_reads_english_records_and_skips_malformed_ones(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(Slake(), "Slake1.0", "test", base=tmp_path)
    assert [dump(s) for s in samples] == expected(root)
    assert warnings(stderr) == expected_warnings(root)
    assert skips.count == 7


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: slake, root: {root}, split: test}}")
    assert written == canonical_lines(expected(root))
    assert warnings(stderr) == expected_warnings(root)
    assert stderr.splitlines()[-1] == "skipped 7 records"


def test_language_option_and_validation_alias(root: Path, tmp_path: Path) -> None:
    zh, _, _ = load(Slake(), root, "test", {"language": "zh"}, base=tmp_path)
    assert [(s.id, s.question, s.answer, s.language) for s in zh] == [
        ("12", "这张图片是用什么方式拍摄的?", "核磁共振", "zh")
    ]
    every, skips, _ = load(Slake(), root, "test", {"language": "all"}, base=tmp_path)
    assert [s.id for s in every] == ["11", "12", "13"] and skips.count == 7
    validate, _, _ = load(Slake(), root, "validation", base=tmp_path)
    assert [s.id for s in validate] == ["21"]


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    reader = Slake()
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory"):
        load(reader, tmp_path / "nowhere", "test", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: 'dev' is not a split of slake; valid: train, validate, test"
    ):
        load(reader, root, "dev", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*train\.json"):
        load(reader, root, "train", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.language: "):
        load(reader, root, "test", {"language": "fr"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.lang: unknown option of slake; valid: ids, language"):
        load(reader, root, "test", {"lang": "en"}, base=tmp_path)
    write_json(root / "train.json", [qa(1, "q", "a", img_name="missing.png")])
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*1 records skipped"):
        load(reader, root, "train", base=tmp_path)
    write(root / "train.json", "{broken")
    with pytest.raises(ReaderError, match=r"^dataset\.root: .*train\.json: not valid JSON"):
        load(reader, root, "train", base=tmp_path)
