"""Gather results.json files under a directory, tolerating old, partial and duplicate runs.

Every problem becomes a one-line ``notes`` entry instead of a crash: a file that is not JSON
or not a results file is skipped, a missing field gets its default, unknown fields are
ignored, a metric whose value is not a finite number (null, NaN, a string) is dropped so it
is neither ranked nor bolded, a shard of a sharded run is skipped (its merged run counts), and when one
model has several runs of one task the newest file wins (the others are named in the notes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from regbench.results import RESULTS_FILE, SAMPLES_FILE, Results


@dataclass
class Run:
    """One results.json, with where it was found."""

    results: Results
    path: Path
    dropped: dict[str, str] = field(default_factory=dict)
    """Metric key -> why its value in the file was not used (not a finite number)."""

    @property
    def samples_path(self) -> Path:
        return self.path.parent / SAMPLES_FILE


@dataclass
class Collection:
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shard_of(data: dict[str, Any]) -> str | None:
    """``"I/N"`` when the results are of one shard of a run (config.run.shard), else None."""
    config = data.get("config")
    run = config.get("run") if isinstance(config, dict) else None
    shard = run.get("shard") if isinstance(run, dict) else None
    return f"{shard[0]}/{shard[1]}" if isinstance(shard, list) and len(shard) == 2 else None


def collect(directory: Path) -> Collection:
    """Every usable results.json under ``directory``, one per (model, task)."""
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
        run = Run(results, path, dropped)
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
    return found
