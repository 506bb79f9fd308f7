"""IU X-Ray in R2Gen's form: ``annotation.json`` = ``{"train": [...], "val": [...], "test": [...]}`` with
items ``{id, report, image_path: [paths], split}`` and images under ``images/``.

R2Gen's ``mimic_cxr/annotation.json`` has the same shape (plus ``study_id``, ``subject_id``) and reads
the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    json_array,
    read_json,
    reason,
    require_file,
    text,
)
from regbench.types import Sample

_KNOWN = frozenset({"id", "report", "image_path", "split"})


class IuXray(Reader):
    """Reads R2Gen's ``annotation.json``: one split per top-level key."""

    name: ClassVar[str] = "iu_xray"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    aliases: ClassVar[dict[str, str]] = {"validate": "val", "validation": "val"}
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        path = require_file(root / "annotation.json")
        data = read_json(path)
        if not isinstance(data, dict):
            raise ReaderError("dataset.root", f"{path}: expected a JSON object of splits, got {type(data).__name__}")
        if split not in data:
            raise ReaderError("dataset.split", f"{path} has no {split!r} split; it has {', '.join(data)}")
        image_dir = str(root / "images")
        files = Files()
        unit = f"{split} record"
        for number, record in enumerate(json_array(data[split], path, f"{split!r}"), start=1):
            try:
                if not isinstance(record, dict):
                    raise Malformed(f"expected a JSON object, got {type(record).__name__}")
                sample_id = text(record.get("id"), "id")
                if not ctx.wanted(sample_id):
                    continue
                sample = _sample(sample_id, record, image_dir, files)
            except (Malformed, ValidationError) as exc:
                ctx.skips.add(path, number, reason(exc), unit=unit)
                continue
            if ctx.claim(sample_id, path, number, unit):
                yield sample


def _sample(sample_id: str, record: dict[str, Any], image_dir: str, files: Files) -> Sample:
    names = record.get("image_path")
    if not isinstance(names, list) or not names:
        raise Malformed("empty image_path")
    images = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise Malformed(f"image_path: {name!r} is not a path")
        found = files.find(image_dir, name)
        if found is None:
            raise Malformed(f"image not found: {image_dir}/{name}")
        images.append(found)
    return Sample(
        id=sample_id,
        image=images,
        answer=text(record.get("report"), "report"),
        language="en",
        meta={k: v for k, v in record.items() if k not in _KNOWN},
    )
