"""`regbench data export`: the canonical JSONL of exactly what a task loads (docs/datasets.md).

Every ``Sample`` field is written, in the contract's order (``id, image, question, answer, objects,
labels, answer_type, language, width, height, depth, options, meta``), objects as ``{name, boxes,
phrase}``, floats as ``json.dumps`` writes them, one UTF-8 line per sample in the reader's order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from json.encoder import encode_basestring
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
_string = encode_basestring  # what that encoder writes for a str (ensure_ascii=False)
_float_repr = float.__repr__  # what it writes for a finite float
_FLOAT_TEXTS: dict[float, str] = {}
_MAX_FLOAT_TEXTS = 100_000
"""Box coordinates repeat (a 0–999 grid has 1,000 values): their text is kept, up to this many."""
_EMPTY_OBJECTS = '"objects": [], '


class _Unusual(Exception):
    """A box value the fast path does not write (not a finite float): the encoder writes the line."""


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
            handle.write(canonical_line(sample) + "\n")
            count += 1
    return count


def canonical_line(sample: Sample) -> str:
    """``json.dumps(canonical_record(sample), ensure_ascii=False)``, with the objects written here.

    Encoding the boxes' floats was over half of the encoder's time; their texts are cached instead
    (same ``float.__repr__``), and the rest of the line is the encoder's (tests/test_data_export.py
    checks both equal, unusual values included).
    """
    record = sample.__dict__
    objects = record["objects"]
    if not objects:
        return _encode(record)
    try:
        texts = [_object_text(o.__dict__) for o in objects]
    except _Unusual:
        return _encode(canonical_record(sample))
    # Inside a JSON string every quote is escaped, so the first match is the key itself.
    before, found, after = _encode({**record, "objects": []}).partition(_EMPTY_OBJECTS)
    if not found:  # not reachable while ``objects`` is followed by other keys; kept exact anyway
        return _encode(canonical_record(sample))
    return before + '"objects": [' + ", ".join(texts) + "], " + after


def _object_text(region: dict[str, Any]) -> str:
    boxes = ", ".join("[" + ", ".join([_float_text(v) for v in box]) + "]" for box in region["boxes"])
    phrase = region["phrase"]
    return (
        '{"name": ' + _string(region["name"]) + ', "boxes": [' + boxes + '], "phrase": '
        + ("null" if phrase is None else _string(phrase)) + "}"
    )  # fmt: skip


def _float_text(value: float) -> str:
    # type() before the lookup: 1 == 1.0 == True as keys, and an int or a bool is written otherwise.
    if type(value) is not float:
        raise _Unusual
    text = _FLOAT_TEXTS.get(value)
    if text is None:
        if not math.isfinite(value):
            raise _Unusual
        text = _float_repr(value)
        if value and len(_FLOAT_TEXTS) < _MAX_FLOAT_TEXTS:  # 0.0 and -0.0: equal keys, two texts
            _FLOAT_TEXTS[value] = text
    return text
