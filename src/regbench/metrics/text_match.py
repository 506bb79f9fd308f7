"""Short-answer matching shared by VQA and region-to-text: normalisation, token sets, BLEU-1.

Two normalisations: ``standard`` (lower case, punctuation removed except inside numbers,
whitespace collapsed; Chinese cut by jieba with punctuation dropped) and ``medrega``
(MedRegA's released ``cleanStr``: only ``, : .`` are touched, and they become commas that
stay glued to the words, so ``"Yes."`` is the token ``yes,``; see docs/text-metrics.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from regbench.metrics.tokenize import JiebaTokenizer

_PUNCT = re.compile(r"(?<!\d)[.,](?!\d)|[!?;:\"'`()\[\]{}<>/\\|*#@~^=+_，。！？；：、“”‘’（）【】《》]")
_MEDREGA_SYNONYMS = {
    "pa": "posterior anterior",
    "ivc": "inferior vena cava",
    "head": "brain",
    "both": "bilateral",
    "tumour": "tumor",
    "tumours": "tumors",
}


def normalise(text: str) -> str:
    """Lower case, punctuation removed (a decimal point stays), hyphens to spaces, whitespace collapsed."""
    text = _PUNCT.sub(" ", text.lower()).replace("-", " ")
    return re.sub(r"\s+", " ", text).strip()


def medrega_clean(text: str) -> str:
    """MedRegA's VQA ``cleanStr``: split on , : . and rejoin with commas, synonym map, '-' to space."""
    parts = [p for p in re.split(r"[,:.]", text) if "_" not in p]
    text = ",".join(parts).lower()
    words = [_MEDREGA_SYNONYMS.get(w, w) for w in text.split(" ")]
    return " ".join(words).replace("-", " ")


def tokens(text: str, *, language: str = "en", mode: str = "standard") -> list[str]:
    """The answer's tokens under a normalisation mode (a list; metrics take sets where the papers do)."""
    if language == "zh":
        if mode == "medrega":  # jieba precise mode on the raw string, punctuation kept
            import jieba

            return [t for t in jieba.lcut(text) if t.strip()]
        return JiebaTokenizer()([text])[0].split()
    if mode == "medrega":
        return medrega_clean(text).split()
    return normalise(text).split()


def token_prf(pred: Sequence[str], ref: Sequence[str], *, eps: float = 0.0) -> tuple[float, float, float]:
    """Precision, recall and F1 of token *sets*; 0 for an empty side. ``eps`` is MedRegA's F1 guard."""
    p, r = set(pred), set(ref)
    common = len(p & r)
    precision = common / len(p) if p else 0.0
    recall = common / len(r) if r else 0.0
    denominator = precision + recall + eps
    f1 = 2 * precision * recall / denominator if denominator else 0.0
    return precision, recall, f1


def bleu1(pred: Sequence[str], ref: Sequence[str]) -> float:
    """Sentence BLEU-1: clipped unigram precision times the brevity penalty, no smoothing."""
    if not pred or not ref:
        return 0.0
    ref_counts = Counter(ref)
    matched = sum(min(n, ref_counts[w]) for w, n in Counter(pred).items())
    precision = matched / len(pred)
    brevity = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return precision * brevity
