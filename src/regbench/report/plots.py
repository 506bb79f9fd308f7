"""Charts with matplotlib (Agg, no display): metric bars with intervals, a radar of task families,
IoU distributions, parse-failure rates. Each function writes one file and returns its path.

The radar averages the keys whose plugin class bounds them to exactly [0, 1]
(:meth:`regbench.metrics.Metric.facts`); a key whose plugin this installation does not know
counts when its value lies in [0, 1].

Only the runs :func:`regbench.report.collect.screen` keeps are drawn (a run that mostly failed is
in no chart). A run over another set of samples than its task's reference set gets its bar, marked
‡ and hatched, with a note under the chart, and is left out of the radar and the IoU histogram, which
put runs side by side as if they were comparable. SVG text stays text (searchable, selectable).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from regbench.metrics import metric_facts
from regbench.report.collect import Collection
from regbench.results import Results


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text, not paths: smaller, searchable
    import matplotlib.pyplot as plt

    return plt


def metric_bars(collection: Collection, task: str, out: Path, fmt: str = "png") -> Path:
    """One panel per metric of a task: a bar per model, with its 95% interval."""
    plt = _pyplot()
    shown = [r for r in collection.runs if r.results.task == task]
    runs = [r.results for r in shown]
    apart = {r.results.model: r.note for r in shown if not r.comparable}
    keys = sorted({k for r in runs for k in r.metrics})
    cols = min(4, len(keys)) or 1
    rows = (len(keys) + cols - 1) // cols or 1
    figure, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        reporting = [r for r in runs if key in r.metrics]  # each bar's interval from its own run
        models = [r.model + (" ‡" if r.model in apart else "") for r in reporting]
        values = [r.metrics[key] for r in reporting]
        spans = [_error_span(r, key) for r in reporting]
        errors = [[below for below, _ in spans], [above for _, above in spans]]
        bars = ax.bar(range(len(models)), values, yerr=errors, capsize=3, color="#4a7bd0")
        for bar, run in zip(bars, reporting, strict=True):
            if run.model in apart:  # shown, not comparable with the others
                bar.set_facecolor("#dde5f5")
                bar.set_edgecolor("#4a7bd0")  # the hatch is drawn in the edge colour
                bar.set_hatch("//")
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=7)
        direction = "" if all(r.higher_is_better.get(key, True) for r in runs) else " (lower is better)"
        ax.set_title(key + direction, fontsize=9)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    figure.suptitle(task)
    figure.tight_layout()
    if apart:
        lines = [f"‡ {model}: {why}; not comparable with the other bars" for model, why in sorted(apart.items())]
        figure.subplots_adjust(bottom=figure.subplotpars.bottom + 0.04 * len(lines))
        figure.text(0.01, 0.01, "\n".join(lines), fontsize=7, ha="left", va="bottom", wrap=True)
    path = out / f"bars_{task}.{fmt}"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _error_span(results: Results, key: str) -> tuple[float, float]:
    """How far a run's 95% interval of ``key`` reaches below and above its value (0, 0 without one).

    A percentile interval of a corpus metric can miss the point estimate; that side is drawn as 0
    rather than as a negative length (which matplotlib refuses)."""
    value = results.metrics[key]
    low, high = results.ci95.get(key, (value, value))
    return max(0.0, value - low), max(0.0, high - value)


def radar_scores(collection: Collection) -> tuple[list[str], dict[str, list[float | None]]]:
    """The task families, and per model its mean score on each (the mean over the family's tasks of
    the mean of its 0–1, higher-is-better metrics); ``None`` where it has no such score."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in collection.ranked:  # a run over other samples is not comparable with the others
        res = run.results
        usable = [v for k, v in res.metrics.items() if res.higher_is_better.get(k, True) and _unit_bounded(res, k)]
        if usable:
            scores[res.model][res.family].append(sum(usable) / len(usable))
    families = sorted({f for per_model in scores.values() for f in per_model})
    return families, {
        model: [sum(per_family[f]) / len(per_family[f]) if per_family.get(f) else None for f in families]
        for model, per_family in sorted(scores.items())
    }


def family_radar(collection: Collection, out: Path, fmt: str = "png") -> Path:
    """Each model's mean score per task family (:func:`radar_scores`). A family a model has no score
    on is a gap in its outline, not a 0, and the legend names it."""
    import numpy as np

    plt = _pyplot()
    families, scores = radar_scores(collection)
    angles = np.linspace(0, 2 * np.pi, max(len(families), 1), endpoint=False).tolist()
    figure = plt.figure(figsize=(5.5, 5.5))
    ax = figure.add_subplot(polar=True)
    for model, values in scores.items():
        ys = [np.nan if v is None else v for v in values]  # NaN: matplotlib leaves the segments out
        absent = [f for f, v in zip(families, values, strict=True) if v is None]
        label = f"{model} (no {', '.join(absent)})" if absent else model
        ax.plot([*angles, angles[0]], [*ys, ys[0]], marker="o", markersize=3, label=label)
        if not absent:  # a filled area only where the outline is whole
            ax.fill([*angles, angles[0]], [*ys, ys[0]], alpha=0.1)
    ax.set_xticks(angles, families, fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    figure.tight_layout()
    path = out / f"radar_families.{fmt}"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def iou_distribution(collection: Collection, out: Path, fmt: str = "png") -> Path | None:
    """Histogram of per-sample IoU (``iou`` or ``miou``) per model, over every region task."""
    plt = _pyplot()
    per_model: dict[str, list[float]] = defaultdict(list)
    for run in collection.ranked:
        if not run.samples_path.is_file():
            continue
        with run.samples_path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    scores = json.loads(line).get("scores", {})
                except json.JSONDecodeError:
                    continue
                value = scores.get("iou", scores.get("miou"))
                if isinstance(value, int | float):
                    per_model[run.results.model].append(float(value))
    if not per_model:
        return None
    figure, ax = plt.subplots(figsize=(6, 3.5))
    for model, values in sorted(per_model.items()):
        ax.hist(values, bins=20, range=(0, 1), alpha=0.5, label=f"{model} (n={len(values)})")
    ax.set_xlabel("per-sample IoU")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    figure.tight_layout()
    path = out / f"iou_distribution.{fmt}"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def parse_failures(collection: Collection, out: Path, fmt: str = "png") -> Path:
    """Parse-failure rate of every run (model x task)."""
    plt = _pyplot()
    labels = [f"{r.results.model} · {r.results.task}" for r in collection.runs]
    rates = [r.results.n_parse_failures / r.results.n_samples if r.results.n_samples else 0.0 for r in collection.runs]
    figure, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.2))
    ax.barh(range(len(labels)), rates, color="#d0704a")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("parse-failure rate")
    ax.invert_yaxis()
    figure.tight_layout()
    path = out / f"parse_failures.{fmt}"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def km_curves(collection: Collection, out: Path, fmt: str = "png") -> list[Path]:
    """Kaplan-Meier curves of the predicted groups of every run with the ``prognosis`` metric (from the
    per-sample ``time``, ``event`` and ``group`` in its samples.jsonl), the log-rank P in the title."""
    from regbench.metrics.prognosis import kaplan_meier

    paths = []
    for run in collection.runs:
        res = run.results
        if "prognosis" not in res.plugins.values() or not run.samples_path.is_file():
            continue
        groups: dict[int, list[tuple[float, int]]] = defaultdict(list)
        with run.samples_path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    stats = json.loads(line).get("stats", {}).get("prognosis", {})
                except json.JSONDecodeError:
                    continue
                if all(isinstance(stats.get(k), int | float) for k in ("group", "time", "event")):
                    groups[int(stats["group"])].append((float(stats["time"]), int(stats["event"])))
        if not groups:
            continue
        plt = _pyplot()
        figure, ax = plt.subplots(figsize=(5, 3.5))
        for group, label in ((1, "predicted positive"), (0, "predicted negative")):
            if groups.get(group):
                times, survival = kaplan_meier([t for t, _ in groups[group]], [bool(e) for _, e in groups[group]])
                ax.step(times, survival, where="post", label=f"{label} (n={len(groups[group])})")
        p = res.metrics.get("logrank_p")
        ax.set_title(f"{res.model} · {res.task}" + (f" (log-rank P = {p:.3g})" if p is not None else ""), fontsize=9)
        ax.set_xlabel("time")
        ax.set_ylabel("survival")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        figure.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{res.model}_{res.task}")
        path = out / f"km_{safe}.{fmt}"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    return paths


def _unit_bounded(results: Results, key: str) -> bool:
    """Whether a key's values lie in [0, 1] by its plugin's declaration (else by this value)."""
    facts = metric_facts(results.plugins.get(key), key)
    if facts is not None:
        return facts.bounds == (0.0, 1.0)
    return 0.0 <= results.metrics[key] <= 1.0


def all_plots(collection: Collection, out: Path, fmt: str = "png") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [metric_bars(collection, task, out, fmt) for task in sorted({r.results.task for r in collection.runs})]
    paths += [family_radar(collection, out, fmt), parse_failures(collection, out, fmt)]
    paths += km_curves(collection, out, fmt)
    iou = iou_distribution(collection, out, fmt)
    return [*paths, iou] if iou else paths
