"""Short-answer matching shared by VQA and region-to-text: normalisation, token sets, BLEU-1.

Two normalisations: ``standard`` (lower case, punctuation and symbols removed except a
decimal point or comma inside a number, whitespace collapsed; Chinese cut by jieba with
punctuation dropped) and ``medrega`` (MedRegA's released ``cleanStr``: only ``, : .`` are
touched, and they become commas that stay glued to the words, so ``"Yes."`` is the token
``yes,``; see docs/text-metrics.md).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from regbench.metrics.tokenize import JiebaTokenizer

_MEDREGA_SYNONYMS = {
    "pa": "posterior anterior",
    "ivc": "inferior vena cava",
    "head": "brain",
    "both": "bilateral",
    "tumour": "tumor",
    "tumours": "tumors",
}


def normalise(text: str) -> str:
    """Lower case, punctuation and symbols (any Unicode P* or S* character) to spaces except a
    decimal point or thousands comma between digits, whitespace collapsed.

    >>> normalise("The answer is 2.5 cm… (T1-weighted).")
    'the answer is 2.5 cm t1 weighted'
    """
    text = text.lower()
    kept = [
        c
        if not unicodedata.category(c).startswith(("P", "S"))
        or (c in ".," and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit())
        else " "
        for i, c in enumerate(text)
    ]
    return " ".join("".join(kept).split())


def medrega_clean(text: str) -> str:
    """MedRegA's VQA ``cleanStr``: two passes of split on ``, : .`` (parts holding ``_`` dropped)
    and rejoin with commas, the first lower-casing, the second mapping each space-separated word
    of each part through its synonym table; then ``-`` to space.

    >>> medrega_clean("PA. Yes")
    'posterior anterior, yes'
    """
    first = ",".join(part for part in re.split(r"[,:.]", text) if "_" not in part).lower()
    parts = [
        " ".join(_MEDREGA_SYNONYMS.get(word, word) for word in part.split(" "))
        for part in re.split(r"[,:.]", first)
        if "_" not in part
    ]
    return ",".join(parts).replace("-", " ")


def tokens(text: str, *, language: str = "en", mode: str = "standard") -> list[str]:
    """The answer's tokens under a normalisation mode (a list; metrics take sets where the papers do)."""
    if language == "zh":
        if mode == "medrega":  # jieba precise mode on the raw string, punctuation and whitespace kept
            import jieba

            return [t for t in jieba.lcut(text) if t]
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
