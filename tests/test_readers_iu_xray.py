"""iu_xray: R2Gen's annotation.json (IU X-Ray, and R2Gen's MIMIC-CXR copy) into canonical samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.iu_xray import IuXray
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings, write_json

REPORT = "The heart size and pulmonary vascularity appear within normal limits. No pneumothorax."


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "iu_xray"
    for name in ("CXR2384_IM-0942/0.png", "CXR2384_IM-0942/1.png", "CXR1/0.png"):
        png(root / "images" / name)
    write_json(
        root / "annotation.json",
        {
            "train": [
                {"id": "CXR1", "report": "Normal.", "image_path": ["CXR1/0.png"], "split": "train"},
            ],
            "val": [],
            "test": [
                {
                    "id": "CXR2384_IM-0942",
                    "report": f" {REPORT}\n",
                    "image_path": ["CXR2384_IM-0942/0.png", "CXR2384_IM-0942/1.png"],
                    "split": "test",
                },
                {"id": "CXR2", "report": "x", "image_path": [], "split": "test"},
                {"id": "CXR3", "report": "x", "image_path": ["CXR3/0.png", "CXR3/1.png"], "split": "test"},
                {"id": "CXR4", "report": "", "image_path": ["CXR1/0.png"], "split": "test"},
                {"id": "CXR2384_IM-0942", "report": "x", "image_path": ["CXR1/0.png"], "split": "test"},
                {"report": "x", "image_path": ["CXR1/0.png"], "split": "test"},
                # R2Gen's MIMIC-CXR annotation carries study and subject ids: they go to meta.
                {
                    "id": "d0b71acc",
                    "study_id": 50414267,
                    "subject_id": 10000032,
                    "report": "No acute process.",
                    "image_path": ["CXR1/0.png"],
                    "split": "test",
                },
            ],
        },
    )
    return root


def test_reads_reports_with_both_images(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(IuXray(), root, "test", base=tmp_path)
    common = {
        "question": "",
        "objects": [],
        "labels": [],
        "answer_type": None,
        "language": "en",
        "width": None,
        "height": None,
        "depth": None,
        "options": [],
    }
    assert [dump(s) for s in samples] == [
        {
            "id": "CXR2384_IM-0942",
            "image": [
                str(root / "images" / "CXR2384_IM-0942" / "0.png"),
                str(root / "images" / "CXR2384_IM-0942" / "1.png"),
            ],
            "answer": REPORT,
            "meta": {},
            **common,
        },
        {
            "id": "d0b71acc",
            "image": [str(root / "images" / "CXR1" / "0.png")],
            "answer": "No acute process.",
            "meta": {"study_id": 50414267, "subject_id": 10000032},
            **common,
        },
    ]
    path = root / "annotation.json"
    assert warnings(stderr) == [
        f"{path}: test record 2: skipped: empty image_path",
        f"{path}: test record 3: skipped: image not found: {root / 'images'}/CXR3/0.png",
        f"{path}: test record 4: skipped: empty report",
        f"{path}: test record 5: skipped: repeated id 'CXR2384_IM-0942' (first at test record 1)",
        f"{path}: test record 6: skipped: no id",
    ]
    assert skips.count == 5


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: iu_xray, root: {root}, split: test}}")
    images = root / "images"
    assert written == canonical_lines(
        [
            {
                "id": "CXR2384_IM-0942",
                "image": [str(images / "CXR2384_IM-0942" / "0.png"), str(images / "CXR2384_IM-0942" / "1.png")],
                "question": "", "answer": REPORT, "objects": [], "labels": [], "answer_type": None,
                "language": "en", "width": None, "height": None, "depth": None, "options": [], "meta": {},
            },
            {
                "id": "d0b71acc", "image": [str(images / "CXR1" / "0.png")], "question": "",
                "answer": "No acute process.", "objects": [], "labels": [], "answer_type": None, "language": "en",
                "width": None, "height": None, "depth": None, "options": [],
                "meta": {"study_id": 50414267, "subject_id": 10000032},  # JSON numbers stay numbers
            },
        ]
    )  # fmt: skip
    path = root / "annotation.json"
    assert warnings(stderr) == [
        f"{path}: test record 2: skipped: empty image_path",
        f"{path}: test record 3: skipped: image not found: {images}/CXR3/0.png",
        f"{path}: test record 4: skipped: empty report",
        f"{path}: test record 5: skipped: repeated id 'CXR2384_IM-0942' (first at test record 1)",
        f"{path}: test record 6: skipped: no id",
    ]
    assert stderr.splitlines()[-1] == "skipped 5 records"


def test_split_aliases_and_errors(root: Path, tmp_path: Path) -> None:
    train, _, _ = load(IuXray(), root, "train", base=tmp_path)
    assert [s.id for s in train] == ["CXR1"]
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'val'; 0 records skipped"):
        load(IuXray(), root, "validation", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: 'dev' is not a split of iu_xray; valid: train, val, test "
    ):
        load(IuXray(), root, "dev", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.root: unknown option"):
        load(IuXray(), root, "test", {"root": "x"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory"):
        load(IuXray(), root / "absent", "test", base=tmp_path)
    write_json(root / "annotation.json", {"train": [], "test": []})
    with pytest.raises(ReaderError, match=r"^dataset\.split: .*has no 'val' split; it has train, test"):
        load(IuXray(), root, "val", base=tmp_path)
