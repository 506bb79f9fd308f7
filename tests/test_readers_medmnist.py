"""medmnist: MedMNIST ``.npz`` arrays into cached images and named labels."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.medmnist import MedMnist
from tests.test_readers_common import canonical_lines, dump, export, load, warnings, write

PATH_NAMES = [
    "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
    "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
]  # fmt: skip
CHEST_NAMES = [
    "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia", "pneumothorax",
    "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
]  # fmt: skip


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def npz(path: Path, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


RGB = np.arange(3 * 4 * 5 * 3, dtype=np.uint8).reshape(3, 4, 5, 3)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "medmnist"
    empty = np.zeros((0, 4, 5, 3), dtype=np.uint8)
    labels = np.array([[0], [8], [9]], dtype=np.uint8)
    npz(root / "pathmnist.npz", train_images=empty, train_labels=np.zeros((0, 1)), test_images=RGB, test_labels=labels)
    return root


def test_multiclass_rgb_images_are_cached_as_png(root: Path, tmp_path: Path, cache: Path) -> None:
    from PIL import Image

    samples, skips, stderr = load(MedMnist(), root, "test", {"flag": "pathmnist"}, base=tmp_path)
    common = {"question": "", "objects": [], "answer_type": None, "language": "en", "width": 5, "height": 4}
    common |= {"depth": None, "options": PATH_NAMES}
    got = [dump(s) for s in samples]
    images = [d.pop("image") for d in got]
    assert got == [
        {"id": "test-0", "answer": "adipose", "labels": ["adipose"], "meta": {"label": [0]}, **common},
        {
            "id": "test-1",
            "answer": "colorectal adenocarcinoma epithelium",
            "labels": ["colorectal adenocarcinoma epithelium"],
            "meta": {"label": [8]},
            **common,
        },
    ]
    for i, (image,) in enumerate(images):
        assert Path(image).parent == cache and image.endswith(".png")
        np.testing.assert_array_equal(np.asarray(Image.open(image)), RGB[i])
    assert warnings(stderr) == [f"{root / 'pathmnist.npz'}: row 3: skipped: label 9 is outside 0–8"]
    assert skips.count == 1


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path, cache: Path) -> None:
    from PIL import Image

    written, stderr = export(
        spec_root, tmp_path, f"{{loader: medmnist, root: {root}, split: test, options: {{flag: pathmnist}}}}"
    )

    def cached(i: int) -> str:  # a lossless PNG named by the hash of dtype, shape and pixels
        digest = hashlib.sha256(b"|u1(4, 5, 3)" + RGB[i].tobytes()).hexdigest()[:32]
        return str(cache / f"{digest}.png")

    def record(i: int, label: int) -> dict[str, Any]:
        name = PATH_NAMES[label]
        return {
            "id": f"test-{i}", "image": [cached(i)], "question": "", "answer": name, "objects": [],
            "labels": [name], "answer_type": None, "language": "en", "width": 5, "height": 4, "depth": None,
            "options": PATH_NAMES, "meta": {"label": [label]},
        }  # fmt: skip

    assert written == canonical_lines([record(0, 0), record(1, 8)])
    for i in (0, 1):
        np.testing.assert_array_equal(np.asarray(Image.open(cached(i))), RGB[i])
    assert warnings(stderr) == [f"{root / 'pathmnist.npz'}: row 3: skipped: label 9 is outside 0–8"]
    assert stderr.splitlines()[-1] == "skipped 1 records"


def test_multilabel_chest_and_3d_volumes(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "medmnist"
    chest = np.zeros((3, 14), dtype=np.uint8)
    chest[0, [1, 13]] = 1
    chest[2, 4] = 2
    grey = np.arange(3 * 6 * 6, dtype=np.uint8).reshape(3, 6, 6)
    npz(root / "chestmnist_64.npz", val_images=grey, val_labels=chest)
    samples, skips, stderr = load(MedMnist(), root, "validation", {"flag": "chestmnist", "size": 64}, base=tmp_path)
    assert [(s.id, s.labels, s.answer, s.meta, s.width, s.height) for s in samples] == [
        ("val-0", ["cardiomegaly", "hernia"], "cardiomegaly, hernia", {"label": chest[0].tolist()}, 6, 6),
        ("val-1", [], "", {"label": [0] * 14}, 6, 6),
    ]
    assert samples[0].options == CHEST_NAMES
    assert warnings(stderr) == [
        f"{root / 'chestmnist_64.npz'}: row 3: skipped: label {chest[2].tolist()} has a value other than 0 and 1"
    ]
    assert skips.count == 1

    volumes = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    npz(root / "organmnist3d.npz", test_images=volumes, test_labels=np.array([[0], [10]]))
    write(tmp_path / "ids.txt", "test-1\n")
    samples, _, _ = load(MedMnist(), root, "test", {"flag": "organmnist3d", "ids": "ids.txt"}, base=tmp_path)
    (sample,) = samples
    assert (sample.id, sample.labels, sample.depth, sample.height, sample.width) == ("test-1", ["pancreas"], 3, 4, 5)
    assert sample.image[0].endswith(".npy")
    np.testing.assert_array_equal(np.load(sample.image[0]), volumes[1])


def test_label_names_option_and_errors(root: Path, tmp_path: Path) -> None:
    npz(root / "mymnist.npz", test_images=RGB[:1], test_labels=np.array([[1]]))
    samples, _, _ = load(MedMnist(), root, "test", {"flag": "mymnist", "label_names": ["no", "yes"]}, base=tmp_path)
    assert [(s.labels, s.options) for s in samples] == [(["yes"], ["no", "yes"])]
    with pytest.raises(ReaderError, match=r"^dataset\.options\.flag: 'mymnist' is not a MedMNIST flag .*label_names"):
        load(MedMnist(), root, "test", {"flag": "mymnist"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.flag: Field required"):
        load(MedMnist(), root, "test", {}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.size: "):
        load(MedMnist(), root, "test", {"flag": "pathmnist", "size": 32}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*pathmnist_128\.npz"):
        load(MedMnist(), root, "test", {"flag": "pathmnist", "size": 128}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.split: .*pathmnist\.npz has no val_images"):
        load(MedMnist(), root, "val", {"flag": "pathmnist"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'dev' is not a split of medmnist"):
        load(MedMnist(), root, "dev", {"flag": "pathmnist"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'train'; 0 records skipped"):
        load(MedMnist(), root, "train", {"flag": "pathmnist"}, base=tmp_path)
