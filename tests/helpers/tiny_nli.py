"""A tiny NLI checkpoint for tests: a 2-layer BERT sequence classifier with MNLI's three labels, random
weights, saved with save_pretrained, so regbench loads it through AutoModelForSequenceClassification
exactly as it would load DeBERTa-large-MNLI. A random tiny BERT gives one verdict for nearly every pair
(its tanh pooler saturates), so tests that need a known clustering pass ``lean``: the classifier's
bias then makes that label win every pair, through the same forward pass."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from tests.helpers.tiny_bert import write_encoder

LABELS = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}


def write_nli(directory: Path, *, seed: int = 0, lean: str | None = None) -> Path:
    """Write the checkpoint to ``directory``; ``lean`` (``ENTAILMENT``, ...) makes that label win every pair."""
    config = write_encoder(directory)
    config.num_labels = 3
    config.id2label = LABELS
    config.label2id = {v: k for k, v in LABELS.items()}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    if lean is not None:
        with torch.no_grad():
            model.classifier.bias[:] = -100.0
            model.classifier.bias[config.label2id[lean]] = 100.0
    model.save_pretrained(directory)
    return directory


def verdicts(directory: Path, pairs: list[tuple[str, str]]) -> list[str]:
    """Each pair classified alone (no batching, no padding), as the reference for regbench's batches."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    out = []
    for premise, hypothesis in pairs:
        with torch.inference_mode():
            logits = model(**tokenizer(premise, hypothesis, return_tensors="pt")).logits
        out.append(LABELS[int(logits.argmax())].lower())
    return out
