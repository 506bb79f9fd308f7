"""MedRegA / InternVL chat JSONL: ``{id, image, width?, height?, conversations: [{from, value}]}``.

The first human turn is the question (``<image>`` placeholders removed), the gpt turn after it the
answer; ``<ref>NAME</ref><box>[[x1, y1, x2, y2], …]</box>`` spans in the answer become objects with
coordinates on MedRegA's 0–999 grid divided by 999.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    as_size,
    checked_region,
    checked_sample,
    option_path,
    reason,
    scaled_box,
    text,
)
from regbench.types import Region, Sample

GRID = 999
"""MedRegA writes coordinates as integers on a 0–999 grid (the ``medrega`` box format)."""

_IMAGE_TAG = re.compile(r"<image>\n?")
# A <ref> immediately before a <box> names it; the tempered name stops a name from spanning refs.
# One integer box (the common case) is captured as four numbers, anything else as raw content.
_REF_BOX = re.compile(
    r"(?:<ref>((?:(?!</?ref>).)*)</ref>\s*)?<box>"
    r"(?:\[\[(\d{1,3}), ?(\d{1,3}), ?(\d{1,3}), ?(\d{1,3})\]\]|(.*?))</box>",
    re.S,
)
_BOX_OR_REF = re.compile(r"<box>.*?</box>|</?ref>", re.S)  # what the answer text drops
_CJK = re.compile(r"[\u4e00-\u9fff]")
_KNOWN = frozenset({"id", "image", "width", "height", "conversations"})
_NUMBER = (int, float)
_DECODE = json.JSONDecoder().raw_decode  # json.loads minus two Python layers; callers check the end


def _json(value: str) -> Any:
    """``json.loads`` for one value with optional surrounding whitespace."""
    value = value.strip()
    result, end = _DECODE(value)
    if end != len(value):
        raise json.JSONDecodeError("Extra data", value, end)
    return result


class MedRegAChat(Reader):
    """Reads MedRegA's chat JSONL files (``<root>/<split>.jsonl`` or ``options.annotation``).

    Splits are the ``*.jsonl`` file stems under the root; with ``annotation`` the split is optional.
    """

    name: ClassVar[str] = "medrega_chat"
    splits: ClassVar[tuple[str, ...]] = ()

    class Options(ReaderOptions):
        annotation: str | None = None
        """The JSONL file, relative to the root (default ``<root>/<split>.jsonl``)."""
        image_root: str | None = None
        """Directory the records' images are relative to, relative to the root (default: the root)."""
        language: str | None = Field(None, min_length=1)
        """Every sample's language; default ``zh`` when the question has a CJK ideograph, else ``en``."""

    def available_splits(self, root: Path, options: Any) -> tuple[str, ...]:
        return tuple(sorted(p.stem for p in root.glob("*.jsonl")))

    def resolve_split(self, split: str | None, root: Path, options: Any) -> str:
        if options.annotation is not None:
            # The annotation file is the data; the split only labels it.
            return split if split is not None else Path(options.annotation).stem
        return super().resolve_split(split, root, options)

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        if options.annotation is not None:
            path = option_path(root, options.annotation)
            if not path.is_file():
                raise ReaderError("dataset.options.annotation", f"file not found: {path}")
        else:
            path = root / f"{split}.jsonl"
        image_dir = str(option_path(root, options.image_root)) if options.image_root else str(root)
        files = Files()
        with path.open(encoding="utf-8-sig") as lines:  # tolerate a byte-order mark
            for number, line in enumerate(lines, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record, end = _DECODE(line)
                    if end != len(line):
                        raise json.JSONDecodeError("Extra data", line, end)
                    if not isinstance(record, dict):
                        raise Malformed(f"expected a JSON object, got {type(record).__name__}")
                    sample_id = text(record.get("id"), "id")
                    if not ctx.wanted(sample_id):
                        continue
                    sample = _sample(sample_id, record, image_dir, files, options.language)
                except json.JSONDecodeError as exc:
                    ctx.skips.add(path, number, f"not valid JSON ({exc.msg})")
                    continue
                except (Malformed, ValidationError) as exc:
                    ctx.skips.add(path, number, reason(exc))
                    continue
                if ctx.claim(sample_id, path, number, "line"):
                    yield sample


def _sample(sample_id: str, record: dict[str, Any], image_dir: str, files: Files, language: str | None) -> Sample:
    human, gpt, rest = _turns(record.get("conversations"))
    question = text(_IMAGE_TAG.sub("", human), "question")
    answer_objects = _objects(gpt)
    answer = _BOX_OR_REF.sub("", gpt).strip()
    if answer_objects:
        objects = answer_objects
    else:
        # Region identification: the question points at boxes and the answer names them.
        boxes = [box for region in _objects(human) for box in region.boxes]
        objects = [checked_region(answer, boxes)] if boxes else []
    meta = {k: v for k, v in record.items() if k not in _KNOWN}
    if rest:
        meta["conversations"] = rest
    # Every value below is already of its field's type (boxes of 4 floats, sizes ints): validating
    # them again was a quarter of the time of an export (docs/benchmarks.md).
    return checked_sample(
        id=sample_id,
        image=_images(record.get("image"), image_dir, files),
        question=question,
        answer=answer,
        objects=objects,
        language=language or ("zh" if _CJK.search(human) else "en"),
        width=_size(record, "width"),
        height=_size(record, "height"),
        meta=meta,
    )


def _turns(conversations: Any) -> tuple[str, str, list[Any]]:
    """The first human value, the gpt value after it, and the turns after that."""
    if not isinstance(conversations, list):
        raise Malformed("no conversations list")
    human = gpt = None
    rest: list[Any] = []
    for i, turn in enumerate(conversations):
        if not isinstance(turn, dict):
            continue
        if human is None and turn.get("from") == "human":
            human = turn.get("value")
        elif human is not None and turn.get("from") == "gpt":
            gpt = turn.get("value")
            rest = conversations[i + 1 :]
            break
    if human is None or gpt is None:
        raise Malformed("no human turn followed by a gpt turn")
    if not isinstance(human, str) or not isinstance(gpt, str):
        raise Malformed("a conversation value is not a string")
    if not gpt.strip():
        raise Malformed("empty answer")
    return human, gpt, rest


def _objects(value: str) -> list[Region]:
    """One region per ``<box>`` in ``value``, named by the ``<ref>`` right before it (else "")."""
    if "<box>" not in value:  # most questions: no need to run the regex
        return []
    regions = []
    for name, x1, y1, x2, y2, content in _REF_BOX.findall(value):
        if content == "" and x1:  # one integer box: check it here rather than through JSON
            a, b, c, d = int(x1), int(y1), int(x2), int(y2)
            if a <= c <= GRID and b <= d <= GRID:
                regions.append(checked_region(name.strip(), [[a / GRID, b / GRID, c / GRID, d / GRID]]))
                continue
            content = f"[[{x1}, {y1}, {x2}, {y2}]]"  # let _boxes say what is wrong with it
        regions.append(checked_region(name.strip(), _boxes(content)))
    return regions


def _boxes(content: str) -> list[list[float]]:
    try:
        boxes = _json(content)
    except json.JSONDecodeError:
        raise Malformed(f"<box> content {content!r:.60} is not a JSON list of boxes") from None
    if not isinstance(boxes, list) or not boxes:
        raise Malformed(f"<box> content {content!r:.60} is not a list of [x1, y1, x2, y2] lists")
    out = []
    for box in boxes:
        if not (isinstance(box, list) and len(box) == 4):
            raise Malformed(f"<box> content {content!r:.60} is not a list of [x1, y1, x2, y2] lists")
        x1, y1, x2, y2 = box
        # type() rather than isinstance(): bool is an int subclass and is no coordinate.
        if not (type(x1) in _NUMBER and type(y1) in _NUMBER and type(x2) in _NUMBER and type(y2) in _NUMBER):
            raise Malformed(f"<box> content {content!r:.60} is not a list of [x1, y1, x2, y2] lists")
        if 0 <= x1 <= x2 <= GRID and 0 <= y1 <= y2 <= GRID:  # the common case, checked inline
            out.append([x1 / GRID, y1 / GRID, x2 / GRID, y2 / GRID])
        else:
            out.append(scaled_box(box, (GRID, GRID), "the 0–999 grid"))  # raises with the reason
    return out


def _images(value: Any, image_dir: str, files: Files) -> list[str]:
    if value is None:
        return []
    names = [value] if type(value) is str else value
    if not isinstance(names, list):
        raise Malformed(f"image: expected a path or a list of paths, got {value!r:.80}")
    paths = []
    for name in names:
        if type(name) is not str or not name:
            raise Malformed(f"image: expected a path or a list of paths, got {value!r:.80}")
        found = files.find(image_dir, name)
        if found is None:
            raise Malformed(f"image not found: {os.path.join(image_dir, name)}")
        paths.append(found)
    return paths


def _size(record: dict[str, Any], key: str) -> int | None:
    value = record.get(key)
    return None if value is None else as_size(value, key)
