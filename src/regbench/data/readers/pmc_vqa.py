"""PMC-VQA (Hugging Face ``xmcmic/PMC-VQA``): multiple-choice questions in ``<split>.csv`` files, figures
from ``images.zip`` extracted to ``images/``."""

from __future__ import annotations

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
    option_path,
    read_csv,
    reason,
    text,
)
from regbench.types import Sample

CHOICES = ("Choice A", "Choice B", "Choice C", "Choice D")
_CHOICE_PREFIX = re.compile(r"^\s*[A-D]\s*:\s*")
# Columns that become Sample fields; "" is the pandas index column some files carry (dropped).
_USED = frozenset({"Figure_path", "Question", "Answer", "Anwser", "", *CHOICES})


class PmcVqa(Reader):
    """Reads ``<root>/<split>.csv``: the split is the CSV stem (``train``, ``test``, ``test_clean``, ...)."""

    name: ClassVar[str] = "pmc_vqa"
    splits: ClassVar[tuple[str, ...]] = ()

    class Options(ReaderOptions):
        image_dir: str = Field("images", min_length=1)
        """The figures' directory, relative to the root (v2's ``train_2``/``test_2``: ``images_2``)."""

    def available_splits(self, root: Path, options: Any) -> tuple[str, ...]:
        return tuple(sorted(p.stem for p in root.glob("*.csv")))

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        path = root / f"{split}.csv"
        header, rows = read_csv(path, ("Figure_path", "Question", *CHOICES, "Answer_label"))
        answer_column = "Answer" if "Answer" in header else "Anwser"  # older files misspell it
        if answer_column not in header:
            raise ReaderError("dataset.root", f"{path}: no column 'Answer' (or 'Anwser') (columns: {header})")
        image_dir = str(option_path(root, options.image_dir))
        files = Files()
        for number, row in rows:
            sample_id = f"{split}-{number - 1}"
            if not ctx.wanted(sample_id):
                continue
            try:
                sample = _sample(sample_id, row, answer_column, image_dir, files)
            except (Malformed, ValidationError) as exc:
                ctx.skips.add(path, number, reason(exc), unit="row")
                continue
            if ctx.claim(sample_id, path, number, "row"):
                yield sample


def _sample(sample_id: str, row: dict[str, str], answer_column: str, image_dir: str, files: Files) -> Sample:
    label = row["Answer_label"].strip()
    if label not in ("A", "B", "C", "D"):
        raise Malformed(f"Answer_label {row['Answer_label']!r} is not one of A, B, C, D")
    figure = text(row["Figure_path"], "Figure_path")
    image = files.find(image_dir, figure)
    if image is None:
        raise Malformed(f"image not found: {image_dir}/{figure}")
    return Sample(
        id=sample_id,
        image=[image],
        question=text(row["Question"], "Question"),
        answer=text(row[answer_column], answer_column),
        answer_type="closed",
        language="en",
        options=[text(_CHOICE_PREFIX.sub("", row[c]), c) for c in CHOICES],
        meta={k: v for k, v in row.items() if k not in _USED},
    )
