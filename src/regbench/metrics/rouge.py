"""ROUGE-1 F (M3D's report and caption metric): unigram overlap of tokenised texts, per sample, averaged.

Tokens come from the same tokenizers as ``nlg`` (PTB for English, jieba for Chinese), so
Chinese characters count; M3D and MedRegA computed it with rouge-score's default tokenizer,
which keeps only ``[a-z0-9]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.tokenize import get_tokenizer
from regbench.signature import Signature
from regbench.types import Parsed, Sample


class Rouge1Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    tokenizer: Literal["auto", "ptb", "jieba", "char", "whitespace"] = "auto"
    """``auto``: PTB for English, jieba for Chinese (the task's language decides)."""


def rouge1_f(hyp: Sequence[str], ref: Sequence[str]) -> float:
    """Unigram F-measure with clipped (multiset) overlap; 0 when either side is empty."""
    overlap = sum((Counter(hyp) & Counter(ref)).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / len(hyp), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


@register_metric("rouge1")
class Rouge1(Metric):
    """ROUGE-1 F, per sample, averaged (M3D)."""

    keys = {"rouge1": True}
    Options = Rouge1Options

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        self.tokenizer = get_tokenizer(self.options.tokenizer, language=self.context.language)  # type: ignore[attr-defined]

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        tokens = self.tokenizer([p.text for p, _ in items] + [s.answer for _, s in items])
        hyps, refs = tokens[: len(items)], tokens[len(items) :]
        return [{"rouge1": rouge1_f(h.split(), r.split())} for h, r in zip(hyps, refs, strict=True)]

    def signature(self, key: str | None = None) -> Signature:
        """Records the resolved tokenizer (``auto`` alone would not say jieba or PTB)."""
        return Signature.for_plugin(self.name, key, [("tok", self.tokenizer.signature()), ("agg", "sample")])
