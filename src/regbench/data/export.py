"""`regbench data export`: the canonical JSONL of exactly what a task loads (docs/datasets.md).

Every ``Sample`` field is written, in the contract's order (``id, image, question, answer, objects,
labels, answer_type, language, width, height, depth, options, meta``), objects as ``{name, boxes,
phrase}``, floats as ``json.dumps`` writes them, one UTF-8 line per sample in the reader's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from regbench.errors import DataError
from regbench.types import Sample

FIELDS = (
    "id", "image", "question", "answer", "objects", "labels", "answer_type",
    "language", "width", "height", "depth", "options", "meta",
)  # fmt: skip
"""The order of a line's keys."""


def canonical_record(sample: Sample) -> dict[str, Any]:
    """One sample as the canonical JSONL writes it."""
    record: dict[str, Any] = {name: getattr(sample, name) for name in FIELDS}
    record["objects"] = [{"name": o.name, "boxes": o.boxes, "phrase": o.phrase} for o in sample.objects]
    return record


def write_canonical(samples: Iterable[Sample], path: Path) -> int:
    """Write ``samples`` to ``path`` (parents created); returns how many were written."""
    if path.is_dir():
        raise DataError(f"{path} is a directory: give the JSONL file to write (-o FILE.jsonl)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    count = 0
    with handle:
        for sample in samples:
            handle.write(json.dumps(canonical_record(sample), ensure_ascii=False) + "\n")
            count += 1
    return count
