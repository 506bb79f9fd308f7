"""VQA metrics: closed accuracy, open recall and accuracy, token F1 / recall, exact match, BLEU-1.

``mode: standard`` normalises answers (lower case, punctuation out, Chinese by jieba) and
treats a question as closed when the sample says ``answer_type: closed`` or the reference is
yes/no (是/否). ``mode: medrega`` is MedRegA's released evaluator: its ``cleanStr``, closed
only when the cleaned reference is exactly ``yes``/``no``, F1 with a 1e-8 guard; in Chinese
its quirks too (closed decided by the *prediction*, recall threshold 0.4, ``not`` added to a
``no`` reference), so its numbers can be reproduced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.text_match import bleu1, medrega_clean, normalise, token_prf, tokens
from regbench.types import Parsed, Sample

_YES_NO = {"yes", "no", "是", "否", "有", "无", "没有"}


class VQAOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    mode: Literal["standard", "medrega"] = "standard"
    """``medrega``: MedRegA's released VQA evaluator (its string cleaning and token rules; docs/text-metrics.md)."""
    closed_threshold: float = Field(0.8, gt=0, le=1)
    """A closed answer is correct when its token recall reaches this (MedRegA: 0.8)."""
    open_threshold: float = Field(0.75, gt=0, le=1)
    """An open answer counts as accurate when its token recall reaches this (MedRegA: 0.75)."""


@register_metric("vqa")
class VQA(Metric):
    """Closed accuracy, open recall / accuracy, token F1 / recall, exact match (M4CXR), BLEU-1."""

    keys = {
        "closed_accuracy": True,
        "open_recall": True,
        "open_accuracy": True,
        "token_f1": True,
        "token_recall": True,
        "exact_match": True,
        "bleu1": True,
    }
    Options = VQAOptions

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        opts: VQAOptions = self.options  # type: ignore[assignment]
        language = sample.language or self.context.language
        if opts.mode == "medrega":
            return self._medrega(parsed.raw or parsed.text, sample.answer, language)
        pred = tokens(parsed.text, language=language)
        ref = tokens(sample.answer, language=language)
        if sample.answer_type is not None:
            closed = sample.answer_type.lower() == "closed"
        else:
            closed = normalise(sample.answer) in _YES_NO
        _, recall, f1 = token_prf(pred, ref)
        scores = (recall, recall, f1, bleu1(pred, ref))
        return self._record(closed, opts.closed_threshold, *scores, exact=_exact(parsed.text, sample.answer))

    def _medrega(self, raw: str, answer: str, language: str) -> Stats:
        """The released evaluators, on the raw output as they read it."""
        opts: VQAOptions = self.options  # type: ignore[assignment]
        pred = tokens(raw, language=language, mode="medrega")
        ref = tokens(answer, language=language, mode="medrega")
        _, recall, f1 = token_prf(pred, ref, eps=1e-8)
        if language != "zh":
            closed = medrega_clean(answer) in ("yes", "no")
            return self._record(
                closed, opts.closed_threshold, recall, recall, f1, bleu1(pred, ref), _exact(raw, answer)
            )
        # Chinese: closed is decided by the *prediction*, at recall 0.4, and only that check
        # adds "not" to a "no" reference; BLEU-1 reads the jieba tokens joined by spaces.
        closed_recall = token_prf(pred, [*ref, "not"] if set(ref) == {"no"} else ref)[1]
        words = [t for t in pred if t.strip()], [t for t in ref if t.strip()]
        return self._record(raw in ("yes", "no"), 0.4, closed_recall, recall, f1, bleu1(*words), _exact(raw, answer))

    def _record(
        self, closed: bool, threshold: float, closed_recall: float, recall: float, f1: float, bleu: float, exact: float
    ) -> Stats:
        opts: VQAOptions = self.options  # type: ignore[assignment]
        return {
            "closed": closed,
            "closed_accuracy": float(closed_recall >= threshold) if closed else None,
            "open_recall": None if closed else recall,
            "open_accuracy": None if closed else float(recall >= opts.open_threshold),
            "token_f1": f1,
            "token_recall": recall,
            "exact_match": exact,
            "bleu1": bleu,
        }

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {key: stats.get(key) for key in self.keys}


def _exact(pred: str, answer: str) -> float:
    """M4CXR's exact match: equal after lower-casing and removing every "." (whitespace runs are one space)."""

    def key(text: str) -> str:
        return " ".join(text.lower().replace(".", "").split())

    return float(key(pred) == key(answer))
