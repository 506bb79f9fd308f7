"""pmc_vqa: PMC-VQA's split CSVs (multiple choice) into canonical samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.pmc_vqa import PmcVqa
from tests.test_readers_common import canonical_lines, csv_text, dump, export, load, png, warnings, write

HEADER = [
    "",
    "Figure_path",
    "Question",
    "Answer",
    "Choice A",
    "Choice B",
    "Choice C",
    "Choice D",
    "Answer_label",
    "Caption",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "PMC-VQA"
    png(root / "images" / "PMC1_fig1.jpg")
    png(root / "images" / "PMC2_fig3.jpg")
    fig = "PMC1_fig1.jpg"
    rows = [
        ["0", fig, "What imaging technique was used? ", "Computed tomography", "A:MRI", " B: Computed tomography ",
         "C:X-ray", "D:Ultrasound", "B", " CT of the chest. "],
        ["1", "PMC2_fig3.jpg", "Which side is affected?", "Left", "A:Left", "B:Right", "C:Both", "D:Neither", "A", ""],
        ["2", fig, "Where?", "Here", "A:1", "B:2", "C:3", "D:4", "E", ""],
        ["3", "PMC9_fig1.jpg", "Where?", "Here", "A:1", "B:2", "C:3", "D:4", "C", ""],
        ["4", fig, "", "Here", "A:1", "B:2", "C:3", "D:4", "C", ""],
        ["5", fig, "Where?", "Here", "A:1", "B:2", "C:", "D:4", "D", ""],
        ["6", fig, "Where?", "Here", "A:1", "B:2", "C:3", "D:4", " ", ""],
    ]  # fmt: skip
    write(root / "test_clean.csv", csv_text(HEADER, rows))
    return root


def test_reads_choices_without_their_letters_and_keeps_the_other_columns(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(PmcVqa(), root, "test_clean", base=tmp_path)
    common = {"objects": [], "labels": [], "answer_type": "closed", "language": "en"}
    common |= {"width": None, "height": None, "depth": None}
    assert [dump(s) for s in samples] == [
        {
            "id": "test_clean-0",
            "image": [str(root / "images" / "PMC1_fig1.jpg")],
            "question": "What imaging technique was used?",
            "answer": "Computed tomography",
            "options": ["MRI", "Computed tomography", "X-ray", "Ultrasound"],
            "meta": {"Answer_label": "B", "Caption": " CT of the chest. "},
            **common,
        },
        {
            "id": "test_clean-1",
            "image": [str(root / "images" / "PMC2_fig3.jpg")],
            "question": "Which side is affected?",
            "answer": "Left",
            "options": ["Left", "Right", "Both", "Neither"],
            "meta": {"Answer_label": "A", "Caption": ""},
            **common,
        },
    ]
    path = root / "test_clean.csv"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: Answer_label 'E' is not one of A, B, C, D",
        f"{path}: row 4: skipped: image not found: {root / 'images'}/PMC9_fig1.jpg",
        f"{path}: row 5: skipped: empty Question",
        f"{path}: row 6: skipped: empty Choice C",
        f"{path}: row 7: skipped: Answer_label ' ' is not one of A, B, C, D",
    ]
    assert skips.count == 5


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: pmc_vqa, root: {root}, split: test_clean}}")
    # choices lose their "A:" prefix and padding; meta cells stay as written (the caption's spaces too)
    assert written == canonical_lines(
        [
            {
                "id": "test_clean-0", "image": [str(root / "images" / "PMC1_fig1.jpg")],
                "question": "What imaging technique was used?", "answer": "Computed tomography", "objects": [],
                "labels": [], "answer_type": "closed", "language": "en", "width": None, "height": None,
                "depth": None, "options": ["MRI", "Computed tomography", "X-ray", "Ultrasound"],
                "meta": {"Answer_label": "B", "Caption": " CT of the chest. "},
            },
            {
                "id": "test_clean-1", "image": [str(root / "images" / "PMC2_fig3.jpg")],
                "question": "Which side is affected?", "answer": "Left", "objects": [], "labels": [],
                "answer_type": "closed", "language": "en", "width": None, "height": None, "depth": None,
                "options": ["Left", "Right", "Both", "Neither"], "meta": {"Answer_label": "A", "Caption": ""},
            },
        ]
    )  # fmt: skip
    path = root / "test_clean.csv"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: Answer_label 'E' is not one of A, B, C, D",
        f"{path}: row 4: skipped: image not found: {root / 'images'}/PMC9_fig1.jpg",
        f"{path}: row 5: skipped: empty Question",
        f"{path}: row 6: skipped: empty Choice C",
        f"{path}: row 7: skipped: Answer_label ' ' is not one of A, B, C, D",
    ]
    assert stderr.splitlines()[-1] == "skipped 5 records"


def test_older_anwser_column_image_dir_and_ids(tmp_path: Path) -> None:
    root = tmp_path / "PMC-VQA"
    png(root / "images_2" / "f.jpg")
    header = ["Figure_path", "Question", "Anwser", "Choice A", "Choice B", "Choice C", "Choice D", "Answer_label"]
    rows = [["f.jpg", f"Q{i}?", f"a{i}", "A:a", "B:b", "C:c", "D:d", "A"] for i in range(3)]
    write(root / "train_2.csv", csv_text(header, rows))
    write(tmp_path / "ids.txt", "train_2-2\ntrain_2-0\n")
    samples, _, _ = load(PmcVqa(), root, "train_2", {"image_dir": "images_2", "ids": "ids.txt"}, base=tmp_path)
    assert [(s.id, s.answer, s.meta) for s in samples] == [
        ("train_2-0", "a0", {"Answer_label": "A"}),
        ("train_2-2", "a2", {"Answer_label": "A"}),
    ]


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'test' is not a split of pmc_vqa; valid: test_clean$"):
        load(PmcVqa(), root, "test", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.image_dir: "):
        load(PmcVqa(), root, "test_clean", {"image_dir": ""}, base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.options\.images: unknown option of pmc_vqa; valid: ids, image_dir"
    ):
        load(PmcVqa(), root, "test_clean", {"images": "x"}, base=tmp_path)
    write(root / "test.csv", csv_text([*HEADER[:4], "Choice A", "Choice B", "Choice C", "Choice D"], []))
    with pytest.raises(ReaderError, match=r"^dataset\.root: .*test\.csv: no column 'Answer_label'"):
        load(PmcVqa(), root, "test", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory"):
        load(PmcVqa(), root / "x", "test", base=tmp_path)
    write(root / "empty.csv", csv_text(HEADER, []))
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'empty'; 0 records skipped"):
        load(PmcVqa(), root, "empty", base=tmp_path)
