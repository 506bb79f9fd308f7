"""The leaderboard JSON (schema: leaderboard.schema.json, ``schema_version`` 1).

Per task: its metrics with direction, every model's values, intervals, sample counts,
parse-failure rate, signatures, regbench version and the task's metrics it has no value for
(``missing``, each with why), and a ranking per metric. Models whose signatures for a metric
differ (the interval's trials and seed aside) were scored differently and are ranked in separate
groups, the largest first, each naming its signature and, after the first, how it differs from it.

Per task family, an overall rank: each model's mean rank over every (task, metric) pair it is
ranked in within the first signature group, lower is better, equal means sharing a rank. A model
ranked in fewer than half of the family's pairs (or in none, when every metric it has was scored
differently) is listed as unranked, with the reason.

Only runs that :func:`regbench.report.collect.screen` lets through are ranked: a run that mostly
failed is listed under its task's ``excluded`` (with the counts and why) and nowhere else, and a
run over another set of samples than the task's reference set is shown (``comparable: false`` and
a ``note``) but not ranked.

Tables and the page follow the same rules: :func:`signature_groups` says who is compared with
whom, :func:`marks` which values are marked best and second, :func:`describe_difference` how a
group was scored differently.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.report.collect import Collection
from regbench.results import Results
from regbench.signature import Signature

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("leaderboard.schema.json")
OVERALL_RULE = (
    "mean rank over every (task, metric) pair of the family the model is ranked in (first signature group; "
    "ties share the average rank); lower is better, equal means share a rank; models ranked in fewer than half "
    "of the pairs are unranked"
)
OPTION_NAMES = {
    "iou_threshold": "IoU threshold",
    "hit_threshold": "hit threshold",
    "tok": "tokenizer",
    "agg": "aggregation",
    "impl": "implementation",
    "regbench": "regbench version",
}
"""Readable names of signature fields and options (others are shown with spaces for underscores)."""


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


@dataclass(frozen=True)
class SignatureGroup:
    """Models whose values of one metric were computed the same way, so they are compared."""

    signature: Signature
    """The comparable signature (no bootstrap trials and seed) they share."""
    values: dict[str, float]
    """Model -> value."""


def signature_groups(values: Mapping[str, float], signatures: Mapping[str, str]) -> list[SignatureGroup]:
    """The models of ``values`` grouped by comparable signature (a model without one: the empty
    signature), the largest group first, groups of equal size in signature order."""
    groups: dict[Signature, dict[str, float]] = {}
    for model, value in values.items():
        groups.setdefault(Signature.parse(signatures.get(model, "")).comparable(), {})[model] = value
    ordered = sorted(groups.items(), key=lambda group: (-len(group[1]), group[0].format()))
    return [SignatureGroup(signature, members) for signature, members in ordered]


def places(values: Mapping[str, float], higher_is_better: bool) -> dict[str, int]:
    """1 for the models with the best value (all of them when tied), 2 for those with the next
    distinct value, when that is not also the last (in a column of two distinct values the second
    is the worst)."""
    distinct = sorted(set(values.values()), reverse=higher_is_better)
    marked = distinct[:2] if len(distinct) > 2 else distinct[:1]
    return {model: marked.index(value) + 1 for model, value in values.items() if value in marked}


def marks(groups: Sequence[Mapping[str, float]], higher_is_better: bool) -> dict[str, int]:
    """:func:`places` within each signature group (model -> value) of one metric. Where there are
    several groups, a group of one model was compared with nothing and gets no mark."""
    out: dict[str, int] = {}
    for values in groups:
        if len(groups) == 1 or len(values) > 1:
            out |= places(values, higher_is_better)
    return out


def _settings(signature: Signature) -> dict[str, str]:
    """A signature's plugin, qualifiers, options and version by name (a part without a value: "on")."""
    parts = {name: "on" if value is None else value for name, value in (*signature.qualifiers, *signature.parts)}
    return {"plugin": signature.plugin or signature.key, **parts, "regbench": signature.version or "unset"}


def describe_difference(first: Signature, other: Signature) -> str:
    """How ``other`` was scored unlike ``first``, e.g. ``"IoU threshold 0.3 instead of 0.5"``."""
    if not other.key or not first.key:
        return "no signature recorded" if not other.key else "a signature where the others have none"
    mine, theirs = _settings(other), _settings(first)
    changes = [
        f"{OPTION_NAMES.get(name, name.replace('_', ' '))} {mine.get(name, 'unset')} instead of "
        f"{theirs.get(name, 'unset')}"
        for name in dict.fromkeys([*mine, *theirs])
        if mine.get(name) != theirs.get(name)
    ]
    return "; ".join(changes) or other.format()


def _relative(path: Path, source: str) -> str:
    try:
        return str(path.relative_to(source)) if source else str(path)
    except ValueError:
        return str(path)


def _task_entry(tasks: dict[str, dict[str, Any]], res: Results) -> dict[str, Any]:
    return tasks.setdefault(
        res.task,
        {
            "family": res.family,
            "language": res.language,
            "modality": res.modality,
            "metrics": {},
            "models": {},
            "rankings": {},
            "excluded": {},
        },
    )


def failure_rule(max_failure_rate: float) -> str:
    """The failure rule in words, as the leaderboard JSON states it."""
    return (
        "a run whose failed samples (model requests that failed after the retries + outputs that could not be "
        f"read) are more than {max_failure_rate:.0%} of its samples is listed under its task's excluded and "
        "shown and ranked nowhere; a run over another set of samples than most runs of its task (ties: the "
        "larger set) is shown with comparable false and a note, and not ranked"
    )


def build_leaderboard(collection: Collection, *, source: str = "") -> dict[str, Any]:
    """The leaderboard document for a collection of runs."""
    tasks: dict[str, dict[str, Any]] = {}
    dropped: dict[tuple[str, str], dict[str, str]] = {}
    for run in collection.runs:
        res = run.results
        task = _task_entry(tasks, res)
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
            "missing": {},
            "sample_ids": res.sample_ids or None,
            "comparable": run.comparable,
        }
        if run.note:
            task["models"][res.model]["note"] = run.note
        dropped[res.task, res.model] = run.dropped
        for key in [*res.metrics, *run.dropped]:
            meta = task["metrics"].setdefault(key, {"higher_is_better": res.higher_is_better.get(key, True)})
            if not meta.get("plugin"):  # the first run that names one
                meta["plugin"] = res.plugins.get(key, "")
    for excluded in collection.excluded:
        res = excluded.run.results
        _task_entry(tasks, res)["excluded"][res.model] = {
            "reason": excluded.reason,
            "n_samples": res.n_samples,
            "n_errors": res.n_errors,
            "n_parse_failures": res.n_parse_failures,
            "results_file": _relative(excluded.run.path, source),
        }
    notes = list(collection.notes)
    for name, task in tasks.items():
        for key, meta in task["metrics"].items():
            # only runs over the task's reference samples are ranked (collect.screen)
            values = {m: e["values"][key] for m, e in task["models"].items() if key in e["values"] and e["comparable"]}
            groups = signature_groups(values, {m: task["models"][m]["signatures"].get(key, "") for m in values})
            task["rankings"][key] = [_ranking(group, groups[0], meta["higher_is_better"]) for group in groups]
            if len(groups) > 1:
                notes.append(
                    f"{name} · {key}: {len(groups)} different signatures (scored with different settings); "
                    "each group is ranked on its own"
                )
            missing = sorted(m for m, e in task["models"].items() if key not in e["values"])
            for model in missing:
                why = dropped[name, model].get(key, "no value in its results.json")
                task["models"][model]["missing"][key] = why
            if missing:
                notes.append(f"{name} · {key}: not reported by {', '.join(missing)}; they are not ranked on it")
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": f"regbench {__version__}",
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "source": source,
        "tasks": tasks,
        "families": _families(tasks),
        "overall_rule": OVERALL_RULE,
        "max_failure_rate": collection.max_failure_rate,
        "ranking_rule": failure_rule(collection.max_failure_rate),
        "notes": notes,
    }


def _ranking(group: SignatureGroup, first: SignatureGroup, higher_is_better: bool) -> dict[str, Any]:
    ranks = rank(group.values, higher_is_better)
    entry: dict[str, Any] = {
        "signature": group.signature.format(),
        "ranks": ranks,
        "order": sorted(group.values, key=lambda m: ranks[m]),
    }
    if group is not first:
        entry["difference"] = describe_difference(first.signature, group.signature)
    return entry


def _families(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    families: dict[str, dict[str, Any]] = {}
    for name, task in tasks.items():
        family = families.setdefault(
            task["family"],
            {"tasks": [], "pairs": 0, "models": set(), "ranks": defaultdict(list), "apart": {}, "aside": {}},
        )
        family["tasks"].append(name)
        family["models"].update(task["models"], task["excluded"])
        for model, entry in task["models"].items():
            if not entry["comparable"]:
                family["aside"].setdefault(model, []).append(f"{name}: {entry['note']}")
        for model, entry in task["excluded"].items():
            family["aside"].setdefault(model, []).append(f"{name}: set aside, {entry['reason']}")
        for groups in task["rankings"].values():
            if not groups:
                continue
            family["pairs"] += 1
            for model, value in groups[0]["ranks"].items():
                family["ranks"][model].append(value)
            for group in groups[1:]:
                for model in group["ranks"]:
                    family["apart"].setdefault(model, []).append(group["difference"])
    out = {}
    for name, family in families.items():
        ranks: dict[str, list[float]] = family["ranks"]
        means = {m: sum(r) / len(r) for m, r in ranks.items() if len(r) * 2 >= family["pairs"]}
        unranked = sorted(family["models"] - set(means))
        out[name] = {
            "tasks": sorted(family["tasks"]),
            "pairs": family["pairs"],
            "mean_rank": means,
            "overall": _overall(means, ranks),
            "unranked": unranked,
            "unranked_reasons": {
                m: _unranked_reason(
                    len(ranks.get(m, [])), family["apart"].get(m, []), family["pairs"], family["aside"].get(m, [])
                )
                for m in unranked
            },
        }
    return out


def _overall(means: dict[str, float], ranks: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    """Models by mean rank; equal means (up to rounding) share the better rank, as 1, 1, 3."""
    order = sorted(means, key=lambda m: (means[m], m))
    overall: list[dict[str, Any]] = []
    for i, model in enumerate(order):
        tied = i > 0 and math.isclose(means[model], means[order[i - 1]], rel_tol=0.0, abs_tol=1e-9)
        overall.append(
            {
                "model": model,
                "rank": overall[-1]["rank"] if tied else i + 1,
                "mean_rank": means[model],
                "ranked_pairs": len(ranks[model]),
            }
        )
    return overall


def _unranked_reason(ranked: int, apart: list[str], pairs: int, aside: list[str]) -> str:
    """Why a model has no overall rank: how many pairs it was ranked in, scored differently in, lacks,
    and which of its runs were not ranked (mostly failed, or over other samples) and why."""
    if not ranked and not apart and aside:  # nothing of it was ranked: those runs are the whole reason
        return f"no run ranked: {'; '.join(aside)}"
    text = f"ranked in {ranked} of the family's {pairs} (task, metric) pairs, fewer than half"
    if apart:
        text += f"; scored differently in {len(apart)} ({'; '.join(dict.fromkeys(apart))}), ranked apart there"
    if aside:
        text += f"; runs not ranked: {'; '.join(aside)}"
    elif pairs - ranked - len(apart):
        text += f"; no value in {pairs - ranked - len(apart)}"
    return text
