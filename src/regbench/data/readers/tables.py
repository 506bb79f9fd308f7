"""Rows of parquet and Arrow files, read with pyarrow (imported here only, so the other readers never
load it), and the Hugging Face ``{bytes, path}`` image cell."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regbench.data.readers.common import Files, ImageCache, Malformed, ReaderError

BATCH_ROWS = 1024
"""Rows converted to Python at a time: bounded memory for large splits with embedded images."""


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Each row of a parquet file or an Arrow IPC file (stream or random-access format) as a dict."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
                yield from batch.to_pylist()
            return
        with pa.memory_map(str(path)) as source:
            try:  # `datasets` writes the stream format; plain Arrow files are the file format
                reader: Any = ipc.open_stream(source)
                batches = iter(reader)
            except pa.ArrowInvalid:
                source.seek(0)
                reader = ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            for batch in batches:
                yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise ReaderError("dataset.root", f"{path}: not a readable parquet/Arrow file ({exc})") from None


def schema(path: Path) -> Any:
    """The ``pyarrow.Schema`` of a parquet or Arrow file, without reading its rows."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            return pq.read_schema(path)
        with pa.memory_map(str(path)) as source:
            try:
                return ipc.open_stream(source).schema
            except pa.ArrowInvalid:
                source.seek(0)
                return ipc.open_file(source).schema
    except (pa.ArrowException, OSError) as exc:
        raise ReaderError("dataset.root", f"{path}: not a readable parquet/Arrow file ({exc})") from None


def is_binary(arrow_type: Any) -> bool:
    """Whether a column holds bytes, directly or nested (an image struct, a list of images)."""
    import pyarrow.types as t

    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return True
    if t.is_struct(arrow_type):
        return any(is_binary(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return is_binary(arrow_type.value_type)
    return False


def image_file(cell: Any, root: str, files: Files, cache: ImageCache) -> str:
    """An image cell as an absolute path: ``{bytes, path}`` bytes go to the cache, else the path
    (relative to the root) must exist; a plain string is a path."""
    if isinstance(cell, dict):
        data, name = cell.get("bytes"), cell.get("path")
        if data:
            return cache.put_bytes(data, name)
        if not name:
            raise Malformed("image has neither bytes nor path")
    elif isinstance(cell, str) and cell:
        name = cell
    else:
        raise Malformed(f"image: expected {{bytes, path}} or a path, got {cell!r:.60}")
    found = files.find(root, name)
    if found is None:
        raise Malformed(f"image not found: {os.path.join(root, name)}")
    return found
