"""Box formats of the model families regbench evaluates (docs/region-metrics.md, "Box formats").

Every format turns untrusted text into (name, boxes) regions with 0–1 corner boxes and the
text that remains once the boxes and their tags are gone, and never raises. Coordinates are
scaled, clipped to [0, 1], and swapped corners reordered; a span that looks like a box but
has the wrong count of numbers is reported in ``Extraction.errors``.

| name | writes | scale |
|---|---|---|
| ``medrega`` | ``<ref>liver</ref><box>[[x1, y1, x2, y2], ...]</box>`` | 0–999 integers, / 999 |
| ``internvl`` | the same syntax (InternVL 1.5 / 2 / 2.5) | 0–1000 integers, / 1000 |
| ``qwen_vl`` | ``<ref>liver</ref><box>(x1,y1),(x2,y2)</box>`` | 0–999, / 999 |
| ``qwen2_vl`` | the same with ``<|object_ref_start|>``/``<|box_start|>`` tokens | 0–1000, / 1000 |
| ``qwen25_vl`` | JSON ``{"bbox_2d": [x1, y1, x2, y2], "label": "liver"}`` | absolute pixels (needs the image size) |
| ``m4cxr`` | ``consolidation [x1, y1, x2, y2]`` | 0–100 integers, / 100 |
| ``normalized`` | ``liver [0.12, 0.30, 0.55, 0.71]`` (MAIRA-2, RadFact) | 0–1 floats |
| ``m3d`` | ``[x1, y1, z1, x2, y2, z2]`` | 0–1 floats, 3D |
| ``vividmed`` | ``<p>opacity</p> [0.1, 0.2, 0.4, 0.5] is seen`` with ``<grd>``/``<ngrd>`` | 0–1 floats |
| ``auto`` | detects one of the above and reports which in ``Extraction.format`` | |
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from regbench.parsing.base import BOX_FORMATS, Extraction
from regbench.parsing.text import TAGS, clean_text
from regbench.types import Region, Sample

# One way only to split digits into a number: "\d+\.?\d*" could split "102" as 1|02, 10|2 ...,
# and an unclosed list of integers (an output cut off by max_tokens) then took exponential time.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LIST = rf"\[\s*{_NUMBER}(?:\s*,\s*{_NUMBER})*\s*,?\s*\]"
_LISTS = rf"\[\s*{_LIST}(?:\s*,\s*{_LIST})*\s*\]|{_LIST}"
_NUMBER_RE, _LIST_RE = re.compile(_NUMBER), re.compile(_LIST)
# What may stand between two box groups of one object: "liver [..], [..]", "<box>..</box><box>..</box>".
_CONTINUES = re.compile(r"\s*[,，、]?\s*")
# A VividMed phrase: <p>...</p> with no other <p> or </p> inside. Unrolled, so that text with
# many unclosed <p> is read in linear time (a lazy ".*?" rescans to the end from each one).
_P_PHRASE = r"<p>(?P<phrase>[^<]*(?:<(?!/?p>)[^<]*)*)</p>"
# An optional <ref>name</ref>, then one or several bracketed number lists, in <box> or <ref> tags or bare.
_GRID = re.compile(
    rf"(?:<ref>(?P<name>[^<>]*?)</ref>\s*)?(?:<(?P<tag>box|ref)>\s*)?(?P<boxes>{_LISTS})(?:\s*</(?:box|ref)>)?",
    re.DOTALL,
)
_QWEN_BOX = re.compile(
    rf"(?:<ref>(?P<name>[^<>]*?)</ref>\s*)?<box>\s*\(\s*(?P<x1>{_NUMBER})\s*,\s*(?P<y1>{_NUMBER})\s*\)\s*,?\s*"
    rf"\(\s*(?P<x2>{_NUMBER})\s*,\s*(?P<y2>{_NUMBER})\s*\)\s*</box>",
    re.DOTALL,
)
_SEPARATOR = r"\s*[:：,，;；]?\s*"
# A box group and the separator after it, as removed from the report text (see _unboxed).
_GRID_WITH_SEPARATOR = re.compile(rf"(?:{_GRID.pattern})(?P<sep>{_SEPARATOR})", re.DOTALL)
_QWEN_WITH_SEPARATOR = re.compile(rf"(?:{_QWEN_BOX.pattern})(?P<sep>{_SEPARATOR})", re.DOTALL)
_CLAUSE_END = re.compile(r"[.;:!?。；：！？\n]")


def to_unit_box(values: Sequence[float], scale_x: float, scale_y: float | None = None) -> list[float] | None:
    """Scale to 0–1, clip, reorder swapped corners; ``None`` unless 4 (2D) or 6 (3D) numbers."""
    count = len(values)
    if count not in (4, 6) or any(map(math.isnan, values)):
        return None
    scale_y = scale_x if scale_y is None else scale_y
    # 3D depth shares the x scale: only 0-1 formats are 3D
    scales = (scale_x, scale_y, scale_x, scale_y) if count == 4 else (scale_x, scale_y, scale_x) * 2
    scaled = [min(max(v / s, 0.0), 1.0) for v, s in zip(values, scales, strict=True)]
    low, high = scaled[: count // 2], scaled[count // 2 :]
    return list(map(min, low, high)) + list(map(max, low, high))


def _numbers(text: str) -> list[float]:
    return list(map(float, _NUMBER_RE.findall(text)))


def _trailing_name(prefix: str) -> str:
    """The words just before an untagged box ("consolidation [..]"): the last clause, at most 8 words."""
    clause = _CLAUSE_END.split(TAGS.sub(" ", prefix))[-1]
    clause = re.sub(r"^\s*(?:and|,|，)\s*", "", clause.strip(" ,，"))
    words = clause.split()
    return " ".join(words[-8:]) if len(words) <= 8 else ""


def _unboxed(text: str, match: re.Match[str]) -> str:
    """What a box group leaves in the report text. Inside a sentence ("seen in the <ref>right
    lung</ref><box>[[..]]</box>. The ...") its name stays; as a header before the text it
    describes ("<ref>right lung</ref><box>[[..]]</box>: A nodule ..."), after another group, or
    ending a list of detections, it goes."""
    before, after = text[: match.start()].rstrip(), text[match.end() :].lstrip()
    name = match.group("name")
    if name and before and (before[-1].isalnum() or before[-1] == "(") and after and after[0] != "<":
        return f"{name.strip()}{match.group('sep')}"
    return " "


class BracketBoxes:
    """Boxes written as bracketed number lists on a fixed scale, with optional ``<ref>``/``<box>`` tags."""

    def __init__(self, name: str, scale: float, *, decimals: int | None = None, dims: int = 4) -> None:
        self.name, self.scale, self.decimals, self.dims = name, scale, decimals, dims

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        regions: list[Region] = []
        errors: list[str] = []
        remaining: list[str] = []  # the text with each box group and its separator cut out (see _unboxed)
        last_end = cut = 0
        # One pass: a group's separator never holds the "<" or "[" a group starts with, so these are
        # exactly _GRID's matches, each with the separator after it.
        for match in _GRID_WITH_SEPARATOR.finditer(text):
            boxes = []
            for box_text in _LIST_RE.findall(match.group("boxes")):
                numbers = _numbers(box_text)
                box = to_unit_box(numbers, self.scale) if len(numbers) == self.dims else None
                if box is None:
                    errors.append(f"a {self.name} box needs {self.dims} numbers: {box_text[:80]}")
                else:
                    boxes.append(box)
            between = text[last_end : match.start()]
            if boxes and match.group("name") is None and regions and _CONTINUES.fullmatch(between):
                regions[-1].boxes.extend(boxes)  # "liver [..], [..]": more boxes of the same object
            elif boxes:
                name = match.group("name")
                if name is None:
                    name = _trailing_name(between)
                regions.append(Region(name=name.strip(), boxes=boxes))
            remaining += [text[cut : match.start()], _unboxed(text, match)]
            last_end, cut = match.start("sep"), match.end()
        remaining.append(text[cut:])
        return Extraction(objects=regions, text=clean_text("".join(remaining)), errors=errors, format=self.name)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        if self.decimals is None:
            numbers = ", ".join(str(round(v * self.scale)) for v in box)
        else:
            numbers = ", ".join(f"{v * self.scale:.{self.decimals}f}" for v in box)
        return f"[[{numbers}]]" if self.name in ("medrega", "internvl") else f"[{numbers}]"


class QwenVLBoxes:
    """Qwen-VL: ``<ref>name</ref><box>(x1,y1),(x2,y2)</box>`` on the 0–999 grid."""

    name = "qwen_vl"
    scale = 999

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        regions: dict[str, Region] = {}
        name, last_end = "", 0
        for match in _QWEN_BOX.finditer(text):
            values = [float(match.group(k)) for k in ("x1", "y1", "x2", "y2")]
            box = to_unit_box(values, self.scale)
            # Qwen-VL writes one <ref> then one <box> per box: a <box> right after another keeps its name
            if match.group("name") is not None or not _CONTINUES.fullmatch(text[last_end : match.start()]):
                name = (match.group("name") or "").strip()
            last_end = match.end()
            if box is not None:
                regions.setdefault(name, Region(name=name)).boxes.append(box)
        remaining = _QWEN_WITH_SEPARATOR.sub(lambda m: _unboxed(text, m), text)
        return Extraction(objects=list(regions.values()), text=clean_text(remaining), format=self.name)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        x1, y1, x2, y2 = (round(v * self.scale) for v in box[:4])
        return f"({x1},{y1}),({x2},{y2})"


# Qwen2-VL's special tokens, read as Qwen-VL's tags (the text must keep them: serve with
# skip_special_tokens off, or the names and boxes run together).
_QWEN2_TOKENS = {
    "<|object_ref_start|>": "<ref>",
    "<|object_ref_end|>": "</ref>",
    "<|box_start|>": "<box>",
    "<|box_end|>": "</box>",
}
_QWEN2_TOKEN = re.compile("|".join(map(re.escape, _QWEN2_TOKENS)))


class Qwen2VLBoxes(QwenVLBoxes):
    """Qwen2-VL: ``<|object_ref_start|>name<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``, 0–1000."""

    name = "qwen2_vl"
    scale = 1000

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        return super().extract(_QWEN2_TOKEN.sub(lambda m: _QWEN2_TOKENS[m.group(0)], text), sample)


def qwen25_input_size(width: int, height: int, *, factor: int = 28, min_pixels: int = 56 * 56,
                      max_pixels: int = 28 * 28 * 16384) -> tuple[int, int]:  # fmt: skip
    """The (width, height) Qwen2.5-VL's processor resizes an image to (its ``smart_resize``, with the
    processor's default pixel bounds): each side a multiple of 28, the area kept within bounds.
    Its boxes are pixels of this resized image, not of the original."""
    resized_h = max(factor, round(height / factor) * factor)
    resized_w = max(factor, round(width / factor) * factor)
    if resized_h * resized_w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        resized_h = max(factor, math.floor(height / beta / factor) * factor)
        resized_w = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_h * resized_w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        resized_h = math.ceil(height * beta / factor) * factor
        resized_w = math.ceil(width * beta / factor) * factor
    return resized_w, resized_h


class Qwen25Options(BaseModel):
    """The image pixel bounds of Qwen2.5-VL's resize (its processor's ``min_pixels``/``max_pixels``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_pixels: int = Field(56 * 56, gt=0)
    max_pixels: int = Field(28 * 28 * 16384, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Qwen25Options:
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.model_dump()}")
        return self


class Qwen25Boxes:
    """Qwen2.5-VL JSON grounding: ``[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`` in pixels of the
    resized input image (:func:`qwen25_input_size`). A server started with other pixel bounds
    (``--mm-processor-kwargs '{"max_pixels": ...}'``) resizes differently: name them in the format,
    ``qwen25_vl(min_pixels=3136,max_pixels=1003520)``."""

    name = "qwen25_vl"
    _OBJECT = re.compile(r"\{[^{}]*\"bbox_2d\"[^{}]*\}", re.DOTALL)
    Options = Qwen25Options

    def __init__(self, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 16384) -> None:
        self.min_pixels, self.max_pixels = min_pixels, max_pixels

    def configured(self, options: Qwen25Options) -> Qwen25Boxes:
        """This format with other pixel bounds; its name records them."""
        configured = Qwen25Boxes(options.min_pixels, options.max_pixels)
        configured.name = f"qwen25_vl(min_pixels={options.min_pixels},max_pixels={options.max_pixels})"
        return configured

    def _input_size(self, width: int, height: int) -> tuple[int, int]:
        return qwen25_input_size(width, height, min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        width = sample.width if sample is not None else None
        height = sample.height if sample is not None else None
        regions: dict[str, Region] = {}
        errors: list[str] = []
        for match in self._OBJECT.finditer(text):
            try:
                item = json.loads(match.group(0))
                values = [float(v) for v in item["bbox_2d"]]
                label = str(item.get("label", ""))
            except (ValueError, TypeError, KeyError):
                values = _numbers(match.group(0).split("bbox_2d", 1)[1])[:4]
                found = re.search(r"\"label\"\s*:\s*\"([^\"]*)\"", match.group(0))
                label = found.group(1) if found else ""
            if not width or not height:
                errors.append("qwen25_vl boxes are in pixels: the sample needs `width` and `height`")
                continue
            box = to_unit_box(values, *map(float, self._input_size(width, height)))
            if box is None:
                errors.append(f"bbox_2d needs 4 numbers: {match.group(0)[:80]}")
                continue
            regions.setdefault(label.strip(), Region(name=label.strip())).boxes.append(box)
        remaining = self._OBJECT.sub(" ", re.sub(r"```(?:json)?", " ", text))
        remaining = re.sub(r"\[\s*(?:,\s*)*\]", " ", remaining)
        return Extraction(objects=list(regions.values()), text=clean_text(remaining), errors=errors, format=self.name)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        """Pixels of ``sample``'s resized image; without a size, 0–1 floats (then say so in the prompt)."""
        if sample is not None and sample.width and sample.height:
            scale = list(self._input_size(sample.width, sample.height)) * 2
            return json.dumps({"bbox_2d": [round(v * k) for v, k in zip(box[:4], scale, strict=True)]})
        return json.dumps({"bbox_2d": [round(v, 3) for v in box]})


class VividMedPhrases:
    """VividMed: grounded phrases ``<p>phrase</p>``, each optionally followed by 0–1 boxes."""

    name = "vividmed"
    _PHRASE = re.compile(rf"{_P_PHRASE}(?P<boxes>(?:\s*,?\s*(?:{_LISTS}))*)")  # several boxes: ", " between

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        errors = []
        depth = 0
        for tag in re.findall(r"</?p>", text):
            depth += 1 if tag == "<p>" else -1
            if depth not in (0, 1):
                errors.append("unbalanced or nested <p> tags")
                break
        if depth != 0 and not errors:
            errors.append("unbalanced or nested <p> tags")
        regions = []
        for match in self._PHRASE.finditer(text):
            phrase = match.group("phrase").strip()
            boxes = [b for t in _LIST_RE.findall(match.group("boxes")) if (b := to_unit_box(_numbers(t), 1.0))]
            regions.append(Region(name=phrase, phrase=phrase, boxes=boxes))
        remaining = self._PHRASE.sub(lambda m: f" {m.group('phrase').strip()} ", text)
        if errors:  # VividMed's own parser rejects the whole target list
            return Extraction(text=clean_text(remaining), errors=errors, format=self.name)
        return Extraction(objects=[r for r in regions if r.boxes], text=clean_text(remaining), format=self.name)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        return "[" + ", ".join(f"{v:.3f}" for v in box) + "]"


class AutoBoxes:
    """Detects the format from the text (see ``detect``) and says which one it used."""

    name = "auto"

    def detect(self, text: str) -> str:
        if "bbox_2d" in text:
            return "qwen25_vl"
        if "<|box_start|>" in text:
            return "qwen2_vl"
        if _QWEN_BOX.search(text):
            return "qwen_vl"
        if re.search(_P_PHRASE, text):
            return "vividmed"
        if "[[" in text.replace(" ", "") or "<box>" in text or "<ref>" in text:
            return "medrega"
        lists = _LIST_RE.findall(text)
        numbers = [v for t in lists for v in _numbers(t)]
        if numbers and all(0 <= v <= 1 for v in numbers):
            return "m3d" if any(len(_numbers(t)) == 6 for t in lists) else "normalized"
        if numbers and max(numbers) <= 100 and all(v == int(v) for v in numbers):
            return "m4cxr"
        return "medrega"

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        return BOX_FORMATS.get(self.detect(text)).extract(text, sample)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        return BOX_FORMATS.get("medrega").write(box, sample)


BOX_FORMATS.add("medrega", BracketBoxes("medrega", 999))
BOX_FORMATS.add("internvl", BracketBoxes("internvl", 1000))
BOX_FORMATS.add("m4cxr", BracketBoxes("m4cxr", 100))
BOX_FORMATS.add("normalized", BracketBoxes("normalized", 1, decimals=3))
BOX_FORMATS.add("m3d", BracketBoxes("m3d", 1, decimals=3, dims=6))
BOX_FORMATS.add("qwen_vl", QwenVLBoxes())
BOX_FORMATS.add("qwen2_vl", Qwen2VLBoxes())
BOX_FORMATS.add("qwen25_vl", Qwen25Boxes())
BOX_FORMATS.add("vividmed", VividMedPhrases())
BOX_FORMATS.add("auto", AutoBoxes())
