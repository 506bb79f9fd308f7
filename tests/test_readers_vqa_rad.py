"""vqa_rad: VQA-RAD's public JSON into canonical samples, split by ``phrase_type``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.vqa_rad import VqaRad
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings, write_json


def qa(qid: Any, phrase_type: str, question: str, answer: Any, answer_type: str = "CLOSED", **extra: Any) -> dict:
    """A record with VQA-RAD's keys, in its order."""
    record = {
        "qid": qid,
        "phrase_type": phrase_type,
        "qid_linked_id": f"linked-{qid}",
        "image_case_url": "https://medpix.nlm.nih.gov/case?id=x",
        "image_name": "synpic54610.jpg",
        "image_organ": "HEAD",
        "evaluation": "not evaluated",
        "question": question,
        "question_rephrase": "NULL",
        "question_relation": "NULL",
        "question_frame": "NULL",
        "question_type": "PRES",
        "answer": answer,
        "answer_type": answer_type,
    }
    record.update(extra)
    return record


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "osfstorage"
    png(root / "VQA_RAD Image Folder" / "synpic54610.jpg")
    write_json(
        root / "VQA_RAD Dataset Public.json",
        [
            qa(1, "freeform", "Are regions of the brain infarcted?", "Yes"),
            qa(2, "test_freeform", "Are regions of the brain infarcted?", "Yes"),
            qa(3, "test_para", "How many lesions are there?", 2, "OPEN "),
            qa(4, "para", "Is there a mass?", "No"),
            qa(5, "test_freeform", "Where?", "Left", image_name="synpic00000.jpg"),
            qa(6, "test_freeform", "Is it big?", None),
            qa(3, "test_para", "Again?", "No"),
            qa(7, "test_para", "Which lobe?", "Frontal", "OPN"),
        ],
    )
    return root


def expected(root: Path) -> list[dict[str, Any]]:
    """The fixture's test split (phrase_type test_*) as canonical records, worked out by hand from DATASETS.md."""
    image = str(root / "VQA_RAD Image Folder" / "synpic54610.jpg")

    def meta(qid: int, phrase_type: str) -> dict[str, Any]:
        return {
            "phrase_type": phrase_type,
            "qid_linked_id": f"linked-{qid}",
            "image_case_url": "https://medpix.nlm.nih.gov/case?id=x",
            "image_organ": "HEAD",
            "evaluation": "not evaluated",
            "question_rephrase": "NULL",
            "question_relation": "NULL",
            "question_frame": "NULL",
            "question_type": "PRES",
        }

    return [
        {
            "id": "2", "image": [image], "question": "Are regions of the brain infarcted?", "answer": "Yes",
            "objects": [], "labels": [], "answer_type": "closed", "language": "en", "width": None,
            "height": None, "depth": None, "options": [], "meta": meta(2, "test_freeform"),
        },
        {
            "id": "3", "image": [image], "question": "How many lesions are there?", "answer": "2",
            "objects": [], "labels": [], "answer_type": "open", "language": "en", "width": None,
            "height": None, "depth": None, "options": [], "meta": meta(3, "test_para"),
        },
    ]  # fmt: skip


def expected_warnings(root: Path) -> list[str]:
    path = root / "VQA_RAD Dataset Public.json"
    return [
        f"{path}: record 5: skipped: image not found: {root / 'VQA_RAD Image Folder'}/synpic00000.jpg",
        f"{path}: record 6: skipped: no answer",
        f"{path}: record 7: skipped: repeated id '3' (first at record 3)",
        f"{path}: record 8: skipped: answer_type 'OPN' is neither open nor closed",
    ]


def test_test_split_is_phrase_type_test_and_numbers_become_strings(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(VqaRad(), root, "test", base=tmp_path)
    assert [dump(s) for s in samples] == expected(root)
    assert warnings(stderr) == expected_warnings(root)
    assert skips.count == 4


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: vqa_rad, root: {root}, split: test}}")
    assert written == canonical_lines(expected(root))
    assert warnings(stderr) == expected_warnings(root)
    assert stderr.splitlines()[-1] == "skipped 4 records"


def test_train_and_all_splits(root: Path, tmp_path: Path) -> None:
    train, skips, _ = load(VqaRad(), root, "train", base=tmp_path)
    assert [s.id for s in train] == ["1", "4"] and skips.count == 0  # the malformed ones are test records
    every, skips, _ = load(VqaRad(), root, "all", base=tmp_path)
    assert [s.id for s in every] == ["1", "2", "3", "4"] and skips.count == 4


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: 'validation' is not a split of vqa_rad; valid: train, test, all"
    ):
        load(VqaRad(), root, "validation", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: the vqa_rad reader needs a split: one of train, test, all"
    ):
        load(VqaRad(), root, None, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.language: unknown option of vqa_rad; valid: ids$"):
        load(VqaRad(), root, "test", {"language": "en"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*VQA_RAD Dataset Public\.json"):
        load(VqaRad(), tmp_path, "test", base=tmp_path)
    write_json(root / "VQA_RAD Dataset Public.json", [qa(1, "test_para", "q", "a", image_name="gone.jpg")])
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'test'; 1 records skipped"):
        load(VqaRad(), root, "test", base=tmp_path)
    write_json(root / "VQA_RAD Dataset Public.json", {"not": "an array"})
    with pytest.raises(ReaderError, match=r"^dataset\.root: .*expected the file to be a JSON array, got dict"):
        load(VqaRad(), root, "test", base=tmp_path)
