"""`regbench data export`: the canonical JSONL of exactly what a task loads (DATASETS.md).

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


OBJECT_FIELDS = ("name", "boxes", "phrase")
"""The order of an object's keys."""

# One encoder for every line (json.dumps builds one per call when an option differs from its defaults).
_encode = json.JSONEncoder(ensure_ascii=False).encode


def canonical_record(sample: Sample) -> dict[str, Any]:
    """One sample as the canonical JSONL writes it.

    A model's ``__dict__`` holds exactly its fields in declaration order, which is the contract's
    order for ``Sample`` and ``Region`` (tests/test_data_export.py checks both), so the record is a
    copy of it: no attribute lookup per field.
    """
    record = sample.__dict__
    return {**record, "objects": [o.__dict__ for o in record["objects"]]}


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
            handle.write(_encode(canonical_record(sample)) + "\n")
            count += 1
    return count
