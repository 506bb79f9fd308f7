"""Region-to-text identification (a box in, the region's name out): BLEU-1, token F1 / recall, accuracy.

``accuracy`` is the normalised exact match with the reference name (standard), or, in
``mode: medrega``, MedRegA's released rule: token recall >= 0.75 after lower-casing and
removing ``[[...]]`` box lists, on whitespace token sets. BERTScore of the names comes from
the ``bertscore`` plugin listed beside this one.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.text_match import bleu1, normalise, token_prf, tokens
from regbench.types import Parsed, Sample


class RegionToTextOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    mode: Literal["standard", "medrega"] = "standard"
    """``medrega``: MedRegA's released region-to-text evaluator (docs/region-metrics.md)."""
    synonyms: dict[str, list[str]] = {}
    """Reference name -> other names accepted as exact matches (standard mode)."""


@register_metric("region_to_text")
class RegionToText(Metric):
    """Name a boxed region: BLEU-1, token F1, token recall, accuracy."""

    keys = {"bleu1": True, "token_f1": True, "token_recall": True, "accuracy": True}
    Options = RegionToTextOptions

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        opts: RegionToTextOptions = self.options  # type: ignore[assignment]
        language = sample.language or self.context.language
        if opts.mode == "medrega":
            # the released evaluator reads the raw output (an exception listed at Metric.reads): only [[...]]
            # lists go, tags stay
            pred = re.sub(r"\[\[.*?\]\]", "", (parsed.raw or parsed.text).lower()).split()
            ref = sample.answer.lower().split()
            _, recall, f1 = token_prf(pred, ref, eps=1e-8)
            return {
                "bleu1": bleu1(pred, ref),
                "token_f1": f1,
                "token_recall": recall,
                "accuracy": float(recall >= 0.75),
            }
        pred, ref = tokens(parsed.text, language=language), tokens(sample.answer, language=language)
        _, recall, f1 = token_prf(pred, ref)
        accepted = {normalise(sample.answer), *(normalise(s) for s in opts.synonyms.get(sample.answer, []))}
        exact = normalise(parsed.text) in accepted if language == "en" else "".join(pred) == "".join(ref)
        return {"bleu1": bleu1(pred, ref), "token_f1": f1, "token_recall": recall, "accuracy": float(exact)}
