"""Metric plugins. Built-ins are registered lazily (``"module:Class"``) so that importing
regbench does not import torch, jieba or a JVM wrapper until a task asks for them."""

from regbench.metrics.base import (
    METRICS,
    Bounds,
    Joint,
    KeyFacts,
    Metric,
    MetricContext,
    NoOptions,
    Scale,
    Stats,
    metric_facts,
    register_metric,
)
from regbench.metrics.build import build_plugins

_BUILTIN = {
    "region_aligned": "regbench.metrics.region:RegionAligned",
    "grounding": "regbench.metrics.region:Grounding",
    "box_regression": "regbench.metrics.region:BoxRegression",
    "nlg": "regbench.metrics.nlg:NLG",
    "bertscore": "regbench.metrics.bertscore:BERTScore",
    "rouge1": "regbench.metrics.rouge:Rouge1",
    "vqa": "regbench.metrics.vqa:VQA",
    "region_to_text": "regbench.metrics.region_text:RegionToText",
    "classification": "regbench.metrics.classification:Classification",
    "chexbert": "regbench.metrics.chexbert:CheXbert",
    "radgraph": "regbench.metrics.radgraph:RadGraph",
    "radcliq": "regbench.metrics.radcliq:RadCliQ",
    "semantic_entropy": "regbench.metrics.uncertainty:SemanticEntropy",
    "kendall_tau": "regbench.metrics.agreement:KendallTau",
    "prognosis": "regbench.metrics.prognosis:Prognosis",
    "llm_judge": "regbench.metrics.llm_judge:LLMJudge",
    "green": "regbench.metrics.green:Green",
}
for _name, _target in _BUILTIN.items():
    METRICS.add(_name, _target)

__all__ = [
    "METRICS",
    "Bounds",
    "Joint",
    "KeyFacts",
    "Metric",
    "MetricContext",
    "NoOptions",
    "Scale",
    "Stats",
    "build_plugins",
    "metric_facts",
    "register_metric",
]
