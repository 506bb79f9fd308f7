"""vindr_cxr: VinDr-CXR's box and label CSVs (several radiologists per image) into canonical samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.vindr_cxr import VindrCxr
from tests.test_readers_common import canonical_lines, csv_text, dump, export, load, png, warnings, write

BOX_HEADER = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
LABELS = ["Aortic enlargement", "Cardiomegaly", "Nodule/Mass", "Pleural effusion", "Other diseases", "No finding"]

ANNOTATIONS = [
    ["img1", "R8", "Aortic enlargement", "100", "20", "150", "60"],
    ["img1", "R9", "Aortic enlargement", "102.0", "22.0", "152.0", "62.0"],
    ["img1", "R10", "Aortic enlargement", "10", "10", "20", "20"],
    ["img1", "R8", "Cardiomegaly", "50", "50", "150", "90"],
    ["img1", "R8", "Aortic enlargement", "101", "21", "151", "61"],  # R8 again: never fused with R8's own box
    ["img2", "R8", "No finding", "", "", "", ""],
    ["img2", "R9", "No finding", "", "", "", ""],
    ["img3", "R8", "Nodule/Mass", "10", "10", "5", "20"],
    ["img3", "R9", "Nodule/Mass", "10", "10", "20", "20"],
    ["img4", "R8", "Pleural effusion", "", "", "", ""],
    ["img5", "R8", "Nodule/Mass", "1", "1", "2", "2"],
    ["img6", "R8", "Nodule/Mass", "1", "1", "2", "2"],
    ["img7", "R8", "Nodule/Mass", "1", "1", "2", "2"],
    ["img8", "R8", "Nodule/Mass", "150", "10", "250", "20"],
    ["img9", "R8", "Nodule/Mass", "abc", "10", "20", "20"],
]

LABEL_ROWS = [
    ["img1", "R8", "1", "1", "0", "0", "0", "0"],
    ["img1", "R9", "1", "0", "0", "0", "0", "0"],
    ["img1", "R10", "1", "0", "0", "0", "0", "0"],
    ["img2", "R8", "0", "0", "0", "0", "0", "1"],
    ["img2", "R9", "0", "0", "0", "0", "0", "1"],
    ["img3", "R9", "0", "0", "1", "0", "0", "0"],
    ["img4", "R8", "0", "0", "0", "1", "0", "0"],
    ["img5", "R8", "0", "0", "1", "0", "0", "0"],
    ["img7", "R8", "0", "2", "1", "0", "0", "0"],
    ["img8", "R8", "0", "0", "1", "0", "0", "0"],
    ["img9", "R8", "0", "0", "1", "0", "0", "0"],
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "vindr-cxr" / "1.0.0"
    for image in ("img1", "img2", "img3", "img4", "img6", "img7", "img8", "img9"):
        png(root / "train" / f"{image}.png", 200, 100)
    write(root / "annotations" / "annotations_train.csv", csv_text(BOX_HEADER, ANNOTATIONS))
    write(root / "annotations" / "image_labels_train.csv", csv_text(["image_id", "rad_id", *LABELS], LABEL_ROWS))
    return root


def box(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    return [x1 / 200, y1 / 100, x2 / 200, y2 / 100]


def test_keeps_every_radiologists_boxes_and_labels_from_any_row(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(VindrCxr(), root, "train", base=tmp_path)
    common = {"question": "", "answer_type": None, "language": "en", "width": 200, "height": 100, "depth": None}
    assert [dump(s) for s in samples] == [
        {
            "id": "img1",
            "image": [str(root / "train" / "img1.png")],
            "answer": "Aortic enlargement, Cardiomegaly",
            "objects": [
                {
                    "name": "Aortic enlargement",
                    "boxes": [box(100, 20, 150, 60), box(102, 22, 152, 62), box(10, 10, 20, 20), box(101, 21, 151, 61)],
                    "phrase": None,
                },
                {"name": "Cardiomegaly", "boxes": [box(50, 50, 150, 90)], "phrase": None},
            ],
            "labels": ["Aortic enlargement", "Cardiomegaly"],
            "options": LABELS,
            "meta": {"rad_ids": ["R8", "R9", "R10"]},
            **common,
        },
        {
            "id": "img2",
            "image": [str(root / "train" / "img2.png")],
            "answer": "No finding",
            "objects": [],
            "labels": ["No finding"],
            "options": LABELS,
            "meta": {"rad_ids": ["R8", "R9"]},
            **common,
        },
    ]
    path = root / "annotations" / "annotations_train.csv"
    labels = root / "annotations" / "image_labels_train.csv"
    assert warnings(stderr) == [
        f"{path}: row 8: skipped: box [10, 10, 5, 20] has x1 > x2",
        f"{path}: row 9: skipped: sample 'img3' dropped: row 8 is malformed",
        f"{path}: row 10: skipped: no box coordinates for class 'Pleural effusion'",
        f"{path}: row 11: skipped: image not found: {root / 'train'}/img5.png",
        f"{path}: row 12: skipped: no labels row for image 'img6' in {labels}",
        f"{path}: row 13: skipped: label 'Cardiomegaly' = '2' is not 0 or 1 ({labels} row 9)",
        f"{path}: row 14: skipped: box [150, 10, 250, 20] is outside the 200×100 image",
        f"{path}: row 15: skipped: x_min: 'abc' is not a number",
    ]
    assert skips.count == 8


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: vindr_cxr, root: {root}, split: train}}")
    # pixel corners over the 200×100 PNG's size; every radiologist's box kept, in row order
    assert written == canonical_lines(
        [
            {
                "id": "img1", "image": [str(root / "train" / "img1.png")], "question": "",
                "answer": "Aortic enlargement, Cardiomegaly",
                "objects": [
                    {"name": "Aortic enlargement",
                     "boxes": [[0.5, 0.2, 0.75, 0.6], [0.51, 0.22, 0.76, 0.62], [0.05, 0.1, 0.1, 0.2],
                               [0.505, 0.21, 0.755, 0.61]],
                     "phrase": None},
                    {"name": "Cardiomegaly", "boxes": [[0.25, 0.5, 0.75, 0.9]], "phrase": None},
                ],
                "labels": ["Aortic enlargement", "Cardiomegaly"], "answer_type": None, "language": "en",
                "width": 200, "height": 100, "depth": None, "options": LABELS, "meta": {"rad_ids": ["R8", "R9", "R10"]},
            },
            {
                "id": "img2", "image": [str(root / "train" / "img2.png")], "question": "", "answer": "No finding",
                "objects": [], "labels": ["No finding"], "answer_type": None, "language": "en", "width": 200,
                "height": 100, "depth": None, "options": LABELS, "meta": {"rad_ids": ["R8", "R9"]},
            },
        ]
    )  # fmt: skip
    path = root / "annotations" / "annotations_train.csv"
    labels = root / "annotations" / "image_labels_train.csv"
    assert warnings(stderr) == [
        f"{path}: row 8: skipped: box [10, 10, 5, 20] has x1 > x2",
        f"{path}: row 9: skipped: sample 'img3' dropped: row 8 is malformed",
        f"{path}: row 10: skipped: no box coordinates for class 'Pleural effusion'",
        f"{path}: row 11: skipped: image not found: {root / 'train'}/img5.png",
        f"{path}: row 12: skipped: no labels row for image 'img6' in {labels}",
        f"{path}: row 13: skipped: label 'Cardiomegaly' = '2' is not 0 or 1 ({labels} row 9)",
        f"{path}: row 14: skipped: box [150, 10, 250, 20] is outside the 200×100 image",
        f"{path}: row 15: skipped: x_min: 'abc' is not a number",
    ]
    assert stderr.splitlines()[-1] == "skipped 8 records"


def test_one_radiologist(root: Path, tmp_path: Path) -> None:
    samples, skips, _ = load(VindrCxr(), root, "train", {"readers": "R9"}, base=tmp_path)
    assert [(s.id, s.labels, [(o.name, o.boxes) for o in s.objects], s.meta) for s in samples] == [
        ("img1", ["Aortic enlargement"], [("Aortic enlargement", [box(102, 22, 152, 62)])], {"rad_ids": ["R9"]}),
        ("img2", ["No finding"], [], {"rad_ids": ["R9"]}),
        ("img3", ["Nodule/Mass"], [("Nodule/Mass", [box(10, 10, 20, 20)])], {"rad_ids": ["R9"]}),
    ]
    assert skips.count == 0  # the malformed rows are R8's: filtered, not skipped


def test_fuse_merges_overlapping_boxes_of_different_radiologists(root: Path, tmp_path: Path) -> None:
    samples, _, _ = load(VindrCxr(), root, "train", {"readers": "fuse", "ids": "ids.txt"}, base=_ids(tmp_path, "img1"))
    (img1,) = samples
    assert [(o.name, o.boxes) for o in img1.objects] == [
        # R8 and R9 overlap (IoU 0.84): their mean; R10 elsewhere; R8's second box cannot join R8's cluster.
        ("Aortic enlargement", [box(101, 21, 151, 61), box(10, 10, 20, 20), box(101, 21, 151, 61)]),
        ("Cardiomegaly", [box(50, 50, 150, 90)]),
    ]
    assert img1.meta == {"rad_ids": ["R8", "R9", "R10"]}


def test_test_split_consensus_labels_and_image_options(tmp_path: Path) -> None:
    root = tmp_path / "vindr"
    png(root / "pngs" / "t1.jpg", 40, 50)
    write(
        root / "annotations" / "annotations_test.csv",
        csv_text(BOX_HEADER, [["t1", "R11", "Nodule/Mass", "0", "0", "4", "5"]]),
    )
    header = ["image_id", "Nodule/Mass", "Other disease", "No finding"]
    write(root / "annotations" / "image_labels_test.csv", csv_text(header, [["t1", "1", "1.0", "0"]]))
    samples, _, _ = load(VindrCxr(), root, "test", {"image_dir": "pngs", "image_ext": "jpg"}, base=tmp_path)
    assert [(s.id, s.labels, s.options, s.answer, s.width, s.height) for s in samples] == [
        ("t1", ["Nodule/Mass", "Other diseases"], ["Nodule/Mass", "Other diseases", "No finding"],
         "Nodule/Mass, Other diseases", 40, 50),
    ]  # fmt: skip
    assert samples[0].objects[0].boxes == [[0.0, 0.0, 0.1, 0.1]]


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'val' is not a split of vindr_cxr; valid: train, test$"):
        load(VindrCxr(), root, "val", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*annotations_test\.csv"):
        load(VindrCxr(), root, "test", base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.options\.reader: unknown option of vindr_cxr; valid: ids, image_dir"
    ):
        load(VindrCxr(), root, "train", {"reader": "R8"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'train'; 0 records skipped"):
        load(VindrCxr(), root, "train", {"readers": "R99"}, base=tmp_path)
    (root / "annotations" / "image_labels_train.csv").unlink()
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*image_labels_train\.csv"):
        load(VindrCxr(), root, "train", base=tmp_path)


def _ids(base: Path, *ids: str) -> Path:
    write(base / "ids.txt", "".join(f"{i}\n" for i in ids))
    return base
