"""PathVQA as published on Hugging Face (``flaviagiammarino/path-vqa``): parquet shards
``data/<split>-NNNNN-of-NNNNN-<hash>.parquet`` with ``image`` ({bytes, path}), ``question``, ``answer``.

The original release's pickles are not read (their layout is unverified).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    ImageCache,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    reason,
    text,
)
from regbench.data.readers.tables import image_file, is_binary, iter_rows, schema
from regbench.types import Sample

_USED = frozenset({"image", "question", "answer"})


class PathVqa(Reader):
    """Reads PathVQA's parquet shards in name order; splits train, validation, test."""

    name: ClassVar[str] = "path_vqa"
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    aliases: ClassVar[dict[str, str]] = {"val": "validation", "validate": "validation"}
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions
    requires: ClassVar[dict[str, str]] = {"pyarrow": "pyarrow"}

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        shards = sorted((root / "data").glob(f"{split}-*.parquet"))
        if not shards:
            raise ReaderError("dataset.root", f"no {split}-*.parquet under {root / 'data'}")
        files, cache = Files(), ImageCache(reader=self.name)
        index = 0  # the row's position over all the split's shards: the id, skipped rows included
        for shard in shards:
            fields = schema(shard)
            missing = [c for c in ("image", "question", "answer") if c not in fields.names]
            if missing:
                raise ReaderError("dataset.root", f"{shard}: no column {', '.join(missing)} (columns: {fields.names})")
            meta_columns = [f.name for f in fields if f.name not in _USED and not is_binary(f.type)]
            for number, row in enumerate(iter_rows(shard), start=1):
                sample_id = f"{split}-{index}"
                index += 1
                if not ctx.wanted(sample_id):
                    continue
                try:
                    sample = _sample(sample_id, row, meta_columns, str(root), files, cache)
                except (Malformed, ValidationError) as exc:
                    ctx.skips.add(shard, number, reason(exc), unit="row")
                    continue
                if ctx.claim(sample_id, shard, number, "row"):
                    yield sample


def _sample(
    sample_id: str, row: dict[str, Any], meta_columns: list[str], root: str, files: Files, cache: ImageCache
) -> Sample:
    answer = text(row["answer"], "answer")
    question = text(row["question"], "question")
    return Sample(
        id=sample_id,
        image=[image_file(row["image"], root, files, cache)],
        question=question,
        answer=answer,
        answer_type="closed" if answer.lower() in ("yes", "no") else "open",
        language="en",
        meta={c: row[c] for c in meta_columns},
    )
