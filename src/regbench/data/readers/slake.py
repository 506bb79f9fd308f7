"""SLAKE 1.0 (the official zip or Hugging Face ``BoKelvin/SLAKE``): ``<split>.json`` arrays of
bilingual VQA records with images under ``imgs/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from regbench.data.readers.common import (
    Context,
    Files,
    Malformed,
    Reader,
    ReaderOptions,
    answer_type,
    first_file,
    qid_records,
    text,
)
from regbench.types import Sample

_KNOWN = frozenset({"qid", "img_name", "question", "answer", "answer_type", "q_lang"})


class Slake(Reader):
    """Reads ``Slake1.0/<split>.json``; ``validate`` is ``validate.json`` or HF's ``validation.json``."""

    name: ClassVar[str] = "slake"
    splits: ClassVar[tuple[str, ...]] = ("train", "validate", "test")
    aliases: ClassVar[dict[str, str]] = {"validation": "validate"}

    class Options(ReaderOptions):
        language: Literal["en", "zh", "all"] = "en"
        """Keep the English (``q_lang`` en), Chinese (zh) or all questions."""

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        names = ("validate.json", "validation.json") if split == "validate" else (f"{split}.json",)
        path = first_file([root / n for n in names])
        image_dir = str(root / "imgs")
        files = Files()
        yield from qid_records(
            path,
            ctx,
            keep=lambda record: options.language == "all" or record.get("q_lang") == options.language,
            build=lambda sample_id, record: _sample(sample_id, record, image_dir, files),
        )


def _sample(sample_id: str, record: dict[str, Any], image_dir: str, files: Files) -> Sample:
    name = text(record.get("img_name"), "img_name")
    image = files.find(image_dir, name)
    if image is None:
        raise Malformed(f"image not found: {image_dir}/{name}")
    return Sample(
        id=sample_id,
        image=[image],
        question=text(record.get("question"), "question"),
        answer=text(record.get("answer"), "answer"),
        answer_type=answer_type(record.get("answer_type")),
        language=text(record.get("q_lang"), "q_lang"),
        meta={k: v for k, v in record.items() if k not in _KNOWN},
    )
