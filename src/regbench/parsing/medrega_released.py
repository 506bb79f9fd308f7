"""MedRegA's released reading of model outputs: the ``medrega_released`` box format.

MedRegA's released evaluators (xmed-lab/MedRegA ``src/eval/regt2r/evaluator_reg.py``,
released with Wang et al. 2024, docs/seed-protocols.md), which produced the paper's numbers, read a prediction with
one pattern over the whole output, ``PATTERN_REGCAP``: a run of text without brackets, then a
double-bracketed list of four-integer boxes. Each box is its integers / 999, neither clipped
nor reordered, named by all the text before its list (tags included), lower-cased. Single
brackets, decimals, or a space after ``[[`` give no box. ``region_aligned`` in ``mode: medrega``
reads outputs this way (``Metric.reads``).

Two paths, equal output for output (tested):

- :meth:`ReleasedBoxes.read`: one output into a :class:`~regbench.types.Parsed`, by the regex.
- :meth:`ReleasedBoxes.read_batch`: many outputs into flat
  :class:`~regbench.parsing.readings.ParsedColumns`: one regex pass per output and one number
  read for all; with numba (:mod:`regbench.accel`), a compiled scanner over the bytes of
  all outputs (:mod:`regbench.parsing._released_kernels`).

As a plugin's reading, each output is read whole (reasoning included), as the released code
read it; named as a task's box format, it reads what the parser chain leaves, like every format.
An output without a box is judged as the parser chain judges one: a refusal, an empty output,
or (when the task expects boxes) a parse failure.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from itertools import chain, repeat

import numpy as np

from regbench.parsing.base import BOX_FORMATS, Extraction, is_refusal, strip_reasoning
from regbench.parsing.readings import ParsedColumns
from regbench.parsing.text import clean_text
from regbench.types import Parsed, Region, Sample, encodable

NAME = "medrega_released"
SCALE = 999
"""The 0-999 grid of MedRegA's prompts; the released code divides by it."""

# PATTERN_REGCAP (evaluator_reg.py): the text before a list, then the double-bracketed integer list.
_LISTS = r"(\[\[\d+,\s*\d+,\s*\d+,\s*\d+\](?:,\s*\[\d+,\s*\d+,\s*\d+,\s*\d+\])*\])"
_GROUP = re.compile(r"([^\[\]]*)" + _LISTS)
# The same matches in linear time: the released pattern retries its name part at every position of
# a bracket-free run, quadratic in its length. A match can only start after a bracket (or at the
# start), so a lookbehind skips the rest; it is slower on short outputs, hence only for long ones.
_GROUP_LONG = re.compile(r"(?<![^\[\]])([^\[\]]*)" + _LISTS)
_LONG_OUTPUT = 512
_BOX = re.compile(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]")
# Everything but digits that an ASCII box list can hold (``\s`` includes the \x1c-\x1f separators).
_NUMBER_SEPARATORS = str.maketrans(dict.fromkeys("[], \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", " "))
_EXACT = 2**53
"""Integers below this are exact in a float64, so a vectorised ``v / 999`` equals Python's ``int(v) / 999``."""
_NO_BOX = f"no box in {NAME} format found"  # the parser chain's words


def _pattern(text: str) -> re.Pattern[str]:
    return _GROUP if len(text) < _LONG_OUTPUT else _GROUP_LONG


def released_groups(text: str) -> list[tuple[str, str]]:
    """``re.findall(PATTERN_REGCAP, text)``: (text before the list, ``[[...]]`` list) pairs."""
    return _pattern(text).findall(text)


def _scaled(digits: str) -> float:
    """A coordinate as the released code computes it, ``int / 999``; a number too large for a float
    (the released code fails on it) reads as infinity, which the region metrics clip like any
    out-of-range value."""
    try:
        return int(digits) / SCALE
    except (OverflowError, ValueError):  # ValueError: more digits than int() converts
        return math.inf


def _boxes(box_list: str) -> list[list[float]]:
    return [[_scaled(v) for v in box] for box in _BOX.findall(box_list)]


def released_boxes(text: str) -> tuple[list[list[float]], list[str]]:
    """The boxes of one output and each box's name, as the released parser reads them."""
    boxes: list[list[float]] = []
    names: list[str] = []
    for name, box_list in released_groups(text):
        found = _boxes(box_list)
        boxes += found
        names += [name.lower()] * len(found)
    return boxes, names


def _regions(text: str) -> list[Region]:
    """One region per box list, named by the text before it, lower-cased."""
    return [Region(name=name.lower(), boxes=_boxes(box_list)) for name, box_list in released_groups(text)]


def _without_lists(text: str) -> str:
    """The text with every box list the pattern reads cut out, tags dropped, whitespace tidied."""
    return clean_text(_pattern(text).sub(r"\1 ", text))


def _verdict(text: str, has_boxes: bool, expect_boxes: bool) -> tuple[bool, str | None]:
    """(refusal, error) of an output: an output without boxes is judged on its answer (reasoning
    dropped, trimmed), as :func:`~regbench.parsing.parse_output` judges one."""
    if has_boxes:
        return False, None
    answer = strip_reasoning(text).strip()
    if not answer:
        return False, "empty output"
    refusal = is_refusal(answer)
    return refusal, _NO_BOX if expect_boxes and not refusal else None


class ReleasedBoxes:
    """MedRegA's released prediction parser as a box format (see the module docstring)."""

    name = NAME

    def extract(self, text: str, sample: Sample | None) -> Extraction:
        return Extraction(objects=_regions(text), text=_without_lists(text), format=self.name)

    def write(self, box: Sequence[float], sample: Sample | None = None) -> str:
        return "[[" + ", ".join(str(round(v * SCALE)) for v in box) + "]]"

    def read(self, output: str | None, *, expect_boxes: bool = False) -> Parsed:
        """One output read whole, as the released evaluator read it (``None``: the model returned an error)."""
        if output is None:
            return Parsed(ok=False, error="no output (model error)")
        raw = encodable(output)
        regions = _regions(raw)
        refusal, error = _verdict(raw, bool(regions), expect_boxes)
        return Parsed(
            ok=error is None,
            raw=raw,
            text=_without_lists(strip_reasoning(raw)),
            objects=regions,
            box_format=self.name,
            refusal=refusal,
            error=error,
        )

    def read_batch(self, outputs: Sequence[str | None], *, expect_boxes: bool = False) -> ParsedColumns:
        """:meth:`read` of every output, straight into columns."""
        from regbench import accel  # the one switch for all compiled kernels

        texts, joined = _as_raw(outputs)
        if accel.enabled(len(texts)):
            boxes, counts, names, name_ids, vocabulary = _scan_compiled(texts, joined)
        else:
            (boxes, counts, names), name_ids, vocabulary = _scan_regex(texts), None, None
        ok = counts > 0
        for k in np.flatnonzero(~ok).tolist():
            ok[k] = outputs[k] is not None and _verdict(texts[k], False, expect_boxes)[1] is None
        read_one = functools.partial(self.read, expect_boxes=expect_boxes)
        return ParsedColumns(boxes, counts, names, ok, outputs, read_one, name_ids, vocabulary)


def _as_raw(outputs: Sequence[str | None]) -> tuple[Sequence[str], str]:
    """The outputs as ``Parsed.raw`` holds them (``""`` for none, lone surrogates, which UTF-8 cannot
    encode, as ``?``), and joined."""
    try:
        texts: Sequence[str] = outputs  # type: ignore[assignment]
        joined = "".join(texts)
    except TypeError:  # a None: the model returned an error
        texts = [output or "" for output in outputs]
        joined = "".join(texts)
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            texts = list(map(encodable, texts))
            joined = "".join(texts)
    return texts, joined


def _from_lists(found: list[tuple[list[list[float]], list[str]]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-output (boxes, names) as flat columns."""
    counts = np.fromiter((len(boxes) for boxes, _ in found), dtype=np.intp, count=len(found))
    numbers = chain.from_iterable(chain.from_iterable(boxes for boxes, _ in found))
    flat = np.fromiter(numbers, dtype=np.float64, count=4 * int(counts.sum()))
    return flat.reshape(-1, 4), counts, [name for _, names in found for name in names]


def _scan_regex(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One regex pass per output finds the groups; the numbers of all groups are then read in one call.

    Numbers that are not plain ASCII digits (``\\d`` also matches other scripts' digits) or too
    large for a float to hold exactly send the whole batch through :func:`released_boxes`.
    """
    groups = [released_groups(text) for text in texts]
    flat = list(chain.from_iterable(groups))
    names = [name.lower() for name, _ in flat]
    lists = [box_list for _, box_list in flat]
    per_group = np.fromiter(map(str.count, lists, repeat("[")), dtype=np.intp, count=len(lists)) - 1
    joined = " ".join(lists)
    numbers = None
    if joined.isascii():
        numbers = np.fromstring(joined.translate(_NUMBER_SEPARATORS), dtype=np.float64, sep=" ")
    if numbers is None or len(numbers) != 4 * per_group.sum() or (len(numbers) and numbers.max() >= _EXACT):
        return _from_lists([released_boxes(text) for text in texts])
    group_output = np.repeat(np.arange(len(texts)), np.fromiter(map(len, groups), dtype=np.intp, count=len(texts)))
    counts = np.bincount(group_output, weights=per_group, minlength=len(texts)).astype(np.intp)
    box_names = list(chain.from_iterable(map(repeat, names, per_group.tolist())))
    return (numbers / SCALE).reshape(-1, 4), counts, box_names


def _scan_compiled(
    texts: Sequence[str], joined: str
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray | None, list[str] | None]:
    """:func:`_scan_regex` by the compiled scanner over all outputs' bytes; the outputs it cannot decide
    alone (non-ASCII characters inside a box list, huge numbers) go through :func:`released_boxes`."""
    from regbench.parsing import _released_kernels as kernels

    ascii_only = joined.isascii()
    buf = np.frombuffer(joined.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    if not ascii_only:
        ends = kernels.byte_ends(buf, ends)
    boxes, counts, per_group, spans, char_spans, unsure = kernels.released_scan(buf, ends, ascii_only)
    ids, firsts = kernels.distinct_spans(buf, spans)
    starts, stops = char_spans[:, firsts].tolist()
    vocabulary = [joined[a:b].lower() for a, b in zip(starts, stops, strict=True)]
    box_ids = np.repeat(ids, per_group)
    names = _lookup(vocabulary, box_ids)
    if not unsure.any():
        return boxes, counts.astype(np.intp), names, box_ids.astype(np.intp), vocabulary
    firsts_of = (np.cumsum(counts) - counts).tolist()
    box_parts: list[np.ndarray] = []
    name_parts: list[str] = []
    done = 0
    for k in np.flatnonzero(unsure).tolist():
        found, found_names = released_boxes(texts[k])
        box_parts += [boxes[done : firsts_of[k]], np.array(found, dtype=np.float64).reshape(-1, 4)]
        name_parts += names[done : firsts_of[k]] + found_names
        counts[k] = len(found)
        done = firsts_of[k]
    return np.concatenate([*box_parts, boxes[done:]]), counts.astype(np.intp), name_parts + names[done:], None, None


def _lookup(vocabulary: list[str], ids: np.ndarray) -> list[str]:
    """``[vocabulary[i] for i in ids]``, by one take on an object array."""
    table = np.empty(len(vocabulary), dtype=object)
    table[:] = vocabulary
    return table[ids].tolist()  # type: ignore[no-any-return]


BOX_FORMATS.add(NAME, ReleasedBoxes())
