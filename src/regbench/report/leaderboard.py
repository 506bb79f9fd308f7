"""The leaderboard JSON (schema: leaderboard.schema.json, ``schema_version`` 1).

Per task: its metrics with direction, every model's values, intervals, sample counts,
parse-failure rate, signatures and regbench version, and a ranking per metric. Models whose
signatures for a metric differ were scored differently and are ranked in separate groups
(the largest group first), each group naming its signature.

Per task family, an overall rank: each model's mean rank over every (task, metric) it is
ranked in (in the first signature group; ties share the average rank), lower is better;
models ranked in fewer than half of the family's (task, metric) pairs are listed but unranked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.report.collect import Collection
from regbench.signature import Signature

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("leaderboard.schema.json")
OVERALL_RULE = (
    "mean rank over every (task, metric) pair of the family the model is ranked in (first signature group; "
    "ties share the average rank); lower is better; models ranked in fewer than half of the pairs are unranked"
)


def rank(values: dict[str, float], higher_is_better: bool) -> dict[str, float]:
    """Competition ranks with ties averaged (1 = best)."""
    ordered = sorted(values.items(), key=lambda kv: -kv[1] if higher_is_better else kv[1])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][1] == ordered[i][1]:
            j += 1
        for k in range(i, j + 1):
            ranks[ordered[k][0]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _relative(path: Path, source: str) -> str:
    try:
        return str(path.relative_to(source)) if source else str(path)
    except ValueError:
        return str(path)


def build_leaderboard(collection: Collection, *, source: str = "") -> dict[str, Any]:
    """The leaderboard document for a collection of runs."""
    tasks: dict[str, dict[str, Any]] = {}
    for run in collection.runs:
        res = run.results
        task = tasks.setdefault(
            res.task,
            {
                "family": res.family,
                "language": res.language,
                "modality": res.modality,
                "metrics": {},
                "models": {},
                "rankings": {},
            },
        )
        task["models"][res.model] = {
            "values": res.metrics,
            "ci95": res.ci95,
            "n_samples": res.n_samples,
            "n_parse_failures": res.n_parse_failures,
            "parse_failure_rate": res.n_parse_failures / res.n_samples if res.n_samples else 0.0,
            "n_errors": res.n_errors,
            "signatures": res.signatures,
            "regbench_version": res.regbench_version,
            "results_file": _relative(run.path, source),
        }
        for key in res.metrics:
            meta = task["metrics"].setdefault(key, {"higher_is_better": res.higher_is_better.get(key, True)})
            meta.setdefault("plugin", res.plugins.get(key, ""))
    notes = list(collection.notes)
    for name, task in tasks.items():
        for key, meta in task["metrics"].items():
            groups: dict[str, dict[str, float]] = defaultdict(dict)
            for model, entry in task["models"].items():
                if key in entry["values"]:
                    # the interval's trials and seed do not change the value: rank those together
                    identity = Signature.parse(entry["signatures"].get(key, "")).comparable().format()
                    groups[identity][model] = entry["values"][key]
            ordered = sorted(groups.items(), key=lambda g: -len(g[1]))
            task["rankings"][key] = [
                {
                    "signature": signature,
                    "ranks": rank(values, meta["higher_is_better"]),
                    "order": sorted(values, key=lambda m: rank(values, meta["higher_is_better"])[m]),
                }
                for signature, values in ordered
            ]
            if len(ordered) > 1:
                notes.append(
                    f"{name} · {key}: {len(ordered)} different signatures (scored with different settings); "
                    "each group is ranked on its own"
                )
            missing = [m for m, e in task["models"].items() if key not in e["values"]]
            if missing:
                notes.append(f"{name} · {key}: not reported by {', '.join(sorted(missing))}; they are not ranked on it")
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": f"regbench {__version__}",
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "source": source,
        "tasks": tasks,
        "families": _families(tasks),
        "overall_rule": OVERALL_RULE,
        "notes": notes,
    }


def _families(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    families: dict[str, dict[str, Any]] = {}
    for name, task in tasks.items():
        family = families.setdefault(task["family"], {"tasks": [], "pairs": 0, "ranks": defaultdict(list)})
        family["tasks"].append(name)
        for groups in task["rankings"].values():
            if not groups:
                continue
            family["pairs"] += 1
            for model, value in groups[0]["ranks"].items():
                family["ranks"][model].append(value)
    out = {}
    for name, family in families.items():
        means = {m: sum(r) / len(r) for m, r in family["ranks"].items() if len(r) * 2 >= family["pairs"]}
        order = sorted(means, key=lambda m: means[m])
        out[name] = {
            "tasks": sorted(family["tasks"]),
            "pairs": family["pairs"],
            "mean_rank": means,
            "overall": [{"model": m, "rank": i + 1, "mean_rank": means[m]} for i, m in enumerate(order)],
            "unranked": sorted(set(family["ranks"]) - set(means)),
        }
    return out
