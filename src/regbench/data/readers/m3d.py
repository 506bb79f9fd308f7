"""M3D's processed data (M3D-Data): 3D referring segmentation (M3D-RefSeg) and captions (M3D-Cap) on
``.npy`` volumes shaped ``(1, D, H, W)``. Root is M3D's ``data_root``: every path in the annotation
files is relative to it.

Boxes come from the segmentation mask as M3D's ``mask2box`` makes them (minimum and maximum voxel
index per axis, divided by the axis size, rounded to 3 decimals) and are written in regbench's
canonical ``[x1, y1, z1, x2, y2, z2]`` order: x along the width, y the height, z the slices. M3D's
own models write (depth, height, width) order; the ``m3d`` box format converts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    json_array,
    option_path,
    read_csv,
    read_json,
    reason,
    require_file,
    text,
)
from regbench.types import Sample

REFSEG_DIR = "M3D_RefSeg_npy"
CAP_DIR = "M3D_Cap_npy"
CAP_FILE = f"{CAP_DIR}/M3D_Cap.json"
REFSEG_COLUMNS = ("Image", "Mask", "Mask_ID", "Question_Type", "Question", "Answer")


class M3d(Reader):
    """Reads M3D-RefSeg's split CSVs or M3D-Cap's JSON (``options.subset``; default: the one present)."""

    name: ClassVar[str] = "m3d"
    splits: ClassVar[tuple[str, ...]] = ()

    class Options(ReaderOptions):
        subset: Literal["refseg", "cap"] | None = None
        """``refseg`` or ``cap``; by default the one whose directory the root holds."""
        annotation: str | None = None
        """The RefSeg CSV or Cap JSON, relative to the root (default: the published file)."""

    def resolve_split(self, split: str | None, root: Path, options: Any) -> str:
        subset = _subset(root, options)
        if subset == "cap":  # any key of the JSON; checked when it is read
            if split is None:
                raise ReaderError("dataset.split", "the m3d cap reader needs a split: a key of M3D_Cap.json")
            return split
        if options.annotation is not None:  # the CSV is the data; the split only labels it
            return split if split is not None else Path(options.annotation).stem
        return super().resolve_split(split, root, options)

    def available_splits(self, root: Path, options: Any) -> tuple[str, ...]:
        prefix = "M3D_RefSeg_"
        return tuple(sorted(p.stem[len(prefix) :] for p in (root / REFSEG_DIR).glob(f"{prefix}*.csv")))

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        if _subset(root, options) == "cap":
            return _captions(root, split, options, ctx)
        return _refseg(root, split, options, ctx)


def _subset(root: Path, options: Any) -> str:
    if options.subset is not None:
        return str(options.subset)
    if options.annotation is not None:
        return "cap" if options.annotation.endswith(".json") else "refseg"
    present = [s for s, d in (("refseg", REFSEG_DIR), ("cap", CAP_DIR)) if (root / d).is_dir()]
    if len(present) == 1:
        return present[0]
    if present:
        raise ReaderError(
            "dataset.options.subset", f"{root} holds both {REFSEG_DIR}/ and {CAP_DIR}/: set refseg or cap"
        )
    raise ReaderError("dataset.root", f"neither {REFSEG_DIR}/ nor {CAP_DIR}/ under {root} (M3D's data_root)")


def _annotation(root: Path, options: Any, default: Path) -> Path:
    if options.annotation is None:
        return require_file(default)
    return require_file(option_path(root, options.annotation), "dataset.options.annotation", "annotation file")


# --------------------------------------------------------------------------- RefSeg


def _refseg(root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
    path = _annotation(root, options, root / REFSEG_DIR / f"M3D_RefSeg_{split}.csv")
    _, rows = read_csv(path, REFSEG_COLUMNS)
    files = Files()
    masks = _LastMask()
    for number, row in rows:
        sample_id = f"{path.stem}-{number - 1}"
        if not ctx.wanted(sample_id):
            continue
        try:
            sample = _refseg_sample(sample_id, row, str(root), files, masks)
        except (Malformed, ValidationError) as exc:
            ctx.skips.add(path, number, reason(exc), unit="row")
            continue
        if ctx.claim(sample_id, path, number, "row"):
            yield sample


def _refseg_sample(sample_id: str, row: dict[str, str], root: str, files: Files, masks: _LastMask) -> Sample:
    question = text(row["Question"], "Question")
    answer = text(row["Answer"], "Answer")
    image = _find(files, root, row["Image"], "Image")
    mask_path = _find(files, root, row["Mask"], "Mask")
    mask_id = row["Mask_ID"].strip()
    if not mask_id.lstrip("-").isdigit():
        raise Malformed(f"Mask_ID {row['Mask_ID']!r} is not an integer")
    shape = _volume_shape(image)
    mask = masks.get(mask_path)
    if mask.shape != shape:
        raise Malformed(f"mask shape {mask.shape} is not the volume's {shape}")
    box = mask2box((mask[0] if mask.ndim == 4 else mask) == int(mask_id))
    if box is None:
        raise Malformed(f"Mask_ID {int(mask_id)} is absent from the mask {mask_path}")
    depth, height, width = shape[-3:]
    return Sample(
        id=sample_id,
        image=[image],
        question=question,
        answer=answer,
        objects=[{"name": "", "boxes": [box]}],
        language="en",
        width=width,
        height=height,
        depth=depth,
        meta={"Mask": row["Mask"], "Mask_ID": row["Mask_ID"], "Question_Type": row["Question_Type"]},
    )


def mask2box(selected: Any) -> list[float] | None:
    """The box of a boolean ``(D, H, W)`` mask as M3D's ``mask2box`` computes it, in canonical order.

    Returns ``[min_w/W, min_h/H, min_d/D, max_w/W, max_h/H, max_d/D]`` with the minimum and maximum
    voxel index (not max + 1) of each axis, each ``round(v, 3)``; None for an empty mask.
    """
    import numpy as np

    indices = np.nonzero(selected)
    if indices[0].size == 0:
        return None
    depth, height, width = selected.shape
    low = [int(axis.min()) for axis in indices]  # d, h, w
    high = [int(axis.max()) for axis in indices]
    return [
        round(low[2] / width, 3),
        round(low[1] / height, 3),
        round(low[0] / depth, 3),
        round(high[2] / width, 3),
        round(high[1] / height, 3),
        round(high[0] / depth, 3),
    ]


class _LastMask:
    """The most recently loaded mask: consecutive RefSeg rows ask different ids of the same mask."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.array: Any = None

    def get(self, path: str) -> Any:
        import numpy as np

        if path != self.path:
            try:
                self.array = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise Malformed(f"mask unreadable: {path} ({exc})") from None
            self.path = path
        return self.array


# --------------------------------------------------------------------------- Cap


def _captions(root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
    path = _annotation(root, options, root / CAP_FILE)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ReaderError("dataset.root", f"{path}: expected a JSON object of splits, got {type(data).__name__}")
    if split not in data:
        raise ReaderError("dataset.split", f"{split!r} is not a split of {path}; valid: {', '.join(data)}")
    files = Files()
    unit = f"{split} record"
    for number, record in enumerate(json_array(data[split], path, repr(split)), start=1):
        try:
            if not isinstance(record, dict):
                raise Malformed(f"expected a JSON object, got {type(record).__name__}")
            name = text(record.get("image"), "image")
            sample_id = name.removesuffix(".npy")
            if not ctx.wanted(sample_id):
                continue
            sample = _caption_sample(sample_id, name, record, str(root), files)
        except (Malformed, ValidationError) as exc:
            ctx.skips.add(path, number, reason(exc), unit=unit)
            continue
        if ctx.claim(sample_id, path, number, unit):
            yield sample


def _caption_sample(sample_id: str, name: str, record: dict[str, Any], root: str, files: Files) -> Sample:
    image = _find(files, root, name, "image")
    text_path = _find(files, root, text(record.get("text"), "text"), "text file")
    caption = text(Path(text_path).read_text(encoding="utf-8"), f"text in {text_path}")
    depth, height, width = _volume_shape(image)[-3:]
    return Sample(
        id=sample_id,
        image=[image],
        answer=caption,
        language="en",
        width=width,
        height=height,
        depth=depth,
        meta={k: v for k, v in record.items() if k not in ("image", "text")},
    )


# --------------------------------------------------------------------------- volumes


def _find(files: Files, root: str, relative: str, what: str) -> str:
    name = text(relative, what)
    found = files.find(root, name)
    if found is None:
        raise Malformed(f"{what} not found: {root}/{name}")
    return found


def _volume_shape(path: str) -> tuple[int, ...]:
    """A ``(1, D, H, W)`` or ``(D, H, W)`` volume's shape, without reading its voxels."""
    import numpy as np

    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # maps the file, reads the header
    except (OSError, ValueError) as exc:
        raise Malformed(f"volume unreadable: {path} ({exc})") from None
    if not (len(shape) == 3 or (len(shape) == 4 and shape[0] == 1)) or 0 in shape:
        raise Malformed(f"volume {path} has shape {shape}; expected (1, D, H, W)")
    return tuple(shape)
