"""MedMNIST v2 / MedMNIST+ ``.npz`` files: small 2D and 3D classification images with integer labels.

``<root>/<flag>.npz`` (28 px) or ``<flag>_<size>.npz`` holds ``<split>_images`` and
``<split>_labels`` for train, val and test. Images are written once to the image cache (2D as PNG,
3D as ``.npy``); labels become names from MedMNIST's own label table (built in below).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from regbench.data.readers.common import (
    Context,
    ImageCache,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    first_file,
    reason,
)
from regbench.types import Sample

_ORGANS = (
    "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left",
    "lung-right", "pancreas", "spleen",
)  # fmt: skip

LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "pathmnist": (
        "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
        "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
    ),
    "chestmnist": (
        "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia", "pneumothorax",
        "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
    ),
    "dermamnist": (
        "actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma", "benign keratosis-like lesions",
        "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions",
    ),
    "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
    "pneumoniamnist": ("normal", "pneumonia"),
    "retinamnist": ("0", "1", "2", "3", "4"),
    "breastmnist": ("malignant", "normal, benign"),
    "bloodmnist": (
        "basophil", "eosinophil", "erythroblast",
        "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)", "lymphocyte", "monocyte",
        "neutrophil", "platelet",
    ),
    "tissuemnist": (
        "Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule", "Glomerular endothelial cells",
        "Interstitial endothelial cells", "Leukocytes", "Podocytes", "Proximal Tubule Segments",
        "Thick Ascending Limb",
    ),
    "organamnist": _ORGANS,
    "organcmnist": _ORGANS,
    "organsmnist": _ORGANS,
    # The 3D organ set numbers the same organs in another order.
    "organmnist3d": (
        "liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder", "heart", "lung-right",
        "lung-left", "spleen", "pancreas",
    ),
    "nodulemnist3d": ("benign", "malignant"),
    "adrenalmnist3d": ("normal", "hyperplasia"),
    "fracturemnist3d": ("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"),
    "vesselmnist3d": ("vessel", "aneurysm"),
    "synapsemnist3d": ("inhibitory synapse", "excitatory synapse"),
}  # fmt: skip
"""MedMNIST's ``INFO[flag]["label"]`` names, in index order."""


class MedMnist(Reader):
    """Reads one MedMNIST flag's ``.npz``; splits train, val (alias validation), test."""

    name: ClassVar[str] = "medmnist"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    aliases: ClassVar[dict[str, str]] = {"validation": "val", "validate": "val"}
    requires: ClassVar[dict[str, str]] = {"PIL": "Pillow"}  # 2D images are cached as PNG

    class Options(ReaderOptions):
        flag: str = Field(min_length=1)
        """The dataset, as MedMNIST names it: ``pathmnist``, ``chestmnist``, ``organmnist3d``, ..."""
        size: Literal[28, 64, 128, 224] = 28
        """Image side in pixels (3D flags: 28 or 64)."""
        label_names: list[str] | None = Field(None, min_length=1)
        """Names for the label indices; required for a flag regbench does not know."""

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        import numpy as np

        names = _names(options)
        flag = options.flag.lower()
        stems = [flag, f"{flag}_28"] if options.size == 28 else [f"{flag}_{options.size}"]
        path = first_file([root / f"{stem}.npz" for stem in stems])
        try:
            with np.load(path, allow_pickle=False) as npz:
                for key in (f"{split}_images", f"{split}_labels"):
                    if key not in npz.files:
                        raise ReaderError("dataset.split", f"{path} has no {key} (it has {', '.join(npz.files)})")
                images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # not an .npz archive of arrays
            raise ReaderError("dataset.root", f"{path} is not a MedMNIST .npz file ({exc})") from None
        if labels.ndim == 1:
            labels = labels[:, None]
        multi = labels.shape[1] > 1  # chestmnist: a 0/1 column per name; the others: one index
        if multi and labels.shape[1] != len(names):
            raise ReaderError(
                "dataset.options.label_names",
                f"{path} has {labels.shape[1]} label columns but {len(names)} label names are given",
            )
        volume = flag.endswith("3d")
        cache = ImageCache(reader=self.name)
        for i in range(len(images)):
            sample_id = f"{split}-{i}"
            if not ctx.wanted(sample_id):
                continue
            try:
                sample = _sample(sample_id, images[i], labels[i].tolist(), names, multi, volume, cache)
            except (Malformed, ValidationError) as exc:
                ctx.skips.add(path, i + 1, reason(exc), unit="row")
                continue
            if ctx.claim(sample_id, path, i + 1, "row"):
                yield sample


def _names(options: Any) -> list[str]:
    if options.label_names is not None:
        return list(options.label_names)
    known = LABEL_NAMES.get(options.flag.lower())
    if known is None:
        raise ReaderError(
            "dataset.options.flag",
            f"{options.flag!r} is not a MedMNIST flag regbench knows ({', '.join(LABEL_NAMES)}); "
            "give its names as options.label_names",
        )
    return list(known)


def _sample(
    sample_id: str, image: Any, row: list[Any], names: list[str], multi: bool, volume: bool, cache: ImageCache
) -> Sample:
    if multi:
        if any(v not in (0, 1) for v in row):
            raise Malformed(f"label {row} has a value other than 0 and 1")
        found = [name for name, v in zip(names, row, strict=True) if v == 1]
    else:
        (index,) = row
        if index != int(index) or not 0 <= index < len(names):
            raise Malformed(f"label {index} is outside 0–{len(names) - 1}")
        found = [names[int(index)]]
    if volume:
        depth, height, width = image.shape[:3]
    else:
        depth, (height, width) = None, image.shape[:2]
    return Sample(
        id=sample_id,
        image=[cache.put_array(image, volume=volume)],
        answer=", ".join(found),
        labels=found,
        language="en",
        width=width,
        height=height,
        depth=depth,
        options=names,
        meta={"label": [int(v) for v in row]},
    )
