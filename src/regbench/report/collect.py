"""Gather results.json files under a directory, tolerating old, partial and duplicate runs.

Every problem becomes a one-line ``notes`` entry instead of a crash: a file that is not JSON
or not a results file is skipped, a missing field gets its default, unknown fields are
ignored, a metric whose value is not a finite number (null, NaN, a string) is dropped so it
is neither ranked nor bolded, a shard of a sharded run is skipped (its merged run counts), and when one
model has several runs of one task the newest file wins (the others are named in the notes).

Then two rules say which runs may be ranked (:func:`screen`), for every report alike:

- A run whose failed samples (model requests that failed after the retries, ``n_errors``, plus
  outputs that could not be read, ``n_parse_failures``) are more than ``max_failure_rate`` of its
  samples (default 50%), or that has no samples, mostly measures its failures: it is set aside
  (``Collection.excluded``, with the reason) and shown and ranked nowhere.
- The runs of one task are ranked together only when they were scored on the same samples: the
  same sample ids (``sample_ids`` in results.json; read from samples.jsonl for older files) and,
  where both record one, the same data file (sha256). The task's reference set is the one most of
  its runs share (ties: the larger set). A run over another set (a ``--limit 5`` run beside full
  ones) is shown, marked ``comparable = False`` with why, and not ranked. A run whose ids are not
  recorded anywhere is taken as the reference set's when its sample count and data file match it
  (and says so).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from regbench.results import RESULTS_FILE, SAMPLES_FILE, Results, sample_ids_digest

DEFAULT_MAX_FAILURE_RATE = 0.5
"""Above this share of failed samples (request errors + parse failures) a run is not ranked."""


@dataclass
class Run:
    """One results.json, with where it was found."""

    results: Results
    path: Path
    dropped: dict[str, str] = field(default_factory=dict)
    """Metric key -> why its value in the file was not used (not a finite number)."""
    comparable: bool = True
    """Scored on the task's reference set of samples, so ranked with the task's other runs (:func:`screen`)."""
    note: str = ""
    """Why the run is not comparable (e.g. "scored on 5 samples (--limit 5), not the 120 samples the 3 ranked
    runs share"), or how its sample set was judged when its ids are not recorded."""
    counted: bool = True
    """Its results.json says how many samples it scored (``n_samples``; a very old file may not)."""

    @property
    def samples_path(self) -> Path:
        return self.path.parent / SAMPLES_FILE

    @property
    def label(self) -> str:
        return f"{self.results.model} · {self.results.task}"


@dataclass(frozen=True)
class Excluded:
    """A run set aside by the failure rule: shown and ranked nowhere, listed with why."""

    run: Run
    reason: str


@dataclass
class Collection:
    runs: list[Run] = field(default_factory=list)
    """The runs the reports show (those set aside are in ``excluded``)."""
    notes: list[str] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    """The failure rule's threshold the runs were screened with."""

    @property
    def ranked(self) -> list[Run]:
        """The runs that are ranked (comparable ones)."""
        return [run for run in self.runs if run.comparable]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shard_of(data: dict[str, Any]) -> str | None:
    """``"I/N"`` when the results are of one shard of a run (config.run.shard), else None."""
    config = data.get("config")
    run = config.get("run") if isinstance(config, dict) else None
    shard = run.get("shard") if isinstance(run, dict) else None
    return f"{shard[0]}/{shard[1]}" if isinstance(shard, list) and len(shard) == 2 else None


def collect(directory: Path, *, max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE) -> Collection:
    """Every usable results.json under ``directory``, one per (model, task), screened (:func:`screen`)."""
    found = Collection()
    if not directory.exists():
        found.notes.append(f"{directory} does not exist")
        return found
    chosen: dict[tuple[str, str], Run] = {}
    for path in sorted(directory.rglob(RESULTS_FILE)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            found.notes.append(f"skipped {path}: not valid JSON ({exc})")
            continue
        if not isinstance(data, dict) or not {"task", "model", "metrics"} <= data.keys():
            found.notes.append(f"skipped {path}: not a regbench results file (needs task, model, metrics)")
            continue
        shard = _shard_of(data)
        if shard:  # a part of a run: `regbench merge` makes the whole one
            found.notes.append(f"skipped {path}: shard {shard} of a sharded run (its merged results.json counts)")
            continue
        known = {k: v for k, v in data.items() if k in Results.model_fields}
        dropped: dict[str, str] = {}
        if isinstance(known["metrics"], dict):
            bad = sorted(k for k, v in known["metrics"].items() if not _finite(v))
            dropped = {k: f"{json.dumps(known['metrics'][k])[:40]} in results.json, not a finite number" for k in bad}
            if bad:
                # NaN sorts arbitrarily and would take a rank; null would reject the whole file
                found.notes.append(f"{path}: {', '.join(bad)} not a finite number; treated as not reported")
                known["metrics"] = {k: v for k, v in known["metrics"].items() if k not in bad}
        if isinstance(known.get("ci95"), dict):  # an interval with a NaN end is no interval
            known["ci95"] = {
                k: v
                for k, v in known["ci95"].items()
                if k in known["metrics"] and isinstance(v, list) and all(_finite(x) for x in v)
            }
        counted = "n_samples" in known
        known.setdefault("n_samples", 0)
        try:
            results = Results.model_validate(known)
        except ValidationError as exc:
            found.notes.append(f"skipped {path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
            continue
        if "schema_version" not in data:
            found.notes.append(f"{path}: written by an older regbench (no schema_version); missing fields defaulted")
        if not results.family:
            results.family = data.get("config", {}).get("task", {}).get("family", "") or "unknown"
        key = (results.model, results.task)
        run = Run(results, path, dropped, counted=counted)
        if key in chosen:
            older, newer = sorted((chosen[key], run), key=lambda r: r.path.stat().st_mtime)
            found.notes.append(
                f"{results.model} · {results.task}: two runs ({older.path} and {newer.path}); the newer one is used"
            )
            run = newer
        chosen[key] = run
    found.runs = sorted(chosen.values(), key=lambda r: (r.results.family, r.results.task, r.results.model))
    if not found.runs:
        found.notes.append(f"no results.json under {directory}")
    return screen(found, max_failure_rate)


def failure_reason(results: Results, max_failure_rate: float) -> str | None:
    """Why a run is set aside by the failure rule, or None when it is not."""
    if results.n_samples <= 0:
        return "no samples scored"
    failed = results.n_errors + results.n_parse_failures
    if failed / results.n_samples <= max_failure_rate:
        return None
    return (
        f"{failed} of {results.n_samples} samples failed ({results.n_errors} model requests failed, "
        f"{results.n_parse_failures} outputs could not be read): {failed / results.n_samples:.0%}, more than the "
        f"{max_failure_rate:.0%} a ranked run may have (--max-failure-rate)"
    )


@dataclass(frozen=True)
class SampleSet:
    """Which samples a run was scored on, as far as its files tell."""

    ids: str | None
    """The sample-id digest (results.json ``sample_ids``, or computed from samples.jsonl); None: unknown."""
    n: int
    data: str | None
    """sha256 of the task's data file (results.json ``config.data``); None: not file-based, or not recorded."""

    def same_data(self, other: SampleSet) -> bool:
        return self.data is None or other.data is None or self.data == other.data


def _ids_from_samples(path: Path, n: int) -> str | None:
    """The sample-id digest of a samples.jsonl holding ``n`` records, or None when it does not."""
    if not path.is_file():
        return None
    ids = []
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    record = json.loads(line)
                    ids.append(str(record["id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return sample_ids_digest(ids) if len(ids) == n else None


def sample_set(run: Run) -> SampleSet:
    res = run.results
    data = res.config.get("data") if isinstance(res.config.get("data"), dict) else {}
    digest = data.get("sha256") if isinstance(data.get("sha256"), str) else None
    return SampleSet(res.sample_ids or _ids_from_samples(run.samples_path, res.n_samples), res.n_samples, digest)


def _reference(sets: list[SampleSet]) -> SampleSet:
    """The set most runs share (ties: the larger, then the first in digest order); by ids where known."""
    known = [s for s in sets if s.ids is not None] or sets
    shared = Counter((s.ids, s.n, s.data) for s in known)
    (ids, n, data), _ = min(shared.items(), key=lambda kv: (-kv[1], -kv[0][1], str(kv[0][0]), str(kv[0][2])))
    return SampleSet(ids, n, data)


def _limit(results: Results) -> str:
    run = results.config.get("run")
    limit = run.get("limit") if isinstance(run, dict) else None
    return f" (--limit {limit})" if isinstance(limit, int) else ""


def _comparability(run: Run, mine: SampleSet, reference: SampleSet, ranked: int) -> tuple[bool, str]:
    """Whether a run was scored on the reference set, and the note that says why not (or how it was judged)."""
    others = f"the {ranked} ranked run{'s' if ranked != 1 else ''}"
    if not run.counted:
        return False, "its results.json records no n_samples, so which samples it was scored on is unknown"
    if not mine.same_data(reference):
        return False, f"scored against another data file than {others} (sha256 differs)"
    if mine.ids is not None and reference.ids is not None:
        if mine.ids == reference.ids:
            return True, ""
        if mine.n != reference.n:
            why = f"scored on {mine.n} samples{_limit(run.results)}, not the {reference.n} samples {others} share"
        else:
            why = f"scored on another set of {mine.n} samples than {others}"
        return False, why
    if mine.n != reference.n:
        return False, f"scored on {mine.n} samples{_limit(run.results)}, not the {reference.n} samples of {others}"
    if reference.ids is None:  # no run of the task records ids: said once for the task
        return True, ""
    return True, (
        "its sample ids are not recorded (no sample_ids in results.json, no samples.jsonl beside it): "
        f"taken as the same samples as {others} (same count and data file)"
    )


def screen(collection: Collection, max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE) -> Collection:
    """Apply the failure rule and the same-samples rule (module docstring) to the collection's runs."""
    collection.max_failure_rate = max_failure_rate
    kept = []
    for run in collection.runs:
        reason = failure_reason(run.results, max_failure_rate) if run.counted else None
        if reason is None:
            kept.append(run)
            continue
        collection.excluded.append(Excluded(run, reason))
        collection.notes.append(f"{run.label}: set aside, in no ranking, table or chart: {reason} ({run.path})")
    collection.runs = kept
    by_task: dict[str, list[Run]] = {}
    for run in kept:
        by_task.setdefault(run.results.task, []).append(run)
    for runs in by_task.values():
        sets = [sample_set(run) for run in runs]
        counted = [mine for run, mine in zip(runs, sets, strict=True) if run.counted]
        reference = _reference(counted or sets)
        verdicts = [_comparability(run, mine, reference, 0) for run, mine in zip(runs, sets, strict=True)]
        ranked = sum(ok for ok, _ in verdicts)
        for run, mine in zip(runs, sets, strict=True):
            run.comparable, run.note = _comparability(run, mine, reference, ranked)
            if run.note:
                collection.notes.append(f"{run.label}: {run.note}" + ("" if run.comparable else "; shown, not ranked"))
        if reference.ids is None:
            collection.notes.append(
                f"{runs[0].results.task}: no run records its sample ids (older results.json without samples.jsonl); "
                "runs with the same sample count and data file are taken as scored on the same samples"
            )
    return collection
