"""results.json and samples.jsonl: the documents a run leaves behind, and their readers.

``results.json`` (one per model and task) holds the aggregate scores with 95% bootstrap
intervals, a signature per metric key, the counts, and the fully resolved task and model
specs. It contains no timestamps, so a resumed run writes the same file as an
uninterrupted one; timings go to ``run.json`` beside it.

``samples.jsonl`` has one line per sample: the rendered prompt, the raw output(s), the
parsed output, the reference, per-sample scores and the per-plugin statistics from which
the aggregates are computed (so shards merge and runs compare exactly).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, Field

from regbench.collector import gc_paused
from regbench.errors import DataError

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
RUN_INFO_FILE = "run.json"
SCHEMA_VERSION = 1


class Results(BaseModel):
    """The contents of results.json (DESIGN.md, "The contract other tools rely on")."""

    task: str
    """Task name (the task YAML's ``task:``)."""
    model: str
    """Model name (the model YAML's ``model:``, or the predictions' name for ``regbench score``)."""
    family: str = ""
    """Task family: vqa, report, classification, region_identification, detection, grounded_report."""
    language: str = "en"
    modality: str | None = None
    n_samples: int
    """Samples scored (every sample of the split, failures included)."""
    n_parse_failures: int = 0
    """Outputs that could not be parsed as the task needs (scored by the metric's failure rule)."""
    n_errors: int = 0
    """Samples whose model call failed after all retries (scored as empty outputs)."""
    metrics: dict[str, float]
    """Metric key -> value, fractions in 0-1 (RadCliQ is unbounded and lower-is-better)."""
    ci95: dict[str, list[float]] = Field(default_factory=dict)
    """Metric key -> [low, high], percentile bootstrap over samples."""
    higher_is_better: dict[str, bool] = Field(default_factory=dict)
    """Metric key -> direction, from the plugin's metadata."""
    signatures: dict[str, str] = Field(default_factory=dict)
    """Metric key -> ``name|option:value|...|regbench:VERSION``: everything that fixes the number."""
    plugins: dict[str, str] = Field(default_factory=dict)
    """Metric key -> the plugin that produced it."""
    bootstrap: dict[str, int] = Field(default_factory=dict)
    """``{"trials": ..., "seed": ...}`` of the intervals."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The fully resolved task and model specs (no secrets: API keys are read from env vars by name)."""
    regbench_version: str = ""
    schema_version: int = SCHEMA_VERSION


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[TextIO]:
    """A text file to write that replaces ``path`` when closed: a kill at any moment leaves the old or
    the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that a kill at any moment leaves the old or the new file, never half."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_results(directory: Path, results: Results) -> Path:
    path = directory / RESULTS_FILE
    atomic_write(path, json.dumps(results.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
    return path


# samples.jsonl lines are json.dumps(record, ensure_ascii=False); records are trees, so the encoder's
# circular-reference bookkeeping (an eighth of the encoding time) is left out
_SAMPLE_LINE = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def write_samples(directory: Path, records: Iterable[dict[str, Any]]) -> Path:
    path = directory / SAMPLES_FILE
    lines = map(_SAMPLE_LINE.encode, records)
    with atomic_open(path) as handle:  # in chunks of lines, not all 100,000 in one string
        chunk = list(islice(lines, 1000))
        handle.write("\n".join(chunk) + "\n")  # even when empty: no records is one empty line
        while chunk := list(islice(lines, 1000)):
            handle.write("\n".join(chunk) + "\n")
    return path


def write_run_info(directory: Path, info: dict[str, Any]) -> Path:
    path = directory / RUN_INFO_FILE
    atomic_write(path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return path


def run_directory(path: Path) -> Path:
    """The run directory of ``path``: the path itself, or the folder of a results.json / samples.jsonl."""
    return path.parent if path.is_file() and path.name in (RESULTS_FILE, SAMPLES_FILE) else path


def read_results(path: Path) -> Results:
    """Read a results.json (a directory holding one is accepted)."""
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"results file not found: {path}")
    try:
        return Results.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: not a regbench results.json ({str(exc).splitlines()[0]})") from None


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Read a samples.jsonl (a directory holding one is accepted)."""
    if path.is_dir():
        path = path / SAMPLES_FILE
    if not path.is_file():
        raise DataError(f"samples file not found: {path}")
    records = []
    with path.open(encoding="utf-8") as lines, gc_paused():  # records are long-lived and acyclic
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return records
