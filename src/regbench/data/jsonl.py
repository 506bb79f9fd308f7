"""The canonical dataset JSONL (docs/formats.md): one sample per line, images relative to the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from regbench.data.base import Loader, register_loader
from regbench.errors import DataError
from regbench.spec import DatasetSpec
from regbench.types import Sample

_KNOWN = set(Sample.model_fields) - {"meta"}


class JsonlOptions(BaseModel):
    """The canonical JSONL has no options (a ``dataset.options`` key is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@register_loader("jsonl")
class JsonlLoader(Loader):
    """The canonical JSONL named by ``dataset.path`` (relative to the task YAML)."""

    Options = JsonlOptions

    def __init__(self, options: BaseModel | None = None) -> None:
        super().__init__(options)
        self._lines: list[int] = []
        self._path: Path | None = None

    def location(self, number: int) -> str | None:
        if self._path is None or not 0 < number <= len(self._lines):
            return None
        return f"{self._path}:{self._lines[number - 1]}"

    def load(self, spec: DatasetSpec, *, base: Path) -> Iterator[Sample]:
        if spec.path is None:
            raise DataError("dataset.path is required for the jsonl loader")
        path = (base / spec.path).resolve()
        if not path.is_file():
            raise DataError(f"dataset file not found: {path} (dataset.path: {spec.path!r}, relative to {base})")
        self._path, self._lines = path, []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                self._lines.append(number)
                yield sample_from_record(_parse_line(line, path, number), path=path, line=number)


def _parse_line(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{number}: expected a JSON object per line")
    return record


def sample_from_record(record: dict[str, Any], *, path: Path, line: int) -> Sample:
    """A Sample from one canonical record: unknown fields go to ``meta``, images become absolute."""
    known = {k: v for k, v in record.items() if k in _KNOWN}
    meta = {k: v for k, v in record.items() if k not in _KNOWN and k != "meta"}
    extra = record.get("meta") or {}
    if not isinstance(extra, dict):
        raise DataError(f"{path}:{line}: field meta: expected a JSON object, got {type(extra).__name__}")
    meta.update(extra)
    images = known.get("image")
    if images is None:  # absent or null: no image
        images = []
    elif isinstance(images, str):
        images = [images]
    if not (isinstance(images, list) and all(isinstance(image, str) for image in images)):
        raise DataError(f"{path}:{line}: field image: expected a path or a list of paths, got {images!r:.80}")
    known["image"] = [str((path.parent / image).resolve()) for image in images]
    try:
        return Sample(**known, meta=meta)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{path}:{line}: field {field}: {first['msg']}") from None
