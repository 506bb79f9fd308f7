"""Whether a task's data is on this machine and how many samples its split holds (``regbench list tasks``).

The data is *present* when the task's canonical JSONL (``dataset.path``) is a file or its
reader's ``dataset.root`` is a directory (``~`` expanded, relative paths against the task
YAML). Only then is the split counted, by loading it as a run would (skip warnings are kept
off the terminal and counted instead). Loading never raises here: an unreadable dataset gives
its error's first line (in place of "yes"), so one broken dataset cannot stop a listing.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from regbench.collector import gc_paused
from regbench.data.base import load_split
from regbench.errors import RegbenchError
from regbench.spec import DatasetSpec, TaskSpec

ERROR_CHARS = 120
"""Longest error shown in place of a sample count."""


@dataclass(frozen=True)
class DataStatus:
    """What ``regbench list tasks`` says about one task's data."""

    present: bool
    """The JSONL file or the reader's root directory exists."""
    size: int | None = None
    """Samples in the split (present and readable data only)."""
    skipped: int = 0
    """Malformed records the reader skipped while counting."""
    error: str | None = None
    """Why present data could not be read (its first line; a long one keeps its start and its end)."""

    def size_text(self) -> str:
        """``1,061``, ``1,059 (2 skipped)``, or ``-`` (no data, not counted, or unreadable)."""
        if self.size is None:
            return "-"
        return f"{self.size:,}" + (f" ({self.skipped:,} skipped)" if self.skipped else "")

    def data_text(self) -> str:
        """``yes`` (here and readable, or not counted), ``no``, or what is wrong (``error: ...``): data that
        is here but does not load must not read as ready."""
        if not self.present:
            return "no"
        return self.error if self.error is not None else "yes"


def dataset_label(dataset: DatasetSpec) -> str:
    """The loader and the split, e.g. ``slake:test`` (``jsonl`` alone: its file is the split)."""
    return f"{dataset.loader}:{dataset.split}" if dataset.split else dataset.loader


def data_location(task: TaskSpec) -> Path | None:
    """Where the task's data should be: the JSONL file (``dataset.path``) or the reader's root."""
    given = task.dataset.root if task.dataset.root else task.dataset.path
    if not given:
        return None
    base = task.source.parent if task.source else Path.cwd()
    return (base / Path(given).expanduser()).resolve()


def data_status(task: TaskSpec, *, seen: dict[str, DataStatus] | None = None, count: bool = True) -> DataStatus:
    """Whether the task's data is here and, if so (and ``count``), its split size or the short error reading it.

    ``seen`` remembers counts by dataset (loader, location, split, options) across calls, so tasks
    that share a split (several metric setups of one dataset) load it once.
    """
    location = data_location(task)
    if location is None:
        return DataStatus(present=False)
    present = location.is_dir() if task.dataset.root else location.is_file()
    if not present or not count:
        return DataStatus(present=present)
    key = _dataset_key(task, location)
    if seen is not None and key in seen:
        return seen[key]
    status = _count(task)
    if seen is not None:
        seen[key] = status
    return status


def _dataset_key(task: TaskSpec, location: Path) -> str:
    dataset = task.dataset
    options = json.dumps(dataset.options, sort_keys=True, default=str)
    # option paths such as `ids` are relative to the task YAML: its directory is part of the dataset
    base = str(task.source.parent) if task.source and "ids" in dataset.options else ""
    return "\0".join((dataset.loader, str(location), dataset.split or "", options, base))


def _count(task: TaskSpec) -> DataStatus:
    warnings = io.StringIO()
    try:
        with contextlib.redirect_stderr(warnings), gc_paused():
            loaded = load_split(task)
    except Exception as exc:  # any failure is shown in the listing, never raised
        return DataStatus(present=True, error=_short(exc))
    return DataStatus(present=True, size=len(loaded.samples), skipped=loaded.n_skipped)


def _short(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if not isinstance(exc, RegbenchError):  # an unexpected failure: say what kind it is
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = f"error: {text}"
    if len(text) <= ERROR_CHARS:
        return text
    head = ERROR_CHARS // 2  # the field and the start, and the end of the message, around a long path
    return text[:head] + "…" + text[len(text) - (ERROR_CHARS - head - 1) :]
