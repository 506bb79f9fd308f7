"""Classification and diagnosis: free-text answers mapped to the task's label set, then F1 and accuracy.

Mapping (``match``): ``exact`` (normalised equality), ``substring`` (a label named in the
answer, longest first; then the answer inside a label), or ``bleu1`` (the label with the
highest BLEU-1 against the answer, MedRegA's rule; ties go to the earlier label). A
multi-label answer is split on commas, semicolons, newlines and " and ". Every mapping and
every unmapped piece is kept in the per-sample stats, so samples.jsonl shows it.

Keys: ``accuracy`` (exact set match; plain accuracy for single-label tasks), ``f1_macro``,
``f1_micro``, ``f1_samples`` (multi-label tasks), with scikit-learn's definitions and
``zero_division=0``; ``auroc`` (macro over labels with both classes present) when every output
carries scores, as a JSON object with a number for every label (``{"Nodule": 0.8, ...}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import rankdata

from regbench.errors import RegbenchError
from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.text_match import bleu1, normalise
from regbench.parsing.base import strip_reasoning
from regbench.types import Parsed, Sample


class ClassificationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    match: Literal["exact", "substring", "bleu1"] = "substring"
    """How a free-text answer maps onto a label: equal after normalisation, contains it, or nearest by BLEU-1."""
    multi_label: bool | None = None
    """Split answers into several labels; default: when any reference has more than one label."""


def map_answer(piece: str, labels: Sequence[str], how: str) -> str | None:
    """The label a free-text piece names, or ``None``."""
    text = normalise(piece)
    if not text:
        return None
    normalised = [normalise(label) for label in labels]
    for label, norm in zip(labels, normalised, strict=True):
        if text == norm:
            return label
    if how == "substring":
        by_length = sorted(zip(labels, normalised, strict=True), key=lambda pair: -len(pair[1]))
        for label, norm in by_length:
            if re.search(rf"\b{re.escape(norm)}\b", text):
                return label
        for label, norm in zip(labels, normalised, strict=True):
            if re.search(rf"\b{re.escape(text)}\b", norm):
                return label
    if how == "bleu1":
        scores = [bleu1(text.split(), norm.split()) for norm in normalised]
        best = int(np.argmax(scores))
        return labels[best] if scores[best] > 0 else None
    return None


@register_metric("classification")
class Classification(Metric):
    """Accuracy and macro / micro / samples F1 of answers mapped onto the task's labels."""

    keys = {"accuracy": True, "f1_macro": True, "f1_micro": True, "f1_samples": True, "auroc": True}
    Options = ClassificationOptions
    aggregation = "corpus"

    def labels(self) -> list[str]:
        if not self.context.labels:
            raise RegbenchError(f"task {self.context.task}: the classification metric needs `labels:` in the task YAML")
        return list(self.context.labels)

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        opts: ClassificationOptions = self.options  # type: ignore[assignment]
        labels = self.labels()
        multi = opts.multi_label if opts.multi_label is not None else len(sample.labels) > 1
        # the raw output keeps its line breaks (parsed.text collapses them where boxes were cut out)
        text = strip_reasoning(parsed.raw) if parsed.raw else parsed.text
        pieces = re.split(r"[,;\n]|\band\b", text, flags=re.IGNORECASE) if multi else [parsed.text]
        mapping = {piece.strip(): map_answer(piece, labels, opts.match) for piece in pieces if piece.strip()}
        predicted = sorted({label for label in mapping.values() if label is not None}, key=labels.index)
        if not multi:
            predicted = predicted[:1]
        return {
            "pred": predicted,
            "ref": [label for label in sample.labels if label in labels],
            "mapping": {piece: label for piece, label in mapping.items() if label is not None},
            "unmapped": [piece for piece, label in mapping.items() if label is None],
            "multi_label": multi,
            "scores": label_scores(parsed.text, labels),
        }

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {"accuracy": float(set(stats["pred"]) == set(stats["ref"]))}

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        if not stats:
            return {}
        labels = self.labels()
        index = {label: i for i, label in enumerate(labels)}
        truth = np.zeros((len(stats), len(labels)), dtype=bool)
        pred = np.zeros_like(truth)
        for row, record in enumerate(stats):
            truth[row, [index[label] for label in record["ref"]]] = True
            pred[row, [index[label] for label in record["pred"]]] = True
        values = {"accuracy": float(np.mean(np.all(truth == pred, axis=1)))}
        tp, fp, fn = (truth & pred).sum(0), (~truth & pred).sum(0), (truth & ~pred).sum(0)
        multi = any(record["multi_label"] for record in stats)
        # Single-label: macro over the labels that occur in either truth or prediction (sklearn's multiclass).
        present = (truth | pred).any(0) if not multi else np.ones(len(labels), dtype=bool)
        values["f1_macro"] = float(np.mean(f1_from_counts(tp, fp, fn)[present])) if present.any() else 0.0
        values["f1_micro"] = float(f1_from_counts(tp.sum(), fp.sum(), fn.sum()))
        if multi:
            row_tp, row_fp, row_fn = (truth & pred).sum(1), (~truth & pred).sum(1), (truth & ~pred).sum(1)
            values["f1_samples"] = float(np.mean(f1_from_counts(row_tp, row_fp, row_fn)))
        if all(record.get("scores") for record in stats):
            scores = np.array([[record["scores"][label] for label in labels] for record in stats])
            aurocs = [_auroc(truth[:, j], scores[:, j]) for j in range(len(labels))]
            defined = [a for a in aurocs if a is not None]
            if defined:
                values["auroc"] = float(np.mean(defined))
        return values


def label_scores(text: str, labels: Sequence[str]) -> dict[str, float] | None:
    """Per-label scores when the output is a JSON object giving one for every label, else None."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    by_name = {normalise(str(k)): v for k, v in data.items()}
    scores = {label: by_name.get(normalise(label)) for label in labels}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scores.values()):
        return None
    return {label: float(v) for label, v in scores.items()}  # type: ignore[arg-type]


def _auroc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties shared; None if one class."""
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN), elementwise; 0 where undefined (scikit-learn's zero_division=0)."""
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)
