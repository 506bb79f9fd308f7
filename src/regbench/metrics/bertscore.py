"""BERTScore via the bert-score package, from local weights only.

The model is a path, a name in ``regbench weights``, or a hub id present in the local Hugging
Face cache; ``model: auto`` takes MedRegA's choices (DeBERTa-xlarge-MNLI for English,
multilingual BERT for Chinese). Baseline rescaling runs only with a baseline file (bert-score
silently returns raw scores when its own is missing; regbench refuses instead). IDF weights
are fitted on the references by default, or on the predictions as MedRegA's code does.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from regbench.errors import DataError, RegbenchError
from regbench.metrics.base import Metric, Stats, register_metric
from regbench.signature import Signature
from regbench.types import Parsed, Sample
from regbench.weights import REQUIREMENTS, resolve_model

# Layers bert-score uses for these models (its model2layers table).
KNOWN_LAYERS = {
    "deberta-xlarge-mnli": 40,
    "bert-base-multilingual-cased": 9,
    "distilroberta-base": 5,
    "roberta-large": 17,
    "microsoft/deberta-xlarge-mnli": 40,
}
AUTO_MODEL = {"en": "microsoft/deberta-xlarge-mnli", "zh": "bert-base-multilingual-cased"}


class BERTScoreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    model: str = "auto"
    """A local directory or cached hub id; ``auto``: deberta-xlarge-mnli (en), bert-base-multilingual-cased (zh)."""
    layer: int | None = Field(None, ge=0)
    """Hidden layer to use; required unless the model is one bert-score knows."""
    idf: bool = False
    """Weight tokens by inverse document frequency."""
    idf_on: Literal["references", "predictions"] = "references"
    """Which texts the IDF weights are fitted on (with ``idf: true``)."""
    rescale: bool = False
    """Rescale with a baseline file (needs ``baseline_path``)."""
    baseline_path: str | None = None
    """A CSV of baselines (columns LAYER,P,R,F) for ``rescale``."""
    batch_size: int = Field(32, gt=0)
    """Texts per forward pass."""
    device: str = "auto"
    """``cpu``, ``cuda``, ``cuda:1``; ``auto``: cuda when available."""


def model_label(name: str, model_dir: Path) -> str:
    """A readable model name for signatures, also when the model was given as a directory.

    A hub id or requirement name stays as given; a Hugging Face cache snapshot gives its
    repository id; a known requirement's directory gives the requirement name; any other
    directory gives its last two path parts (a bare ``model`` folder says nothing).
    """
    if not Path(name).expanduser().exists():
        return name
    resolved = model_dir.resolve()
    for part in resolved.parts:
        if part.startswith("models--"):
            return part.removeprefix("models--").replace("--", "/")
    for requirement in REQUIREMENTS.values():
        if any(candidate.resolve() == resolved for candidate in requirement.candidates()):
            return requirement.name
    return "/".join(resolved.parts[-2:])


@register_metric("bertscore")
class BERTScore(Metric):
    """BERTScore precision, recall and F1 with a named local model and layer."""

    keys = {"bertscore_p": True, "bertscore_r": True, "bertscore_f1": True}
    Options = BERTScoreOptions

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        opts = self.opts
        self.model_name = (
            AUTO_MODEL.get(self.context.language, AUTO_MODEL["en"]) if opts.model == "auto" else opts.model
        )
        self.model_dir = resolve_model(self.model_name, used_by="bertscore")
        short = self.model_name.rstrip("/").split("/")[-1]
        self.layer = opts.layer if opts.layer is not None else KNOWN_LAYERS.get(short)
        if self.layer is None:
            raise RegbenchError(f"bertscore: give `layer:` for model {self.model_name!r} (bert-score has no default)")
        if opts.rescale and not (opts.baseline_path and Path(opts.baseline_path).is_file()):
            raise RegbenchError(
                "bertscore: `rescale: true` needs `baseline_path:` (a CSV with columns LAYER,P,R,F); without it "
                "bert-score silently returns unrescaled scores"
            )
        self._scorer: Any = None

    @property
    def opts(self) -> BERTScoreOptions:
        return self.options  # type: ignore[return-value]

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        self.scorer()

    def scorer(self) -> Any:
        if self._scorer is None:
            import torch
            from bert_score import BERTScorer

            device = self.opts.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._scorer = BERTScorer(
                model_type=str(self.model_dir),
                num_layers=self.layer,
                lang=self.context.language,
                idf=self.opts.idf,
                idf_sents=None,
                rescale_with_baseline=self.opts.rescale,
                baseline_path=self.opts.baseline_path,
                batch_size=self.opts.batch_size,
                device=device,
            )
        return self._scorer

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        if not items:
            return []
        cands = [p.text for p, _ in items]
        refs = [s.answer for _, s in items]
        scorer = self.scorer()
        if self.opts.idf:
            scorer.compute_idf(cands if self.opts.idf_on == "predictions" else refs)
        precision, recall, f1 = scorer.score(cands, refs, verbose=False)
        return [
            {"bertscore_p": float(p), "bertscore_r": float(r), "bertscore_f1": float(f)}
            for p, r, f in zip(precision.tolist(), recall.tolist(), f1.tolist(), strict=True)
        ]

    def rejoin(self, stats: Sequence[Stats]) -> list[Stats]:
        if self.opts.idf:  # each shard fitted IDF weights on its own samples; the texts are not in the stats
            raise DataError(
                "bertscore with `idf: true` cannot be merged from shards: each shard fitted its IDF weights on "
                "its own samples; run the task unsharded"
            )
        return list(stats)

    def signature(self, key: str | None = None) -> Signature:
        """The model by a readable name, the layer, IDF and rescaling, and the bert-score version."""
        opts = self.opts
        parts = [
            ("model", model_label(self.model_name, self.model_dir)),
            ("layer", str(self.layer)),
            ("idf", opts.idf_on if opts.idf else "no"),
            ("rescale", "yes" if opts.rescale else "no"),
            ("bert-score", importlib.metadata.version("bert-score")),
        ]
        return Signature.for_plugin(self.name, key, parts)
