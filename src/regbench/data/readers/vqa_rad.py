"""VQA-RAD (OSF release): ``VQA_RAD Dataset Public.json``, one JSON array, and ``VQA_RAD Image Folder/``.

The release has no split files: a question whose ``phrase_type`` starts with ``test``
(``test_freeform``, ``test_para``) is in the test split, every other one in train.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderOptions,
    answer_type,
    qid_records,
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
        yield from qid_records(
            path,
            ctx,
            keep=lambda record: (
                split == "all" or str(record.get("phrase_type") or "").startswith("test") == (split == "test")
            ),
            build=lambda sample_id, record: _sample(sample_id, record, image_dir, files),
        )


def _is_test(record: dict[str, Any]) -> bool:
    """A test question: its ``phrase_type`` starts with ``test`` (``test_freeform``, ``test_para``)."""
    return str(record.get("phrase_type") or "").startswith("test")


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
