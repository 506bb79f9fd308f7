"""VinDr-CXR 1.0.0 (PhysioNet): lesion boxes and image labels of chest X-rays, read by several radiologists.

``annotations/annotations_<split>.csv`` has a row per box (``image_id, rad_id, class_name, x_min,
y_min, x_max, y_max``, pixel corners; ``No finding`` rows have no coordinates) and
``annotations/image_labels_<split>.csv`` the image-level labels (train: a row per radiologist; test:
one consensus row). The release ships DICOM, which regbench does not decode: convert the images to
PNG at their original pixel size first (``<image_dir>/<image_id>.<image_ext>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderOptions,
    as_float,
    option_path,
    read_csv,
    reason,
    require_file,
    scaled_box,
    skip_sample,
)
from regbench.types import Sample

NO_FINDING = "No finding"
FUSE = "fuse"
FUSE_IOU = 0.5
_RENAMED = {"Other disease": "Other diseases"}  # the test labels file's spelling -> train's
_BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


@dataclass
class _Image:
    """The kept annotation rows of one image."""

    image_id: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@dataclass
class _Labels:
    """The image-labels file: label names in column order and each image's rows."""

    path: Path
    names: list[str]
    columns: list[str]
    rows: dict[str, list[tuple[int, dict[str, str]]]]


class VindrCxr(Reader):
    """Reads VinDr-CXR's annotation and label CSVs with PNG copies of the images; splits train, test."""

    name: ClassVar[str] = "vindr_cxr"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    requires: ClassVar[dict[str, str]] = {"PIL": "Pillow"}  # image sizes from the PNG headers

    class Options(ReaderOptions):
        image_dir: str | None = Field(None, min_length=1)
        """The PNG images' directory, relative to the root (default: the split's name)."""
        image_ext: str = Field("png", min_length=1)
        """The images' extension, without the dot."""
        readers: str | None = Field(None, min_length=1)
        """Unset: every radiologist's boxes; a ``rad_id`` (``R8``): that radiologist's rows only;
        ``fuse``: per class, boxes of different radiologists with IoU >= 0.5 merged into their mean."""

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        from PIL import Image as PILImage

        path = require_file(root / "annotations" / f"annotations_{split}.csv")
        _, rows = read_csv(path, ("image_id", "rad_id", "class_name", *_BOX_COLUMNS))
        one_reader = options.readers if options.readers not in (None, FUSE) else None
        images = _images(rows, one_reader, ctx)
        labels = _labels(root / "annotations" / f"image_labels_{split}.csv", one_reader)
        image_dir = str(option_path(root, options.image_dir or split))
        files = Files()
        for image in images:
            numbers = [n for n, _ in image.rows]
            try:
                found = files.find(image_dir, f"{image.image_id}.{options.image_ext}")
                if found is None:
                    raise Malformed(f"image not found: {image_dir}/{image.image_id}.{options.image_ext}")
                try:
                    with PILImage.open(found) as opened:
                        width, height = opened.size
                except OSError as exc:
                    raise Malformed(f"image unreadable: {found} ({exc})") from None
                boxes, bad = _boxes(image, width, height)
                if bad:  # a row's own problem: that row says it, its siblings name it
                    skip_sample(ctx.skips, path, numbers, bad, image.image_id, "row")
                    continue
                sample = _sample(image, found, width, height, boxes, labels, options.readers == FUSE)
            except (Malformed, ValidationError) as exc:
                # An image-level problem (image, labels): every annotation row of the image goes.
                skip_sample(ctx.skips, path, numbers, dict.fromkeys(numbers, reason(exc)), image.image_id, "row")
                continue
            if ctx.claim(image.image_id, path, numbers[0], "row"):
                yield sample


def _images(rows: Iterator[tuple[int, dict[str, str]]], one_reader: str | None, ctx: Context) -> list[_Image]:
    """The images in annotation-file order with their kept rows (one radiologist's, when asked)."""
    images: dict[str, _Image] = {}
    for number, row in rows:
        if one_reader is not None and row["rad_id"].strip() != one_reader:
            continue
        image_id = row["image_id"].strip()
        image = images.get(image_id)
        if image is None:
            if not ctx.wanted(image_id):
                continue
            image = images[image_id] = _Image(image_id)
        image.rows.append((number, row))
    return list(images.values())


def _labels(path: Path, one_reader: str | None) -> _Labels:
    header, rows = read_csv(require_file(path), ("image_id",))
    columns = [c for c in header if c not in ("image_id", "rad_id")]
    by_image: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in rows:
        if one_reader is not None and "rad_id" in header and row["rad_id"].strip() != one_reader:
            continue
        by_image.setdefault(row["image_id"].strip(), []).append((number, row))
    return _Labels(path, [_RENAMED.get(c, c) for c in columns], columns, by_image)


def _boxes(image: _Image, width: int, height: int) -> tuple[dict[str, list[tuple[str, list[float]]]], dict[int, str]]:
    """Each class's (rad_id, pixel box) pairs in row order, and each malformed row's reason."""
    boxes: dict[str, list[tuple[str, list[float]]]] = {}
    bad: dict[int, str] = {}
    for number, row in image.rows:
        name = row["class_name"].strip()
        try:
            if not name:
                raise Malformed("empty class_name")
            if name == NO_FINDING:  # a radiologist who found nothing: no box
                continue
            if not any(row[c].strip() for c in _BOX_COLUMNS):
                raise Malformed(f"no box coordinates for class {name!r}")
            box = [as_float(row[c], c) for c in _BOX_COLUMNS]
            scaled_box(box, (width, height), f"the {width}×{height} image")  # raises if outside or swapped
        except Malformed as exc:
            bad[number] = str(exc)
            continue
        boxes.setdefault(name, []).append((row["rad_id"].strip(), box))
    return boxes, bad


def _sample(
    image: _Image,
    path: str,
    width: int,
    height: int,
    boxes: dict[str, list[tuple[str, list[float]]]],
    labels: _Labels,
    fuse: bool,
) -> Sample:
    regions = []
    for name, pairs in boxes.items():
        pixel_boxes = _fused(pairs) if fuse else [box for _, box in pairs]
        regions.append({"name": name, "boxes": [scaled_box(b, (width, height), "the image") for b in pixel_boxes]})
    found = _image_labels(image.image_id, labels)
    rad_ids = dict.fromkeys(row["rad_id"].strip() for _, row in image.rows)  # distinct, in order
    return Sample(
        id=image.image_id,
        image=[path],
        answer=", ".join(found),
        objects=regions,
        labels=found,
        language="en",
        width=width,
        height=height,
        options=labels.names,
        meta={"rad_ids": list(rad_ids)},
    )


def _image_labels(image_id: str, labels: _Labels) -> list[str]:
    """The label names equal to 1 in any of the image's label rows, in column order."""
    rows = labels.rows.get(image_id)
    if not rows:
        raise Malformed(f"no labels row for image {image_id!r} in {labels.path}")
    positive = set()
    for number, row in rows:
        for column, name in zip(labels.columns, labels.names, strict=True):
            value = row[column].strip()
            if value not in ("0", "1", "0.0", "1.0"):
                raise Malformed(f"label {column!r} = {row[column]!r} is not 0 or 1 ({labels.path} row {number})")
            if value in ("1", "1.0"):
                positive.add(name)
    return [name for name in labels.names if name in positive]


def _fused(boxes: list[tuple[str, list[float]]]) -> list[list[float]]:
    """One class's boxes merged across radiologists: in row order, a box joins the first cluster whose
    first box overlaps it with IoU >= 0.5 and holds no box of its radiologist, else starts a cluster;
    each cluster becomes the mean of its boxes."""
    clusters: list[tuple[set[str], list[list[float]]]] = []
    for rad_id, box in boxes:
        for rads, members in clusters:
            if rad_id not in rads and _iou(members[0], box) >= FUSE_IOU:
                rads.add(rad_id)
                members.append(box)
                break
        else:
            clusters.append(({rad_id}, [box]))
    return [[sum(b[i] for b in members) / len(members) for i in range(4)] for _, members in clusters]


def _iou(a: list[float], b: list[float]) -> float:
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(inter_w, 0.0) * max(inter_h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if union <= 0:  # two degenerate boxes: the same point or line, or apart
        return 1.0 if a == b else 0.0
    return inter / union
