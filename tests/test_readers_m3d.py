"""m3d: M3D-RefSeg (boxes from label masks, canonical x, y, z order) and M3D-Cap into canonical samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.m3d import M3d, mask2box
from tests.test_readers_common import canonical_lines, csv_text, dump, export, load, warnings, write, write_json

HEADER = ["Image", "Mask", "Mask_ID", "Question_Type", "Question", "Answer"]


def npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def test_mask2box_uses_min_and_max_index_in_canonical_order() -> None:
    mask = np.zeros((4, 5, 6), dtype=bool)  # D, H, W
    mask[1, 1:4, 2:5] = True
    mask[2, 2, 3] = True
    # w 2..4 of 6, h 1..3 of 5, d 1..2 of 4, each rounded to 3 decimals
    assert mask2box(mask) == [0.333, 0.2, 0.25, 0.667, 0.6, 0.5]
    assert mask2box(np.zeros((2, 2, 2), dtype=bool)) is None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "M3D" / "data"
    npy(root / "M3D_RefSeg_npy" / "s0000" / "ct.npy", np.zeros((1, 4, 5, 6), dtype=np.float32))
    labels = np.zeros((1, 4, 5, 6), dtype=np.uint8)
    labels[0, 1, 1:4, 2:5] = 1
    labels[0, 2, 2, 3] = 1
    labels[0, 3, 4, 5] = 2
    npy(root / "M3D_RefSeg_npy" / "s0000" / "mask.npy", labels)
    npy(root / "M3D_RefSeg_npy" / "s0000" / "small_mask.npy", np.ones((1, 4, 5, 5), dtype=np.uint8))
    ct, mask = "M3D_RefSeg_npy/s0000/ct.npy", "M3D_RefSeg_npy/s0000/mask.npy"
    rows = [
        [ct, mask, "1", "0", "Where is the liver in this image?", "It is at [SEG]."],
        [ct, mask, "2", "1", " Can you segment the lesion? ", "Sure, [SEG]."],
        [ct, mask, "x", "0", "q", "a"],
        [ct, mask, "7", "0", "q", "a"],
        [ct, "M3D_RefSeg_npy/s0000/small_mask.npy", "1", "0", "q", "a"],
        ["M3D_RefSeg_npy/s0001/ct.npy", mask, "1", "0", "q", "a"],
        [ct, mask, "1", "0", "", "a"],
    ]
    write(root / "M3D_RefSeg_npy" / "M3D_RefSeg_test.csv", csv_text(HEADER, rows))
    return root


def test_refseg_boxes_from_masks_and_malformed_rows(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(M3d(), root, "test", base=tmp_path)
    common = {"labels": [], "answer_type": None, "language": "en", "options": []}
    common |= {"width": 6, "height": 5, "depth": 4, "image": [str(root / "M3D_RefSeg_npy" / "s0000" / "ct.npy")]}
    mask = "M3D_RefSeg_npy/s0000/mask.npy"
    assert [dump(s) for s in samples] == [
        {
            "id": "M3D_RefSeg_test-0",
            "question": "Where is the liver in this image?",
            "answer": "It is at [SEG].",
            "objects": [{"name": "", "boxes": [[0.333, 0.2, 0.25, 0.667, 0.6, 0.5]], "phrase": None}],
            "meta": {"Mask": mask, "Mask_ID": "1", "Question_Type": "0"},
            **common,
        },
        {
            "id": "M3D_RefSeg_test-1",
            "question": "Can you segment the lesion?",
            "answer": "Sure, [SEG].",
            # one voxel at w 5, h 4, d 3: min = max
            "objects": [{"name": "", "boxes": [[0.833, 0.8, 0.75, 0.833, 0.8, 0.75]], "phrase": None}],
            "meta": {"Mask": mask, "Mask_ID": "2", "Question_Type": "1"},
            **common,
        },
    ]
    path = root / "M3D_RefSeg_npy" / "M3D_RefSeg_test.csv"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: Mask_ID 'x' is not an integer",
        f"{path}: row 4: skipped: Mask_ID 7 is absent from the mask {root}/{mask}",
        f"{path}: row 5: skipped: mask shape (1, 4, 5, 5) is not the volume's (1, 4, 5, 6)",
        f"{path}: row 6: skipped: Image not found: {root}/M3D_RefSeg_npy/s0001/ct.npy",
        f"{path}: row 7: skipped: empty Question",
    ]
    assert skips.count == 5


VOLUME = "M3D_Cap_npy/ct_case/000006/Axial_C__portal_venous_phase.npy"


def cap_root(tmp_path: Path) -> Path:
    """An M3D-Cap layout: the split JSON, a (1, D=3, H=4, W=2) volume, its text file, two bad records."""
    root = tmp_path / "data"
    volume = VOLUME
    npy(root / volume, np.zeros((1, 3, 4, 2), dtype=np.float32))
    write(root / "M3D_Cap_npy" / "ct_case" / "000006" / "text.txt", "Findings: The liver is normal.\n")
    records = [
        {"image": volume, "text": "M3D_Cap_npy/ct_case/000006/text.txt", "source": "radiopaedia"},
        {"image": "M3D_Cap_npy/ct_case/000007/Axial.npy", "text": "M3D_Cap_npy/ct_case/000007/text.txt"},
        {"image": volume, "text": "M3D_Cap_npy/ct_case/000006/missing.txt"},
    ]
    write_json(root / "M3D_Cap_npy" / "M3D_Cap.json", {"train": [], "test1k": records})
    return root


def test_cap_reads_the_text_files(tmp_path: Path) -> None:
    root, volume = cap_root(tmp_path), VOLUME
    samples, skips, stderr = load(M3d(), root, "test1k", base=tmp_path)
    assert [dump(s) for s in samples] == [
        {
            "id": "M3D_Cap_npy/ct_case/000006/Axial_C__portal_venous_phase",
            "image": [str(root / volume)],
            "question": "",
            "answer": "Findings: The liver is normal.",
            "objects": [],
            "labels": [],
            "answer_type": None,
            "language": "en",
            "width": 2,
            "height": 4,
            "depth": 3,
            "options": [],
            "meta": {"source": "radiopaedia"},
        }
    ]
    path = root / "M3D_Cap_npy" / "M3D_Cap.json"
    assert warnings(stderr) == [
        f"{path}: test1k record 2: skipped: image not found: {root}/M3D_Cap_npy/ct_case/000007/Axial.npy",
        f"{path}: test1k record 3: skipped: text file not found: {root}/M3D_Cap_npy/ct_case/000006/missing.txt",
    ]
    assert skips.count == 2
    with pytest.raises(
        ReaderError, match=r"^dataset\.split: 'val' is not a split of .*M3D_Cap\.json; valid: train, test1k"
    ):
        load(M3d(), root, "val", base=tmp_path)


def test_data_export_writes_the_canonical_lines_of_refseg(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: m3d, root: {root}, split: test}}")
    image, mask = str(root / "M3D_RefSeg_npy" / "s0000" / "ct.npy"), "M3D_RefSeg_npy/s0000/mask.npy"
    # label 1: w 2..4 of W 6, h 1..3 of H 5, d 1..2 of D 4 -> [2/6, 1/5, 1/4, 4/6, 3/5, 2/4], 3 decimals;
    # label 2: the one voxel (d 3, h 4, w 5)
    assert written == canonical_lines(
        [
            {
                "id": "M3D_RefSeg_test-0", "image": [image], "question": "Where is the liver in this image?",
                "answer": "It is at [SEG].",
                "objects": [{"name": "", "boxes": [[0.333, 0.2, 0.25, 0.667, 0.6, 0.5]], "phrase": None}],
                "labels": [], "answer_type": None, "language": "en", "width": 6, "height": 5, "depth": 4,
                "options": [], "meta": {"Mask": mask, "Mask_ID": "1", "Question_Type": "0"},
            },
            {
                "id": "M3D_RefSeg_test-1", "image": [image], "question": "Can you segment the lesion?",
                "answer": "Sure, [SEG].",
                "objects": [{"name": "", "boxes": [[0.833, 0.8, 0.75, 0.833, 0.8, 0.75]], "phrase": None}],
                "labels": [], "answer_type": None, "language": "en", "width": 6, "height": 5, "depth": 4,
                "options": [], "meta": {"Mask": mask, "Mask_ID": "2", "Question_Type": "1"},
            },
        ]
    )  # fmt: skip
    path = root / "M3D_RefSeg_npy" / "M3D_RefSeg_test.csv"
    assert warnings(stderr) == [
        f"{path}: row 3: skipped: Mask_ID 'x' is not an integer",
        f"{path}: row 4: skipped: Mask_ID 7 is absent from the mask {root}/{mask}",
        f"{path}: row 5: skipped: mask shape (1, 4, 5, 5) is not the volume's (1, 4, 5, 6)",
        f"{path}: row 6: skipped: Image not found: {root}/M3D_RefSeg_npy/s0001/ct.npy",
        f"{path}: row 7: skipped: empty Question",
    ]
    assert stderr.splitlines()[-1] == "skipped 5 records"


def test_data_export_writes_the_canonical_lines_of_cap(spec_root: Path, tmp_path: Path) -> None:
    root = cap_root(tmp_path)
    written, stderr = export(spec_root, tmp_path, f"{{loader: m3d, root: {root}, split: test1k}}")
    assert written == canonical_lines(
        [
            {
                "id": "M3D_Cap_npy/ct_case/000006/Axial_C__portal_venous_phase", "image": [str(root / VOLUME)],
                "question": "", "answer": "Findings: The liver is normal.", "objects": [], "labels": [],
                "answer_type": None, "language": "en", "width": 2, "height": 4, "depth": 3, "options": [],
                "meta": {"source": "radiopaedia"},
            }
        ]
    )  # fmt: skip
    path = root / "M3D_Cap_npy" / "M3D_Cap.json"
    assert warnings(stderr) == [
        f"{path}: test1k record 2: skipped: image not found: {root}/M3D_Cap_npy/ct_case/000007/Axial.npy",
        f"{path}: test1k record 3: skipped: text file not found: {root}/M3D_Cap_npy/ct_case/000006/missing.txt",
    ]
    assert stderr.splitlines()[-1] == "skipped 2 records"


def test_subset_annotation_and_errors(root: Path, tmp_path: Path) -> None:
    write(
        root / "mine.csv",
        csv_text(HEADER, [["M3D_RefSeg_npy/s0000/ct.npy", "M3D_RefSeg_npy/s0000/mask.npy", "2", "0", "q", "a"]]),
    )
    samples, _, _ = load(M3d(), root, None, {"annotation": "mine.csv"}, base=tmp_path)
    assert [s.id for s in samples] == ["mine-0"]
    write(
        root / "bad.csv",
        csv_text(HEADER, [["M3D_RefSeg_npy/s0000/ct.npy", "M3D_RefSeg_npy/s0000/mask.npy", "9", "0", "q", "a"]]),
    )
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'bad'; 1 records skipped"):
        load(M3d(), root, None, {"annotation": "bad.csv"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'train' is not a split of m3d; valid: test$"):
        load(M3d(), root, "train", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.subset: "):
        load(M3d(), root, "test", {"subset": "vqa"}, base=tmp_path)
    (root / "M3D_Cap_npy").mkdir()
    with pytest.raises(ReaderError, match=r"^dataset\.options\.subset: .*holds both M3D_RefSeg_npy/ and M3D_Cap_npy/"):
        load(M3d(), root, "test", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*M3D_Cap\.json"):
        load(M3d(), root, "test", {"subset": "cap"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.annotation: annotation file not found: .*nope\.csv"):
        load(M3d(), root, "test", {"annotation": "nope.csv"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: neither M3D_RefSeg_npy/ nor M3D_Cap_npy/"):
        load(M3d(), tmp_path, "test", base=tmp_path)
