"""ms_cxr: MS-CXR's local-alignment CSV (one row per box) into one sample per (image, phrase)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.ms_cxr import MsCxr
from tests.test_readers_common import canonical_lines, csv_text, dump, export, load, png, warnings, write

HEADER = ["dicom_id", "category_name", "label_text", "path", "x", "y", "w", "h", "image_width", "image_height", "split"]


def image_path(dicom: str) -> str:
    return f"files/p10/p10000032/s50414267/{dicom}.jpg"


def row(dicom: str, category: str, phrase: str, x: str, y: str, w: str, h: str, split: str = "test") -> list[str]:
    return [dicom, category, phrase, image_path(dicom), x, y, w, h, "100", "80", split]


ROWS = [
    row("d1", "Pneumonia", "Patchy opacity in the right lower lobe", "10", "20", "30", "40"),
    row("d2", "Pneumothorax", "Small left apical pneumothorax", "1", "1", "2", "2", split="train"),
    row("d1", "Cardiomegaly", "Enlarged heart", "0", "0", "100", "80"),
    row("d1", "Pneumonia", "Patchy opacity in the right lower lobe", "50.5", "10", "20", "10"),
    row("d2", "Edema", "Mild edema", "5", "6", "7", "8"),
    row("d3", "Edema", "Edema", "5", "6", "7", "8"),  # its image is missing
    row("d4", "Pneumonia", "Opacity", "1", "2", "3", "4"),
    row("d4", "Pneumonia", "Opacity", "30", "2", "-5", "4"),
    row("d5", "Atelectasis", "Bibasilar atelectasis", "abc", "2", "3", "4"),
    row("d6", "Consolidation", "Consolidation", "90", "2", "20", "4"),
    row("d6", "Lung Opacity", "", "9", "2", "2", "4"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ms-cxr"
    for dicom in ("d1", "d2", "d4", "d5", "d6"):
        png(root / image_path(dicom))
    write(root / "MS_CXR_Local_Alignment_v1.1.0.csv", csv_text(HEADER, ROWS))
    return root


def test_groups_rows_into_phrases_with_stable_ids(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(MsCxr(), root, "test", base=tmp_path)
    common = {"answer_type": None, "language": "en", "width": 100, "height": 80, "depth": None, "options": []}
    phrase = "Patchy opacity in the right lower lobe"
    assert [dump(s) for s in samples] == [
        {
            "id": "d1-0",
            "image": [str(root / image_path("d1"))],
            "question": phrase,
            "answer": phrase,
            "objects": [
                {
                    "name": "Pneumonia",
                    "boxes": [[10 / 100, 20 / 80, 40 / 100, 60 / 80], [50.5 / 100, 10 / 80, 70.5 / 100, 20 / 80]],
                    "phrase": phrase,
                }
            ],
            "labels": ["Pneumonia"],
            "meta": {"dicom_id": "d1"},
            **common,
        },
        {
            "id": "d1-1",
            "image": [str(root / image_path("d1"))],
            "question": "Enlarged heart",
            "answer": "Enlarged heart",
            "objects": [{"name": "Cardiomegaly", "boxes": [[0.0, 0.0, 1.0, 1.0]], "phrase": "Enlarged heart"}],
            "labels": ["Cardiomegaly"],
            "meta": {"dicom_id": "d1"},
            **common,
        },
        {
            # k = 1: the train-split phrase of d2 (row 2) is counted although it is not read.
            "id": "d2-1",
            "image": [str(root / image_path("d2"))],
            "question": "Mild edema",
            "answer": "Mild edema",
            "objects": [{"name": "Edema", "boxes": [[5 / 100, 6 / 80, 12 / 100, 14 / 80]], "phrase": "Mild edema"}],
            "labels": ["Edema"],
            "meta": {"dicom_id": "d2"},
            **common,
        },
    ]
    path = root / "MS_CXR_Local_Alignment_v1.1.0.csv"
    assert warnings(stderr) == [
        f"{path}: row 6: skipped: image not found: {root}/{image_path('d3')}",
        f"{path}: row 7: skipped: sample 'd4-0' dropped: row 8 is malformed",
        f"{path}: row 8: skipped: box [30, 2, 25, 6] has x1 > x2",
        f"{path}: row 9: skipped: x: 'abc' is not a number",
        f"{path}: row 10: skipped: box [90, 2, 110, 6] is outside the 100×80 image",
        f"{path}: row 11: skipped: empty label_text",
    ]
    assert skips.count == 6


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: ms_cxr, root: {root}, split: test}}")

    def phrase(sample_id: str, dicom: str, text: str, category: str, boxes: list[list[float]]) -> dict[str, Any]:
        return {
            "id": sample_id, "image": [str(root / image_path(dicom))], "question": text, "answer": text,
            "objects": [{"name": category, "boxes": boxes, "phrase": text}], "labels": [category],
            "answer_type": None, "language": "en", "width": 100, "height": 80, "depth": None, "options": [],
            "meta": {"dicom_id": dicom},
        }  # fmt: skip

    # x, y, w, h in pixels of the 100×80 image -> [x/W, y/H, (x+w)/W, (y+h)/H]
    assert written == canonical_lines(
        [
            phrase("d1-0", "d1", "Patchy opacity in the right lower lobe", "Pneumonia",
                   [[0.1, 0.25, 0.4, 0.75], [0.505, 0.125, 0.705, 0.25]]),
            phrase("d1-1", "d1", "Enlarged heart", "Cardiomegaly", [[0.0, 0.0, 1.0, 1.0]]),
            phrase("d2-1", "d2", "Mild edema", "Edema", [[0.05, 0.075, 0.12, 0.175]]),
        ]
    )  # fmt: skip
    assert '"boxes": [[0.1, 0.25, 0.4, 0.75], [0.505, 0.125, 0.705, 0.25]]' in written
    path = root / "MS_CXR_Local_Alignment_v1.1.0.csv"
    assert warnings(stderr) == [
        f"{path}: row 6: skipped: image not found: {root}/{image_path('d3')}",
        f"{path}: row 7: skipped: sample 'd4-0' dropped: row 8 is malformed",
        f"{path}: row 8: skipped: box [30, 2, 25, 6] has x1 > x2",
        f"{path}: row 9: skipped: x: 'abc' is not a number",
        f"{path}: row 10: skipped: box [90, 2, 110, 6] is outside the 100×80 image",
        f"{path}: row 11: skipped: empty label_text",
    ]
    assert stderr.splitlines()[-1] == "skipped 6 records"


def test_all_split_ids_filter_and_image_root(tmp_path: Path) -> None:
    root = tmp_path / "ms-cxr"
    png(tmp_path / "mimic-cxr-jpg" / image_path("d1"))
    png(tmp_path / "mimic-cxr-jpg" / image_path("d2"))
    # v1.0.0 has no split column: only `all`.
    header = HEADER[:-1]
    write(root / "MS_CXR_Local_Alignment_v1.0.0.csv", csv_text(header, [r[:-1] for r in ROWS[:5]]))
    write(tmp_path / "ids.txt", "d2-0\nd1-1\n")
    options = {"image_root": "../mimic-cxr-jpg", "ids": "ids.txt"}
    samples, skips, _ = load(MsCxr(), root, "all", options, base=tmp_path)
    assert [s.id for s in samples] == ["d2-0", "d1-1"] and skips.count == 0
    assert samples[0].image == [str(tmp_path / "mimic-cxr-jpg" / image_path("d2"))]
    with pytest.raises(ReaderError, match=r"^dataset\.split: .*v1\.0\.0\.csv has no split column: only split 'all'"):
        load(MsCxr(), root, "test", base=tmp_path)


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'validate' is not a split of ms_cxr; valid: train, val"):
        load(MsCxr(), root, "validate", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.root: required file not found: .*v1\.1\.0\.csv or .*v1\.0\.0\.csv"
    ):
        load(MsCxr(), tmp_path, "test", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.options\.image_dir: unknown option of ms_cxr; valid: ids, image_root"
    ):
        load(MsCxr(), root, "test", {"image_dir": "x"}, base=tmp_path)
    write(root / "MS_CXR_Local_Alignment_v1.1.0.csv", "dicom_id,label_text\nd1,x\n")
    with pytest.raises(ReaderError, match=r"^dataset\.root: .*: no column 'category_name', 'path'"):
        load(MsCxr(), root, "test", base=tmp_path)
    write(root / "MS_CXR_Local_Alignment_v1.1.0.csv", csv_text(HEADER, ROWS[5:6]))
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*1 records skipped"):
        load(MsCxr(), root, "test", base=tmp_path)
