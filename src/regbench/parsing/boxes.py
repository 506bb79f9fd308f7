"""Box formats: MedRegA / InternVL grid boxes and plain 0–1 boxes.

First simple form (foundation); the region-metrics work replaces it with every format
of METRICS.md and ``auto`` detection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from regbench.parsing.base import BOX_FORMATS, Extraction
from regbench.types import Region, Sample

_NUMBER = r"-?\d+(?:\.\d+)?"
_BOX = rf"\[\s*{_NUMBER}(?:\s*,\s*{_NUMBER})*\s*\]"
_GROUP = re.compile(
    rf"(?:<ref>(?P<name>.*?)</ref>\s*)?(?:<box>\s*)?(?P<boxes>\[\s*{_BOX}(?:\s*,\s*{_BOX})*\s*\]|{_BOX})(?:\s*</box>)?",
    re.DOTALL,
)


def normalise_box(values: Sequence[float], scale: float) -> list[float] | None:
    """Scale to 0–1, clip, and reorder swapped corners; ``None`` if not 4 or 6 numbers."""
    if len(values) not in (4, 6):
        return None
    half = len(values) // 2
    scaled = [min(max(v / scale, 0.0), 1.0) for v in values]
    low = [min(a, b) for a, b in zip(scaled[:half], scaled[half:], strict=True)]
    high = [max(a, b) for a, b in zip(scaled[:half], scaled[half:], strict=True)]
    return low + high


class GridBoxes:
    """``<ref>name</ref><box>[[x1, y1, x2, y2], ...]</box>`` on an integer grid (0–``scale``)."""

    def __init__(self, name: str, scale: float) -> None:
        self.name, self.scale = name, scale

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        objects: list[Region] = []
        errors: list[str] = []
        for match in _GROUP.finditer(text):
            boxes = []
            for box_text in re.findall(_BOX, match.group("boxes")):
                numbers = [float(n) for n in re.findall(_NUMBER, box_text)]
                box = normalise_box(numbers, self.scale)
                if box is None:
                    errors.append(f"box with {len(numbers)} numbers: {box_text}")
                else:
                    boxes.append(box)
            if boxes:
                objects.append(Region(name=(match.group("name") or "").strip(), boxes=boxes))
        # A grounded report's text is what remains once every (name, box) group and the
        # separator after it (": " or "，") are gone: "<ref>heart</ref><box>..</box>: Normal." -> "Normal."
        remaining = re.sub(rf"(?:{_GROUP.pattern})\s*[:：,，;；]?\s*", " ", text, flags=re.DOTALL)
        remaining = re.sub(r"</?(ref|box)>", "", remaining)
        return Extraction(objects=objects, text=remaining, errors=errors, format=self.name)

    def write(self, box: Sequence[float]) -> str:
        return "[[" + ", ".join(str(round(v * self.scale)) for v in box) + "]]"


BOX_FORMATS.add("medrega", GridBoxes("medrega", 999))
BOX_FORMATS.add("normalized", GridBoxes("normalized", 1))
BOX_FORMATS.add("auto", GridBoxes("medrega", 999))
