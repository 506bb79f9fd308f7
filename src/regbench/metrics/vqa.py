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
from regbench.metrics.text_match import bleu1, normalise, token_prf, tokens
from regbench.types import Parsed, Sample

_YES_NO = {"yes", "no", "是", "否", "有", "无", "没有"}


class VQAOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["standard", "medrega"] = "standard"
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
        pred = tokens(parsed.text, language=language, mode=opts.mode)
        ref = tokens(sample.answer, language=language, mode=opts.mode)
        closed, closed_threshold = self._closed(parsed, sample, language, ref)
        if opts.mode == "medrega" and language == "zh" and set(ref) == {"no"}:
            ref = [*ref, "not"]
        _, recall, f1 = token_prf(pred, ref, eps=1e-8 if opts.mode == "medrega" else 0.0)
        return {
            "closed": closed,
            "closed_accuracy": float(recall >= closed_threshold) if closed else None,
            "open_recall": None if closed else recall,
            "open_accuracy": None if closed else float(recall >= opts.open_threshold),
            "token_f1": f1,
            "token_recall": recall,
            "exact_match": float(_m4cxr_exact(parsed.text) == _m4cxr_exact(sample.answer)),
            "bleu1": bleu1(pred, ref),
        }

    def _closed(self, parsed: Parsed, sample: Sample, language: str, ref: list[str]) -> tuple[bool, float]:
        opts: VQAOptions = self.options  # type: ignore[assignment]
        if opts.mode == "medrega":
            if language == "zh":  # the released Chinese evaluator tests the prediction, at recall 0.4
                return parsed.text in ("yes", "no"), 0.4
            return " ".join(ref) in ("yes", "no"), opts.closed_threshold
        if sample.answer_type is not None:
            return sample.answer_type.lower() == "closed", opts.closed_threshold
        return normalise(sample.answer) in _YES_NO, opts.closed_threshold

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {key: stats.get(key) for key in self.keys}


def _m4cxr_exact(text: str) -> str:
    """M4CXR's exact match compares answers lower-cased with every "." removed."""
    return text.lower().replace(".", "").strip()
