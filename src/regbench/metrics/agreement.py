"""Kendall's tau-b between two per-sample columns of one run (XMedGPT's reasoning-versus-report analysis).

A column is a per-sample key of the task's other metrics (``token_f1``, ``chexbert_similarity``, ...)
or ``meta.FIELD``, a number in each sample's dataset record (a score made elsewhere, such as a
judge's rating of the reasoning). Samples lacking either value are left out. ``kendall_tau`` and
``kendall_tau_p`` are scipy's ``kendalltau`` with its defaults (tau-b, two-sided, exact p-value for
small samples without ties, asymptotic otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from regbench.errors import DataError
from regbench.metrics.base import Joint, Metric, Stats, register_metric
from regbench.types import Parsed, Sample


class KendallTauOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    x: str
    """A per-sample metric key of this task, or ``meta.FIELD``."""
    y: str
    """The other column, as ``x``."""


def column_value(column: str, sample: Sample, scores: dict[str, Any] | Any) -> float | None:
    """A sample's value of ``column`` (``meta.FIELD`` or a metric key) as a number, ``None`` when absent."""
    if column.startswith("meta."):
        value = sample.meta.get(column.removeprefix("meta."))
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"sample {sample.id!r}: {column} is {value!r}, not a number")
    else:
        value = scores.get(column)
        if value is None:
            return None
    number = float(value)
    return number if math.isfinite(number) else None


@register_metric("kendall_tau")
class KendallTau(Metric):
    """Kendall's tau-b and its p-value between two per-sample columns."""

    keys = {"kendall_tau": True, "kendall_tau_p": False}
    key_bounds = {"kendall_tau": (-1.0, 1.0)}
    scale = "raw"
    Options = KendallTauOptions
    aggregation = "corpus"
    joint = True

    @property
    def opts(self) -> KendallTauOptions:
        return self.options  # type: ignore[return-value]

    def requires(self) -> list[str]:
        return [c for c in (self.opts.x, self.opts.y) if not c.startswith("meta.")]

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return {"x": column_value(self.opts.x, sample, {}), "y": column_value(self.opts.y, sample, {})}

    def stats_joint(self, items: Sequence[tuple[Parsed, Sample]], joint: Joint) -> list[Stats]:
        return [
            {"x": column_value(self.opts.x, sample, row), "y": column_value(self.opts.y, sample, row)}
            for (_, sample), row in zip(items, joint.scores, strict=True)
        ]

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {}

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        from scipy.stats import kendalltau

        pairs = [(s["x"], s["y"]) for s in stats if s.get("x") is not None and s.get("y") is not None]
        if len(pairs) < 2:
            return {}
        result = kendalltau([x for x, _ in pairs], [y for _, y in pairs])
        if not math.isfinite(result.statistic):  # a constant column: tau-b is undefined
            return {}
        return {"kendall_tau": float(result.statistic), "kendall_tau_p": float(result.pvalue)}

    def notes(self, stats: Sequence[Stats]) -> list[str]:
        usable = sum(s.get("x") is not None and s.get("y") is not None for s in stats)
        if usable < len(stats) or not self.finalize(stats):
            why = "" if self.finalize(stats) else "; tau-b is undefined (fewer than 2 pairs, or a constant column)"
            return [f"kendall_tau: {usable} of {len(stats)} samples have both {self.opts.x} and {self.opts.y}{why}"]
        return []
