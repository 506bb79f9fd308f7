"""VQA-RAD (OSF release): ``VQA_RAD Dataset Public.json``, one JSON array, and ``VQA_RAD Image Folder/``.

The release has no split files: a question whose ``phrase_type`` starts with ``test``
(``test_freeform``, ``test_para``) is in the test split, every other one in train.
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
    ReaderOptions,
    answer_type,
    json_array,
    read_json,
    reason,
    require_file,
    text,
)
from regbench.types import Sample

ANNOTATION = "VQA_RAD Dataset Public.json"
IMAGES = "VQA_RAD Image Folder"
_KNOWN = frozenset({"qid", "image_name", "question", "answer", "answer_type"})


class VqaRad(Reader):
    """Reads VQA-RAD's public JSON; splits ``test``, ``train`` (by ``phrase_type``) and ``all``."""

    name: ClassVar[str] = "vqa_rad"
    splits: ClassVar[tuple[str, ...]] = ("train", "test", "all")
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        path = require_file(root / ANNOTATION)
        image_dir = str(root / IMAGES)
        files = Files()
        for number, record in enumerate(json_array(read_json(path), path), start=1):
            if not isinstance(record, dict):
                ctx.skips.add(path, number, f"expected a JSON object, got {type(record).__name__}", unit="record")
                continue
            if split != "all" and str(record.get("phrase_type") or "").startswith("test") != (split == "test"):
                continue
            try:
                sample_id = text(record.get("qid"), "qid")
                if not ctx.wanted(sample_id):
                    continue
                sample = _sample(sample_id, record, image_dir, files)
            except (Malformed, ValidationError) as exc:
                ctx.skips.add(path, number, reason(exc), unit="record")
                continue
            if ctx.claim(sample_id, path, number, "record"):
                yield sample


def _sample(sample_id: str, record: dict[str, Any], image_dir: str, files: Files) -> Sample:
    name = text(record.get("image_name"), "image_name")
    image = files.find(image_dir, name)
    if image is None:
        raise Malformed(f"image not found: {image_dir}/{name}")
    return Sample(
        id=sample_id,
        image=[image],
        question=text(record.get("question"), "question"),
        answer=text(record.get("answer"), "answer"),
        answer_type=answer_type(record.get("answer_type")),
        language="en",
        meta={k: v for k, v in record.items() if k not in _KNOWN},
    )
