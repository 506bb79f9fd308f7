"""results.json and samples.jsonl: the documents a run leaves behind, and their readers.

``results.json`` (one per model and task) holds the aggregate scores with 95% bootstrap
intervals, a signature per metric key, the counts, and the fully resolved task and model
specs. It contains no timestamps, so a resumed run writes the same file as an
uninterrupted one; timings go to ``run.json`` beside it.

``samples.jsonl`` has one line per sample (a :class:`SampleRecord`): the rendered prompt,
the raw output(s), the parsed output, the reference, per-sample scores and the per-plugin
statistics from which the aggregates are computed (so shards merge and runs compare
exactly). Each line is ``json.dumps(record, ensure_ascii=False)`` of the record's fields in
their declared order, so a file read and written back is byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, TextIO, TypedDict

from pydantic import BaseModel, Field, ValidationError

from regbench.collector import gc_paused
from regbench.errors import DataError

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
RUN_INFO_FILE = "run.json"
SCHEMA_VERSION = 1


class Results(BaseModel):
    """The contents of results.json (docs/formats.md, "results.json")."""

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
    n_skipped: int = 0
    """Malformed records of the dataset its reader skipped (docs/datasets.md; with ``--limit``: among those read)."""
    sample_ids: str = ""
    """:func:`sample_ids_digest` of the scored samples' ids: two runs with the same value were scored on the
    same samples (reports rank only those together). Empty in files of an older regbench."""
    metrics: dict[str, float | int]
    """Metric key -> value, fractions in 0-1 (RadCliQ is unbounded and lower-is-better); a count
    (``judge_parse_failures``) is an integer."""
    ci95: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(default_factory=dict)
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


def sample_ids_digest(ids: Iterable[str]) -> str:
    """``sha256:`` and the hex digest of the sorted ids as a JSON list: the same set of ids, in any
    order, gives the same value (a list, not joined text, so no id can run into the next)."""
    text = json.dumps(sorted(ids), ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class Reference(TypedDict):
    """What a sample's ``reference`` holds in samples.jsonl."""

    answer: str
    objects: list[dict[str, Any]]
    """The reference regions (``name``, ``boxes`` and ``phrase`` when set), boxes in 0-1."""
    labels: list[str]
    image: list[str]


@dataclass(slots=True)
class SampleRecord:
    """One line of samples.jsonl: what one sample was asked, answered, parsed as and scored.

    The fields are the line's keys, in order. Nested values are kept as the JSON they are
    written as (not validated on reading), so ``samples.jsonl`` read and written back is
    byte-identical and a 100,000-line file reads at the speed of ``json.loads``.
    """

    id: str
    """The sample's id."""
    prompt: list[dict[str, Any]]
    """The messages of the last turn asked (``role``, ``content``, ``images``); ``[]`` when none was."""
    outputs: list[str]
    """The model's answer to each turn answered."""
    output: str | None
    """The answer scored (the last turn's), or ``None`` when the conversation ended in an error."""
    error: str | None
    """Why the conversation stopped (``turn N: ...``): the model call failed or a turn could not be rendered."""
    parsed: dict[str, Any]
    """The scored answer as parsed (:class:`regbench.types.Parsed` as JSON); an error is parsed as no output."""
    reference: Reference
    """The sample's reference answer, regions, labels and images."""
    scores: dict[str, Any]
    """Metric key -> this sample's value, for the keys that have one."""
    stats: dict[str, Any]
    """Plugin name -> this sample's statistics, from which the aggregates are computed."""
    index: int
    """The sample's position in the dataset (shards are merged back in this order)."""
    reading_errors: dict[str, str] | None = None
    """Box format -> why a plugin's own reading of the output failed (``Metric.reads``), where the task's
    parse did not fail; the key is written only when set, before ``index``."""
    judge: dict[str, Any] | None = None
    """Judged metric plugin -> ``{"raw": answer, "verdict": ..., "parse_error": ...}`` (and ``error`` when the
    judge could not be asked); written only for a task with judged metrics, after ``stats``."""

    @property
    def parse_failed(self) -> bool:
        """The output came back but could not be read as the task's metrics need: by the task's parse, or
        by a plugin's own reading (counted in ``n_parse_failures``)."""
        return self.error is None and (not self.parsed["ok"] or bool(self.reading_errors))

    def to_dict(self) -> dict[str, Any]:
        """The record as its samples.jsonl line holds it (keys in field order; values not copied)."""
        line = {
            "id": self.id,
            "prompt": self.prompt,
            "outputs": self.outputs,
            "output": self.output,
            "error": self.error,
            "parsed": self.parsed,
            "reference": self.reference,
            "scores": self.scores,
            "stats": self.stats,
        }
        if self.judge is not None:
            line["judge"] = self.judge
        if self.reading_errors:
            line["reading_errors"] = self.reading_errors
        line["index"] = self.index
        return line


_RECORD_KEYS = [f.name for f in fields(SampleRecord)]
_OPTIONAL_KEYS = {"reading_errors", "judge"}


def _record_problem(data: Any) -> str:
    """Why a JSON value is not a samples.jsonl record."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    problems = []
    if missing := [k for k in _RECORD_KEYS if k not in data and k not in _OPTIONAL_KEYS]:
        problems.append(f"missing {', '.join(missing)}")
    if unknown := [k for k in data if k not in _RECORD_KEYS]:
        problems.append(f"unknown {', '.join(unknown)}")
    return "; ".join(problems)


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[TextIO]:
    """A text file to write that replaces ``path`` when closed: a kill at any moment leaves the old or
    the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; the result is an ordinary output, so it gets what open() gives
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that a kill at any moment leaves the old or the new file, never half."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_results(directory: Path, results: Results) -> Path:
    path = directory / RESULTS_FILE
    atomic_write(path, json.dumps(results.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
    return path


# json.dumps(row, ensure_ascii=False) with one reused encoder; rows are trees (no cycles to look for),
# so the circular-reference check, a measurable part of encoding, is skipped
SAMPLE_LINE = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def write_json_lines(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write one ``json.dumps(row, ensure_ascii=False)`` per line, atomically (no rows: one empty line)."""
    lines = map(SAMPLE_LINE.encode, rows)
    with atomic_open(path) as handle:  # in chunks of lines, not all 100,000 in one string
        chunk = list(islice(lines, 1000))
        handle.write("\n".join(chunk) + "\n")
        while chunk := list(islice(lines, 1000)):
            handle.write("\n".join(chunk) + "\n")
    return path


def write_samples(directory: Path, records: Iterable[SampleRecord]) -> Path:
    """Write ``directory/samples.jsonl``, one line per record."""
    return write_json_lines(directory / SAMPLES_FILE, map(SampleRecord.to_dict, records))


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
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise DataError(f"{path}: not a regbench results.json ({field}: {first['msg']})") from None
    except ValueError as exc:
        raise DataError(f"{path}: not a regbench results.json ({str(exc).splitlines()[0]})") from None


def read_samples(path: Path) -> list[SampleRecord]:
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
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                try:
                    records.append(SampleRecord(**data))
                except TypeError:
                    raise DataError(f"{path}:{number}: not a samples.jsonl record ({_record_problem(data)})") from None
    return records
