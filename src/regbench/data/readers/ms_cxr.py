"""MS-CXR (PhysioNet): phrase grounding on MIMIC-CXR images, one CSV row per box.

``MS_CXR_Local_Alignment_v1.1.0.csv`` (else v1.0.0, which has no ``split`` column) has
``dicom_id, category_name, label_text, path, x, y, w, h, image_width, image_height, split``; a box is
the top-left corner, width and height in original-image pixels. One sample per (image, phrase).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    as_float,
    as_size,
    first_file,
    option_path,
    read_csv,
    reason,
    scaled_box,
    skip_sample,
    text,
)
from regbench.types import Sample

FILES = ("MS_CXR_Local_Alignment_v1.1.0.csv", "MS_CXR_Local_Alignment_v1.0.0.csv")
COLUMNS = ("dicom_id", "category_name", "label_text", "path", "x", "y", "w", "h", "image_width", "image_height")


@dataclass
class _Phrase:
    """The rows of one (dicom_id, label_text) pair: one sample."""

    sample_id: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


class MsCxr(Reader):
    """Reads MS-CXR's local-alignment CSV; split from its ``split`` column (v1.0.0: ``all`` only)."""

    name: ClassVar[str] = "ms_cxr"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "all")

    class Options(ReaderOptions):
        image_root: str | None = None
        """The MIMIC-CXR-JPG directory the CSV's ``files/...`` paths are relative to (default: the root)."""

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        path = first_file([root / name for name in FILES])
        header, rows = read_csv(path, COLUMNS)
        if split != "all" and "split" not in header:
            raise ReaderError("dataset.split", f"{path} has no split column: only split 'all' can be read")
        image_dir = str(option_path(root, options.image_root)) if options.image_root else str(root)
        files = Files()
        for phrase in _phrases(rows, split, ctx):
            try:
                sample, bad = _sample(phrase, image_dir, files)
            except (Malformed, ValidationError) as exc:
                # A sample is only whole with all its boxes: every row of the phrase is dropped.
                number, _ = phrase.rows[0]
                sample, bad = None, {number: reason(exc)}
            if bad:
                skip_sample(ctx.skips, path, (n for n, _ in phrase.rows), bad, phrase.sample_id, "row")
            elif sample is not None and ctx.claim(sample.id, path, phrase.rows[0][0], "row"):
                yield sample


def _phrases(rows: Iterator[tuple[int, dict[str, str]]], split: str, ctx: Context) -> list[_Phrase]:
    """The split's phrases in order of first appearance, each id numbered among its image's phrases
    over the whole file (so an id does not depend on the split or on skipped rows)."""
    phrase_index: dict[tuple[str, str], int] = {}
    per_image: dict[str, int] = {}
    phrases: dict[tuple[str, str], _Phrase] = {}
    for number, row in rows:
        key = (row["dicom_id"].strip(), row["label_text"].strip())
        if key not in phrase_index:
            phrase_index[key] = per_image.get(key[0], 0)
            per_image[key[0]] = phrase_index[key] + 1
        if split != "all" and row.get("split", "").strip() != split:
            continue
        phrase = phrases.get(key)
        if phrase is None:
            sample_id = f"{key[0]}-{phrase_index[key]}"
            if not ctx.wanted(sample_id):
                continue
            phrase = phrases[key] = _Phrase(sample_id)
        phrase.rows.append((number, row))
    return list(phrases.values())


def _sample(phrase: _Phrase, image_dir: str, files: Files) -> tuple[Sample | None, dict[int, str]]:
    """The phrase's sample, or the reason each malformed row has."""
    bad: dict[int, str] = {}
    boxes = []
    for number, row in phrase.rows:
        try:
            for column in ("dicom_id", "category_name", "label_text"):
                text(row[column], column)
            name = text(row["path"], "path")
            boxes.append(_box(row))
            if files.find(image_dir, name) is None:
                raise Malformed(f"image not found: {image_dir}/{name}")
        except Malformed as exc:
            bad[number] = str(exc)
    if bad:
        return None, bad
    _, first = phrase.rows[0]
    label_text = first["label_text"].strip()
    category = first["category_name"].strip()
    return (
        Sample(
            id=phrase.sample_id,
            image=[files.find(image_dir, first["path"].strip())],
            question=label_text,
            answer=label_text,
            objects=[{"name": category, "boxes": boxes, "phrase": label_text}],
            labels=[category],
            language="en",
            width=as_size(first["image_width"], "image_width"),
            height=as_size(first["image_height"], "image_height"),
            meta={"dicom_id": first["dicom_id"].strip()},
        ),
        {},
    )


def _box(row: dict[str, str]) -> list[float]:
    """``[x/W, y/H, (x+w)/W, (y+h)/H]`` from the row's top-left box and its image size."""
    x, y, w, h = (as_float(row[k], k) for k in ("x", "y", "w", "h"))
    width, height = as_size(row["image_width"], "image_width"), as_size(row["image_height"], "image_height")
    return scaled_box([x, y, x + w, y + h], (width, height), f"the {width}×{height} image")
