"""The parser chain: strip reasoning → detect refusals → extract boxes → clean text.

Every string parses: the result is a :class:`~regbench.types.Parsed`, with ``ok=False``
and a reason when the output cannot be read the way the task needs (no boxes where boxes
were expected, an empty output). Nothing here raises on model text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from regbench.errors import UnknownNameError
from regbench.parsing.text import TAGS, clean_text, collapsed
from regbench.registry import Registry
from regbench.types import Parsed, Region, Sample, built, encodable

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\s*(not present|none\b|no (such |visible )?(region|object|finding|lesion)s?( (is|are) (found|present|visible))?"
    r"|sorry|i (cannot|can't|could not|am unable to) (find|locate|see|identify)|unable to (find|locate))",
    re.IGNORECASE,
)
# A short answer whose first sentence says the thing is absent: "There is no liver in this image.",
# "The liver is not visible.", "未发现病灶。" Only short answers: a long report that says "no
# effusion" and has no box is a parse failure, not a refusal.
_ABSENT = re.compile(
    r"\b(there (is|are) no|there's no|not (present|visible|seen|found|detected|identified|shown|here)"
    r"|^no\b[^,;]*\b(present|visible|seen|found|detected|identified|shown)"
    r"|(cannot|can't|could not|couldn't) be (found|located|seen|identified|detected)|does not (exist|appear))\b"
    r"|(未|没有|无法|不能)(见|发现|找到|定位|看到|显示|识别)|不存在",
    re.IGNORECASE,
)
# An empty JSON list, fenced or not: Qwen2.5-VL's way of saying it found nothing.
_EMPTY_LIST = re.compile(r"\s*(?:```(?:json)?\s*)?\[\s*\]\s*(?:```)?\s*")
_FIRST_SENTENCE = re.compile(r"^[^.!?。！？\n]*")
_SHORT = 120


@dataclass
class Extraction:
    """What a box format found in a text."""

    objects: list[Region] = field(default_factory=list)
    text: str = ""
    """The text with every box (and its tags) removed."""
    errors: list[str] = field(default_factory=list)
    """Box-like spans that could not be read (e.g. 3 numbers), for the parse-failure reason."""
    format: str | None = None
    """The format actually read (``auto`` reports the one it detected)."""


@runtime_checkable
class BoxFormat(Protocol):
    """How one model family writes boxes. ``extract`` never raises on any string.

    A format with options (``qwen25_vl(max_pixels=1003520)``) also has ``Options``, a pydantic
    model of them (``extra="forbid"``, defaults = this instance's settings), and
    ``configured(options) -> BoxFormat``, the format with those options, named with every
    option spelled out.
    """

    name: str

    def extract(self, text: str, sample: Sample | None) -> Extraction: ...

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        """A 0–1 box as this format writes it inside its box tags (``sample`` gives the image size
        to formats in pixels)."""
        ...


BOX_FORMATS: Registry[BoxFormat] = Registry(
    "box format", entry_point_group="regbench.box_formats", base=BoxFormat, instances=True, named=True
)
_CONFIGURED = re.compile(r"(?P<name>\w+)\((?P<options>[^()]*)\)")


def get_box_format(spec: str) -> BoxFormat:
    """The box format a name gives: a registered name, or one with options, ``name(key=N,key=N)``
    (integers only; e.g. ``qwen25_vl(max_pixels=1003520)``), validated by the format's
    ``Options``. results.json records the string as given; each parsed output records the
    configured format's name, every option spelled out."""
    return _box_format(spec, BOX_FORMATS.revision)


@functools.lru_cache(maxsize=64)
def _box_format(spec: str, revision: int) -> BoxFormat:
    """:func:`get_box_format`, cached per registry state (a test that adds a format sees it)."""
    match = _CONFIGURED.fullmatch(spec.replace(" ", ""))
    if match is None:
        return BOX_FORMATS.get(spec)
    name = match.group("name")
    base = BOX_FORMATS.get(name)
    given: dict[str, int] = {}
    for part in filter(None, match.group("options").split(",")):
        key, _, value = part.partition("=")
        if not key or not re.fullmatch(r"[0-9]+", value):
            raise UnknownNameError(f"box format {spec!r}: options are written key=integer, got {part!r}")
        if key in given:
            raise UnknownNameError(f"box format {spec!r}: option {key!r} is given twice")
        given[key] = int(value)
    options_model: type[BaseModel] | None = getattr(base, "Options", None)
    if options_model is None or not hasattr(base, "configured"):
        raise UnknownNameError(f"box format {name!r} takes no options (got {spec!r})")
    try:
        options = options_model.model_validate(given)
    except ValidationError as exc:
        raise UnknownNameError(_option_error(name, options_model, exc)) from None
    return base.configured(options)  # type: ignore[attr-defined, no-any-return]


def _option_error(name: str, options_model: type[BaseModel], exc: ValidationError) -> str:
    """``box format qwen25_vl has no option 'pixels' (it takes min_pixels, max_pixels)``, or the
    option and what is wrong with it."""
    error: Any = exc.errors()[0]
    takes = ", ".join(options_model.model_fields)
    option = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"box format {name} has no option {option!r} (it takes {takes})"
    if not option:  # a check across options (a model validator)
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"box format {name}: {reason}"
    return f"box format {name}: option {option}: {error['msg'].lower()}, got {error['input']!r} (it takes {takes})"


def strip_reasoning(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (an unclosed one runs to the end)."""
    return _THINK.sub("", text)


def is_refusal(text: str) -> bool:
    """``Not present.``, ``Sorry, I cannot find ...``: an answer that says there is no box.

    >>> [is_refusal(t) for t in ("Not present.", "The liver is not visible.", "未发现病灶。", "Liver at left.")]
    [True, True, True, False]
    """
    if _REFUSAL.match(text) or _EMPTY_LIST.fullmatch(text):
        return True
    first = _FIRST_SENTENCE.match(text.strip())
    return len(text) <= _SHORT and first is not None and bool(_ABSENT.search(first.group(0)))


def _report_text(text: str, found: Extraction) -> str:
    """What text metrics score. An output with no box or tag in it keeps its own whitespace (line
    breaks are tokens to BERTScore's BPE models and to RadCliQ's BLEU-2, which split the raw
    report); where boxes or tags were cut out, the remaining text is tidied (whitespace collapsed)."""
    if not TAGS.search(text) and found.text == clean_text(text):
        return text
    return collapsed(found.text)


ERROR_CHARS = 300
"""The longest parse-failure reason kept: garbage output can hold thousands of unreadable box-like
spans, and the reason is written once per sample to samples.jsonl (``raw`` keeps the whole output)."""


def capped(message: str, limit: int = ERROR_CHARS) -> str:
    """``message`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def parse_output(
    raw: str | None, *, box_format: str, sample: Sample | None = None, expect_boxes: bool = False
) -> Parsed:
    """Parse one model output. Never raises for any ``raw`` string.

    Parameters
    ----------
    raw : the model's text (``None`` when the model returned an error).
    box_format : a name in ``BOX_FORMATS`` (``auto`` detects the format), options allowed (:func:`get_box_format`).
    sample : the sample, for formats that need the image size (absolute pixels).
    expect_boxes : whether the task needs boxes: then an output with none (and no refusal)
        is a parse failure.

    :func:`regbench.parsing.reference.parse_output_reference` is the slower form this one must equal
    (tested); the records are built without validation (:func:`~regbench.types.built`), the strings
    made encodable here as ``Parsed`` and ``Region`` validation would.
    """
    if raw is None:
        return built(Parsed, {"ok": False, "error": "no output (model error)"})
    # strip_reasoning; only "t" and "T" match "t" in the case-blind pattern, so this test is exact
    text = (_THINK.sub("", raw) if "<t" in raw or "<T" in raw else raw).strip()
    if not text:
        return built(Parsed, {"ok": False, "raw": _encodable(raw), "error": "empty output"})
    fmt = get_box_format(box_format)
    try:
        found = fmt.extract(text, sample)
    except Exception as exc:  # a parser bug must cost one sample, not the run
        message = capped(f"box parser {box_format} failed: {exc!r}")
        return built(Parsed, {"ok": False, "raw": _encodable(raw), "text": _encodable(text), "error": message})
    clean = _encodable(_report_text(text, found))
    objects = found.objects
    for region in objects:
        if type(region) is not Region:  # another package's format: validate what it made
            objects = [Region.model_validate(r) for r in objects]
            break
    refusal = not objects and is_refusal(text)
    used = found.format or box_format
    if expect_boxes and not objects and not refusal:
        reason = capped("; ".join(found.errors) or f"no box in {used} format found")
        values = {"ok": False, "raw": _encodable(raw), "text": clean, "objects": objects, "box_format": used}
        values["error"] = reason
        return built(Parsed, values)
    return built(
        Parsed,
        {
            "ok": True,
            "raw": _encodable(raw),
            "text": clean,
            "objects": objects,
            "box_format": used,
            "refusal": refusal,
            "skipped": list(found.errors),
        },
    )


def _encodable(text: str) -> str:
    """:func:`~regbench.types.encodable`, with the common ASCII case answered at once."""
    return text if text.isascii() else encodable(text)
