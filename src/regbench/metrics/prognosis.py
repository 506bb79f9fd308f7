"""Prognosis from a model's answer: a binary endpoint's AUC and accuracy, Kaplan-Meier and log-rank by group.

XMedGPT predicts binary survival endpoints (PFS > 14 months, OS > 1 or 2 years) and reports AUC and
accuracy with 95% intervals, and a log-rank P between the Kaplan-Meier curves of its predicted risk
groups. Here the endpoint is the reference ``answer`` (1 when it reads ``positive``, default
``yes``); the model's score is a probability read from its output (the first number in 0-1, or a
percentage), else a leading yes / no as 1 / 0; the predicted group is ``score >= threshold``.

- ``prognosis_auc``: AUC of the scores for the endpoint (ties one half, as scikit-learn), over the
  samples with a readable score;
- ``prognosis_accuracy``: share of samples whose predicted group equals the endpoint (an unreadable
  output counts as wrong);
- ``logrank_p``: the log-rank test (lifelines, the ``survival`` extra) between the predicted groups on
  ``time`` and ``event`` (``meta.time`` / ``meta.event`` by default); absent, with a note, when a group
  is empty, the survival columns are missing or lifelines is not installed.

Both AUC and accuracy carry the run's bootstrap interval; the log-rank p-value does not (an interval
of a p-value says nothing useful). ``regbench plot`` draws the Kaplan-Meier curves of each run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regbench.errors import DataError
from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.uncertainty import auroc
from regbench.types import Parsed, Sample

_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?|\.\d+)\s*(%?)")


def read_score(text: str) -> float | None:
    """A probability from a model's answer: the first number in 0-1 (``73%`` is 0.73), else a leading
    yes / no as 1 / 0, else ``None``. A negative number is none, and a whole number without ``%`` counts
    only at the end of the answer (``Probability: 1``), not in ``No, OS > 1 year is unlikely``."""
    for match in _NUMBER.finditer(text):
        number, percent = match.group(1), match.group(2)
        if not percent and "." not in number and text[match.end(1) :].strip(" .!\n\t"):
            continue  # "1 year", "14 months": a duration, not a probability
        value = float(number) / (100.0 if percent else 1.0)
        if 0.0 <= value <= 1.0:
            return value
    words = re.findall(r"[a-z]+", text.lower())
    if words and words[0] in ("yes", "no"):
        return 1.0 if words[0] == "yes" else 0.0
    return None


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[\w]+", text.lower()))


def kaplan_meier(times: Sequence[float], events: Sequence[bool]) -> tuple[list[float], list[float]]:
    """The Kaplan-Meier estimate: the distinct event times (starting at 0) and the survival just after each."""
    t = np.asarray(times, dtype=np.float64)
    e = np.asarray(events, dtype=bool)
    points, survival, current = [0.0], [1.0], 1.0
    for moment in np.unique(t[e]):
        at_risk = int((t >= moment).sum())
        died = int(((t == moment) & e).sum())
        current *= 1.0 - died / at_risk
        points.append(float(moment))
        survival.append(current)
    return points, survival


class PrognosisOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    positive: str = "yes"
    """The reference answer of the positive endpoint (compared in lower case, punctuation out)."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Predicted positive (the high-score group) when the score is at least this."""
    time: str = "meta.time"
    """The survival time of each sample (``meta.FIELD``), for the Kaplan-Meier curves and the log-rank test."""
    event: str = "meta.event"
    """Whether the event was observed (1) or the time is censored (0) (``meta.FIELD``)."""


@register_metric("prognosis")
class Prognosis(Metric):
    """AUC and accuracy of a binary endpoint, and the log-rank P between the predicted groups."""

    keys = {"prognosis_auc": True, "prognosis_accuracy": True, "logrank_p": False}
    Options = PrognosisOptions
    aggregation = "corpus"

    @property
    def opts(self) -> PrognosisOptions:
        return self.options  # type: ignore[return-value]

    def _field(self, column: str, sample: Sample) -> Any:
        if not column.startswith("meta."):
            raise DataError(f"prognosis: {column!r} must name a dataset field as meta.FIELD")
        return sample.meta.get(column.removeprefix("meta."))

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        score = read_score(parsed.text if parsed.ok or parsed.text else parsed.raw)
        time, event = self._field(self.opts.time, sample), self._field(self.opts.event, sample)
        if time is not None and (isinstance(time, bool) or not isinstance(time, int | float)):
            raise DataError(f"sample {sample.id!r}: {self.opts.time} is {time!r}, not a number")
        if event is not None and not isinstance(event, bool | int | float):
            raise DataError(f"sample {sample.id!r}: {self.opts.event} is {event!r}, not 0/1 or true/false")
        return {
            "endpoint": int(_normal(sample.answer) == _normal(self.opts.positive)),
            "score": score,
            "group": None if score is None else int(score >= self.opts.threshold),
            "time": None if time is None else float(time),
            "event": None if event is None else int(bool(event)),
        }

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {}

    def _auc_accuracy(self, stats: Sequence[Stats]) -> dict[str, float]:
        values: dict[str, float] = {}
        if not stats:
            return values
        readable = [s for s in stats if s["score"] is not None]
        area = auroc([bool(s["endpoint"]) for s in readable], [s["score"] for s in readable])
        if area is not None:
            values["prognosis_auc"] = area
        values["prognosis_accuracy"] = sum(s["group"] == s["endpoint"] for s in readable) / len(stats)
        return values

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        values = self._auc_accuracy(stats)
        p = self.logrank(stats)
        if p is not None:
            values["logrank_p"] = p
        return values

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray]:
        """AUC and accuracy of each resample; no interval for the log-rank p-value."""
        rows = [
            self._auc_accuracy([stats[i] for i in np.repeat(np.arange(len(stats)), w.astype(int))]) for w in weights
        ]
        return {k: np.array([row.get(k, np.nan) for row in rows]) for k in ("prognosis_auc", "prognosis_accuracy")}

    def survival(self, stats: Sequence[Stats]) -> list[Stats]:
        return [s for s in stats if s["group"] is not None and s["time"] is not None and s["event"] is not None]

    def logrank(self, stats: Sequence[Stats]) -> float | None:
        rows = self.survival(stats)
        high = [s for s in rows if s["group"] == 1]
        low = [s for s in rows if s["group"] == 0]
        if not high or not low:
            return None
        try:
            from lifelines.statistics import logrank_test
        except ImportError:
            return None
        result = logrank_test(
            [s["time"] for s in high],
            [s["time"] for s in low],
            event_observed_A=[s["event"] for s in high],
            event_observed_B=[s["event"] for s in low],
        )
        p = float(result.p_value)
        return p if math.isfinite(p) else None

    def notes(self, stats: Sequence[Stats]) -> list[str]:
        found = []
        unreadable = sum(s["score"] is None for s in stats)
        if unreadable:
            found.append(
                f"prognosis: {unreadable} of {len(stats)} outputs hold no probability and no yes/no: left out of "
                "prognosis_auc, counted wrong in prognosis_accuracy"
            )
        rows = self.survival(stats)
        groups = {s["group"] for s in rows}
        if not rows:
            found.append(
                f"prognosis: no sample has {self.opts.time} and {self.opts.event} with a readable score: "
                "logrank_p is absent"
            )
        elif len(groups) < 2:
            empty = "low" if groups == {1} else "high"
            found.append(
                f"prognosis: the predicted {empty}-score group (score {'<' if empty == 'low' else '>='} "
                f"{self.opts.threshold:g}) is empty: logrank_p is absent"
            )
        else:
            try:
                import lifelines  # noqa: F401
            except ImportError:
                found.append("prognosis: logrank_p needs lifelines: pip install 'regbench[survival]'")
        return found
