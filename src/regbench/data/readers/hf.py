"""Hugging Face datasets already on disk, read offline with pyarrow (no ``datasets``, no hub).

Three layouts are found under the root, the first that is present wins:

1. ``save_to_disk`` output: ``<split>/data-*.arrow``;
2. parquet: ``<split>-*.parquet`` / ``<split>.parquet`` anywhere below the root (hub snapshots keep them
   in ``data/``), or numbered shards inside a ``<split>/`` folder (``<split>/0000.parquet``);
3. ``datasets`` cache files: ``*-<split>.arrow`` or ``*-<split>-NNNNN-of-NNNNN.arrow``.

``options.columns`` says which column holds which Sample field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regbench.data.readers.common import (
    Context,
    Files,
    ImageCache,
    Malformed,
    Reader,
    ReaderError,
    ReaderOptions,
    answer_type,
    reason,
    text,
)
from regbench.data.readers.tables import image_file, is_binary, iter_rows, schema
from regbench.types import Sample

_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


class Columns(BaseModel):
    """Sample field -> column name; an unmapped field keeps its default (or the constant option)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    image: str | None = None
    question: str | None = None
    answer: str | None = None
    answer_type: str | None = None
    language: str | None = None
    labels: str | None = None
    options: str | None = None


class Hf(Reader):
    """Reads a Hugging Face dataset saved on disk; the splits are the ones its files name."""

    name: ClassVar[str] = "hf"
    splits: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[dict[str, str]] = {"pyarrow": "pyarrow"}

    class Options(ReaderOptions):
        columns: Columns
        """Which column holds each Sample field: ``{question: question, answer: answer, image: image}``."""
        language: str = Field("en", min_length=1)
        """Every sample's language when ``columns.language`` is unmapped."""
        answer_type: Literal["open", "closed"] | None = None
        """Every sample's answer type when ``columns.answer_type`` is unmapped."""

    def available_splits(self, root: Path, options: Any) -> tuple[str, ...]:
        return tuple(sorted(discover(root)))

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        paths = discover(root)[split]
        mapped = {f: c for f, c in options.columns.model_dump().items() if c is not None}
        files, cache = Files(), ImageCache(reader=self.name)
        index = 0  # over all the split's files: `<split>-<i>` ids, skipped rows included
        for path in paths:
            fields = schema(path)
            for field, column in mapped.items():
                if column not in fields.names:
                    raise ReaderError(
                        f"dataset.options.columns.{field}", f"no column {column!r} in {path} (columns: {fields.names})"
                    )
            meta_columns = [f.name for f in fields if f.name not in mapped.values() and not is_binary(f.type)]
            for number, row in enumerate(iter_rows(path), start=1):
                position, index = index, index + 1
                try:
                    sample_id = text(row[mapped["id"]], "id") if "id" in mapped else f"{split}-{position}"
                except Malformed as exc:
                    ctx.skips.add(path, number, str(exc), unit="row")
                    continue
                if not ctx.wanted(sample_id):
                    continue
                try:
                    sample = _sample(sample_id, row, mapped, meta_columns, options, str(root), files, cache)
                except (Malformed, ValidationError) as exc:
                    ctx.skips.add(path, number, reason(exc), unit="row")
                    continue
                if ctx.claim(sample_id, path, number, "row"):
                    yield sample


def _sample(
    sample_id: str,
    row: dict[str, Any],
    mapped: dict[str, str],
    meta_columns: list[str],
    options: Any,
    root: str,
    files: Files,
    cache: ImageCache,
) -> Sample:
    fields: dict[str, Any] = {"id": sample_id, "language": options.language, "answer_type": options.answer_type}
    for field in ("question", "answer", "language"):
        if field in mapped:
            fields[field] = text(row[mapped[field]], field)
    if "answer_type" in mapped:
        fields["answer_type"] = answer_type(row[mapped["answer_type"]])
    if "image" in mapped:
        cell = row[mapped["image"]]
        if cell is None:
            raise Malformed("no image")
        fields["image"] = [image_file(cell, root, files, cache)]
    for field in ("labels", "options"):
        if field in mapped:
            fields[field] = _strings(row[mapped[field]], field)
    return Sample(**fields, meta={c: row[c] for c in meta_columns})


def _strings(value: Any, field: str) -> list[str]:
    """A list column as strings; a single string is a one-item list."""
    if value is None:
        raise Malformed(f"no {field}")
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    raise Malformed(f"{field}: expected a list or a string, got {value!r:.60}")


def discover(root: Path) -> dict[str, list[Path]]:
    """Split -> its data files in name order, from the first layout present under ``root``."""
    saved = {d.name: sorted(d.glob("data-*.arrow")) for d in sorted(root.iterdir()) if d.is_dir()}
    saved = {split: paths for split, paths in saved.items() if paths}
    if saved:
        return saved
    parquet: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.parquet")):
        stem = path.stem
        first = stem.split("-")[0]
        # Numbered shards (`0000`) or `data-*` files name no split: their folder does.
        split = path.parent.name if stem.isdigit() or first in ("data", "") else first
        parquet.setdefault(split, []).append(path)
    if parquet:
        return parquet
    cached: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.arrow")):
        # `<builder>-<split>[-NNNNN-of-NNNNN].arrow`; cache-*.arrow files hold map() results, not splits.
        builder, _, split = _SHARD.sub("", path.stem).rpartition("-")
        if builder and split and not path.name.startswith("cache-"):
            cached.setdefault(split, []).append(path)
    return cached
