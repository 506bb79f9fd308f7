"""The reference parser: the parser chain as it was before the fast path (issue 16), kept verbatim.

:func:`~regbench.parsing.parse_output` and the bracket box formats' ``extract`` were rewritten for
speed (candidate positions instead of a regex tried at every character, boxes scaled without
generic helpers, records built without re-validating what the parser already guarantees). This
module keeps the previous code as the definition of what they must return: the tests hold
:func:`parse_output_reference` equal to :func:`~regbench.parsing.parse_output` on arbitrary
strings (hypothesis) and on every bundled recorded output, and ``bench/bench_parsing.py`` times
the two side by side. It is not used by a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from regbench.parsing.base import (
    BOX_FORMATS,
    Extraction,
    capped,
    get_box_format,
    is_refusal,
    strip_reasoning,
)
from regbench.parsing.boxes import (
    _CONTINUES,
    _GRID_WITH_SEPARATOR,
    _LIST_RE,
    _NUMBER_RE,
    BracketBoxes,
    _trailing_name,
)
from regbench.parsing.text import TAGS
from regbench.types import Parsed, Region, Sample


def clean_text_reference(text: str) -> str:
    """:func:`~regbench.parsing.text.clean_text` as it was."""
    return re.sub(r"\s+([.,;:!?。，；：！？])", r"\1", re.sub(r"\s+", " ", TAGS.sub("", text))).strip()


def to_unit_box_reference(values: Sequence[float], scale_x: float, scale_y: float | None = None) -> list[float] | None:
    """:func:`~regbench.parsing.boxes.to_unit_box` as it was."""
    count = len(values)
    if count not in (4, 6) or any(map(math.isnan, values)):
        return None
    scale_y = scale_x if scale_y is None else scale_y
    scales = (scale_x, scale_y, scale_x, scale_y) if count == 4 else (scale_x, scale_y, scale_x) * 2
    scaled = [min(max(v / s, 0.0), 1.0) for v, s in zip(values, scales, strict=True)]
    low, high = scaled[: count // 2], scaled[count // 2 :]
    return list(map(min, low, high)) + list(map(max, low, high))


def _numbers(text: str) -> list[float]:
    return list(map(float, _NUMBER_RE.findall(text)))


def _unboxed(text: str, match: re.Match[str]) -> str:
    before, after = text[: match.start()].rstrip(), text[match.end() :].lstrip()
    name = match.group("name")
    if name and before and (before[-1].isalnum() or before[-1] == "(") and after and after[0] != "<":
        return f"{name.strip()}{match.group('sep')}"
    return " "


def bracket_extract_reference(fmt: BracketBoxes, text: str) -> Extraction:
    """``BracketBoxes.extract`` as it was."""
    regions: list[Region] = []
    errors: list[str] = []
    remaining: list[str] = []
    last_end = cut = 0
    for match in _GRID_WITH_SEPARATOR.finditer(text):
        boxes = []
        for box_text in _LIST_RE.findall(match.group("boxes")):
            numbers = _numbers(box_text)
            box = to_unit_box_reference(numbers, fmt.scale) if len(numbers) == fmt.dims else None
            if box is None:
                errors.append(f"a {fmt.name} box needs {fmt.dims} numbers: {box_text[:80]}")
            else:
                boxes.append(box)
        between = text[last_end : match.start()]
        if boxes and match.group("name") is None and regions and _CONTINUES.fullmatch(between):
            regions[-1].boxes.extend(boxes)
        elif boxes:
            name = match.group("name")
            if name is None:
                name = _trailing_name(between)
            regions.append(Region(name=name.strip(), boxes=boxes))
        remaining += [text[cut : match.start()], _unboxed(text, match)]
        last_end, cut = match.start("sep"), match.end()
    remaining.append(text[cut:])
    return Extraction(objects=regions, text=clean_text_reference("".join(remaining)), errors=errors, format=fmt.name)


def _extract_reference(box_format: str, text: str, sample: Sample | None) -> Extraction:
    """The format's extraction as it was: the bracket formats (also as ``auto`` detects them) by their
    previous code; the other formats' ``extract`` is unchanged."""
    fmt = get_box_format(box_format)
    if box_format == "auto":
        fmt = BOX_FORMATS.get(fmt.detect(text))  # type: ignore[attr-defined]
    if isinstance(fmt, BracketBoxes):
        return bracket_extract_reference(fmt, text)
    return fmt.extract(text, sample)


def _report_text(text: str, found: Extraction) -> str:
    if not TAGS.search(text) and found.text == clean_text_reference(text):
        return text
    return re.sub(r"\s+", " ", found.text).strip()


def parse_output_reference(
    raw: str | None, *, box_format: str, sample: Sample | None = None, expect_boxes: bool = False
) -> Parsed:
    """:func:`~regbench.parsing.parse_output` as it was (the same arguments, the same result)."""
    if raw is None:
        return Parsed(ok=False, error="no output (model error)")
    text = strip_reasoning(raw).strip()
    if not text:
        return Parsed(ok=False, raw=raw, error="empty output")
    try:
        found = _extract_reference(box_format, text, sample)
    except Exception as exc:
        return Parsed(ok=False, raw=raw, text=text, error=capped(f"box parser {box_format} failed: {exc!r}"))
    clean = _report_text(text, found)
    refusal = not found.objects and is_refusal(text)
    used = found.format or box_format
    if expect_boxes and not found.objects and not refusal:
        reason = capped("; ".join(found.errors) or f"no box in {used} format found")
        return Parsed(ok=False, raw=raw, text=clean, objects=found.objects, box_format=used, error=reason)
    return Parsed(
        ok=True, raw=raw, text=clean, objects=found.objects, box_format=used, refusal=refusal, skipped=found.errors
    )
