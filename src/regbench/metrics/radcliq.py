"""RadCliQ v0 and v1 (Yu et al. 2023; rajpurkarlab/CXR-Report-Metric), per report then averaged.

Inputs per report, exactly as the reference recipe computes them: RadGraph F1 as the mean of
entity and relation F1 (``radgraph_f1``), BERTScore F1 with distilroberta-base layer 5 and
baseline rescaling, CheXbert embedding similarity, and BLEU-2 on lower-cased tokens with "."
split off. Each is standardised with the published scaler and combined with the published
linear weights (constants below, read from the reference pickles). Lower is better. When a
model an input needs is missing, the plugin refuses (WeightsMissingError) rather than compute
a different RadCliQ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from regbench.metrics.base import Metric, MetricContext, Stats, register_metric
from regbench.signature import Part, Signature
from regbench.types import Parsed, Sample
from regbench.weights import build_all

# Feature order: radgraph_combined, bertscore, semb (CheXbert similarity), bleu2.
V0_MEAN = np.array([0.5398376019082272, 0.6312549595000001, 0.7716797866672277, 0.4607372064809605])
V0_SCALE = np.array([0.3018344440559102, 0.22466950746141123, 0.24750333805236252, 0.30336670936092264])
V0_COEF = np.array([-0.4796252644863446, -0.6762170542369337, -0.46366575161751994, 0.2165861905287535])
V0_INTERCEPT = 1.641666666666666
V1_MEAN = np.array([0.5379231241355762, 0.6175725628125001, 0.7647942121140658, 0.44738335396242174])
V1_SCALE = np.array([0.3028258411486429, 0.22430938459304575, 0.2539439110169773, 0.2989271671041838])
V1_COEF = np.array([-0.37708368261038905, -0.37030009974480316, -0.25261621789593225, 4.315048405024756e-12])
V1_INTERCEPT = 2.466552561323256e-10


def radcliq_v0(features: np.ndarray) -> np.ndarray:
    """RadCliQ-v0 of rows ``[radgraph, bertscore, semb, bleu2]``."""
    return V0_INTERCEPT + ((np.asarray(features) - V0_MEAN) / V0_SCALE) @ V0_COEF


def radcliq_v1(features: np.ndarray) -> np.ndarray:
    """RadCliQ-v1 of rows ``[radgraph, bertscore, semb, bleu2]``."""
    return ((np.asarray(features) - V1_MEAN) / V1_SCALE) @ V1_COEF + V1_INTERCEPT


def recipe_tokens(report: str) -> list[str]:
    """The reference's BLEU tokenisation: lower case, "." split off, split on spaces."""
    return [t for t in report.lower().replace(".", " .").split(" ") if t]


def bleu2(hyp: Sequence[str], ref: Sequence[str]) -> float:
    """Sentence BLEU-2 as the RadCliQ recipe gets it from ``fast_bleu.BLEU`` with its defaults.

    Weights 1/2, 1/2, brevity penalty, and fast_bleu's default smoothing (NLTK's method 1): an
    order with no match counts 0.1 matches out of ``max(1, hypothesis n-grams)``; the score is 0
    only when no unigram matches (or either side is empty). So "x" against "x" is sqrt(0.1).
    """
    if not hyp or not ref:
        return 0.0
    log_precision = 0.0
    for n in (1, 2):
        grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
        ref_grams = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        matched = sum(min(c, ref_grams[g]) for g, c in grams.items())
        if matched == 0 and n == 1:
            return 0.0
        log_precision += math.log(max(matched, 0.1) / max(1, sum(grams.values()))) / 2
    brevity = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return brevity * math.exp(log_precision)


class RadCliQOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    chexbert_checkpoint: str | None = None
    """chexbert.pth for the CheXbert similarity input; default: REGBENCH_WEIGHTS_DIR/chexbert.pth."""
    chexbert_encoder: str = "bert-base-uncased"
    """The BERT config and tokenizer of CheXbert (as chexbert's ``encoder``)."""
    bertscore_model: str = "distilroberta-base"
    """The BERTScore input's model (layer 5, rescaled with the bundled baseline, as RadCliQ was fitted)."""
    radgraph_model_dir: str | None = None
    """The RadGraph F1 input's model directory; default REGBENCH_WEIGHTS_DIR/radgraph."""


@register_metric("radcliq")
class RadCliQ(Metric):
    """RadCliQ-v0 and -v1 composites of RadGraph, BERTScore, CheXbert similarity and BLEU-2 (lower is better)."""

    keys = {"radcliq_v0": False, "radcliq_v1": False}
    scale = "raw"
    bounds = (None, None)  # a linear model of the four inputs: no fixed range
    Options = RadCliQOptions

    def __init__(self, options: BaseModel | None = None, context: MetricContext | None = None) -> None:
        super().__init__(options, context)
        from regbench.metrics.bertscore import BERTScore, BERTScoreOptions
        from regbench.metrics.chexbert import CheXbert, CheXbertOptions
        from regbench.metrics.radgraph import RadGraph, RadGraphOptions

        opts: RadCliQOptions = self.options  # type: ignore[assignment]
        # Each input is the reference's: missing models raise WeightsMissingError here, at start-up, all named.
        self.chexbert, self.bertscore, self.radgraph = build_all(
            [
                lambda: CheXbert(
                    CheXbertOptions(checkpoint=opts.chexbert_checkpoint, encoder=opts.chexbert_encoder), self.context
                ),
                lambda: BERTScore(
                    BERTScoreOptions(
                        model=opts.bertscore_model, layer=5, rescale=True, baseline_path=_bundled_baseline()
                    ),
                    self.context,
                ),
                lambda: RadGraph(RadGraphOptions(model_dir=opts.radgraph_model_dir), self.context),
            ]
        )

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        for plugin in (self.chexbert, self.bertscore, self.radgraph):
            plugin.prepare()

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        semb = [s["chexbert_similarity"] for s in self.chexbert.stats_batch(items)]
        bert = [s["bertscore_f1"] for s in self.bertscore.stats_batch(items)]
        graph = [s["radgraph_f1"] for s in self.radgraph.stats_batch(items)]
        bleu = [bleu2(recipe_tokens(p.text), recipe_tokens(s.answer)) for p, s in items]
        features = np.column_stack([graph, bert, semb, bleu])
        v0, v1 = radcliq_v0(features), radcliq_v1(features)
        return [
            {"features": f.tolist(), "radcliq_v0": float(a), "radcliq_v1": float(b)}
            for f, a, b in zip(features, v0, v1, strict=True)
        ]

    def signature(self, key: str | None = None) -> Signature:
        """The composite's identity is its inputs': every part of the CheXbert, BERTScore and RadGraph
        signatures (checkpoint hash, model, layer, rescaling, versions), each prefixed with its
        plugin's name, and the BLEU-2 definition."""
        parts: list[Part] = [("bleu2", "fast_bleu-smooth1")]
        for plugin in (self.chexbert, self.bertscore, self.radgraph):
            inner = plugin.signature()
            parts += [(f"{plugin.name}.{name}", value) for name, value in (*inner.qualifiers, *inner.parts)]
        return Signature.for_plugin(self.name, key, parts)


def _bundled_baseline() -> str | None:
    """bert-score's own rescaling baseline for distilroberta-base, as the reference uses."""
    try:
        import bert_score
    except ImportError:
        return None
    path = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / "distilroberta-base.tsv"
    return str(path) if path.is_file() else None
