"""coco-caption NLG metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) on pycocoevalcap, EN and ZH.

Per sample the plugin keeps the tokenised hypothesis and reference (and METEOR's
sufficient-statistics line); ``finalize`` runs the pycocoevalcap scorers on exactly the
samples it is given, so the corpus value is pycocoevalcap's for that list. Bootstrap
resamples are scored all at once (``finalize_weighted``): BLEU from pycocoevalcap's per-sample
n-gram statistics, CIDEr-D from sparse n-gram tables with each resample's document
frequencies, METEOR from summed statistics lines, each equal to rerunning pycocoevalcap on
the resample (tested). English is PTB-tokenised as coco-caption does; Chinese is cut by
jieba (or per character) with punctuation dropped; ROUGE-L and the n-gram metrics then
count the Chinese tokens (MedRegA's released code ran ROUGE through a tokenizer that keeps
only ``[a-z0-9]`` and so scored Chinese reports on their Latin letters and digits alone).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from regbench.errors import RegbenchError
from regbench.metrics.base import Metric, Stats, mean_of_sample_scores, register_metric, weighted_means
from regbench.metrics.tokenize import Tokenizer, get_tokenizer, java
from regbench.signature import Part, Signature
from regbench.types import Parsed, Sample

BLEU_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4")


class NLGOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    tokenizer: Literal["auto", "ptb", "jieba", "char", "whitespace"] = "auto"
    """``auto``: PTB for English, jieba for Chinese (the task's language decides)."""
    agg: Literal["corpus", "sample"] = "corpus"
    """``corpus``: coco-caption's pooled scores; ``sample``: mean of per-sample scores (MedRegA ZH, M3D)."""
    meteor: bool = True
    """METEOR needs a Java process (about 10 s to start); turn it off to skip it."""
    spice: bool = False
    """Unavailable (``true`` is an error): SPICE needs CoreNLP jars pycocoevalcap downloads on first use."""
    user_dict: str | None = None
    """A jieba user dictionary of medical terms (recorded in the signature by content hash)."""


def _quiet(function: Any, *args: Any) -> Any:
    """Call a pycocoevalcap scorer with its debug prints captured."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def _as_coco(texts: Sequence[str]) -> dict[int, list[str]]:
    return {i: [t] for i, t in enumerate(texts)}


def bleu_scores(hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[float], list[list[float]]]:
    """pycocoevalcap BLEU-1..4 over tokenised strings: the corpus values and the per-sample ones."""
    from pycocoevalcap.bleu.bleu import Bleu

    corpus, per_sample = _quiet(Bleu(4).compute_score, _as_coco(refs), _as_coco(hyps))
    return list(corpus), [list(map(float, values)) for values in zip(*per_sample, strict=True)]


def rouge_l(hyp: str, ref: str) -> float:
    """coco-caption ROUGE-L (LCS F-measure, beta 1.2) of one pair; 0 when either side is empty."""
    from pycocoevalcap.rouge.rouge import Rouge

    if not hyp.split() or not ref.split():
        return 0.0  # pycocoevalcap divides by the token count and would raise
    return float(Rouge().calc_score([hyp], [ref]))


def cider_scores(hyps: Sequence[str], refs: Sequence[str]) -> tuple[float, list[float]]:
    """CIDEr-D with document frequencies from exactly these samples."""
    from pycocoevalcap.cider.cider import Cider

    corpus, per_sample = _quiet(Cider().compute_score, _as_coco(refs), _as_coco(hyps))
    return float(corpus), [float(v) for v in per_sample]


def bleu_counts(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """pycocoevalcap's per-sample BLEU statistics, ``(n, 10)``: test length, reference length,
    then guessed and correct n-gram counts for n = 1..4 (its ``cook_test`` on one reference)."""
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    rows = []
    for hyp, ref in zip(hyps, refs, strict=True):
        cooked = cook_test(hyp, cook_refs([ref]))
        rows.append([cooked["testlen"], cooked["reflen"][0], *cooked["guess"], *cooked["correct"]])
    return np.array(rows, dtype=np.float64).reshape(len(rows), 10)


def corpus_bleu_weighted(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """pycocoevalcap's corpus BLEU-1..4 of each resample (row of draw counts), ``(T, 4)``.

    Its ``compute_score`` sums the per-sample statistics, then applies the same constants.
    """
    tiny, small = 1e-15, 1e-9
    totals = weights @ counts
    testlen, reflen, guess, correct = totals[:, 0], totals[:, 1], totals[:, 2:6], totals[:, 6:10]
    precision = np.cumprod((correct + tiny) / (guess + small), axis=1)
    bleu = precision ** (1.0 / np.arange(1, 5))
    ratio = (testlen + tiny) / (reflen + small)
    with np.errstate(divide="ignore", over="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleu * brevity[:, None]


class CiderTables:
    """CIDEr-D (pycocoevalcap's ``CiderScorer``, one reference per sample) of many resamples at once.

    A resample changes the document frequencies, so every sample's score changes with it. With
    one reference per sample, pycocoevalcap's clipped similarity for n-gram order k is
    ``sum_g min(h_g, r_g) r_g idf_g^2 / (|h idf| |r idf|)`` (idf is never negative), which is
    linear in ``idf^2``: one sparse product per order scores every sample under every resample.
    """

    def __init__(self, hyps: Sequence[str], refs: Sequence[str], sigma: float = 6.0) -> None:
        from pycocoevalcap.cider.cider_scorer import precook
        from scipy import sparse

        vocabulary: dict[tuple[str, ...], int] = {}
        entries: dict[str, tuple[list[int], list[int], list[float]]] = {"hyp": ([], [], []), "ref": ([], [], [])}
        lengths = {"hyp": np.zeros(len(hyps)), "ref": np.zeros(len(refs))}
        for side, texts in (("hyp", hyps), ("ref", refs)):
            rows, cols, values = entries[side]
            for i, text in enumerate(texts):
                for ngram, count in precook(text).items():
                    rows.append(i)
                    cols.append(vocabulary.setdefault(ngram, len(vocabulary)))
                    values.append(float(count))
                    if len(ngram) == 2:  # pycocoevalcap's "length" counts bigrams
                        lengths[side][i] += count
        shape = (len(hyps), len(vocabulary))
        self.hyp = sparse.csr_matrix((entries["hyp"][2], entries["hyp"][:2]), shape=shape)
        self.ref = sparse.csr_matrix((entries["ref"][2], entries["ref"][:2]), shape=shape)
        self.order = np.zeros(len(vocabulary), dtype=np.intp)
        for ngram, index in vocabulary.items():
            self.order[index] = len(ngram) - 1
        self.present = (self.ref > 0).astype(np.float64).tocsc()
        self.clipped = self.hyp.minimum(self.ref).multiply(self.ref).tocsr()
        delta = lengths["hyp"] - lengths["ref"]
        self.penalty = np.e ** (-(delta**2) / (2 * sigma**2))
        self.n = len(hyps)

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """Corpus CIDEr-D of each resample, ``(T,)``."""
        document_frequency = (self.present.T @ weights.T).T  # (T, vocabulary)
        size = weights.sum(axis=1, keepdims=True)  # the resample's number of entries (pycocoevalcap's len(crefs))
        idf = np.log(size) - np.log(np.maximum(1.0, document_frequency))
        squared = idf**2
        per_order = np.zeros((len(weights), self.n))
        for k in range(4):
            columns = np.flatnonzero(self.order == k)
            q = squared[:, columns]
            overlap = (self.clipped[:, columns] @ q.T).T
            norms = np.sqrt((self.hyp[:, columns].power(2) @ q.T).T) * np.sqrt((self.ref[:, columns].power(2) @ q.T).T)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.where(norms != 0, overlap / norms, overlap)
            per_order += value * self.penalty
        sample_scores = per_order / 4 * 10.0
        return (weights * sample_scores).sum(axis=1) / size[:, 0]


@functools.cache
def shared_meteor() -> MeteorProcess:
    """The METEOR JVM shared by every nlg plugin of this process (it takes ~10 s to start)."""
    process = MeteorProcess()
    atexit.register(process.close)
    return process


class MeteorProcess:
    """One METEOR 1.5 JVM for a run (pycocoevalcap's jar and its wrapper's protocol)."""

    def __init__(self) -> None:
        java()
        from pycocoevalcap.meteor.meteor import Meteor

        self._meteor = Meteor()
        self._lock = threading.Lock()

    def stats(self, hyp: str, ref: str) -> str:
        """METEOR's sufficient-statistics line for one pair."""
        with self._lock:
            return str(self._meteor._stat(hyp, [ref]))

    def evaluate(self, stats_lines: Sequence[str]) -> tuple[float, list[float]]:
        """The corpus score (METEOR's aggregate of the statistics) and per-segment scores."""
        if not stats_lines:
            return 0.0, []
        process = self._meteor.meteor_p
        with self._lock:
            process.stdin.write(("EVAL ||| " + " ||| ".join(stats_lines) + "\n").encode())
            process.stdin.flush()
            segments = [float(process.stdout.readline().strip()) for _ in stats_lines]
            corpus = float(process.stdout.readline().strip())
        return corpus, segments

    def close(self) -> None:
        with self._lock:
            process = self._meteor.meteor_p
            if process.poll() is None:
                process.stdin.close()
                process.kill()
                process.wait()


@register_metric("nlg")
class NLG(Metric):
    """coco-caption BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap), English and Chinese."""

    keys = {"bleu1": True, "bleu2": True, "bleu3": True, "bleu4": True, "meteor": True, "rouge_l": True, "cider": True}
    key_scale = {"cider": "raw"}
    key_bounds = {"cider": (0.0, 10.0)}  # pycocoevalcap's CIDEr-D: x10, length penalty, clipped counts
    Options = NLGOptions
    aggregation = "corpus"
    bootstrap_trials = 1000

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        opts: NLGOptions = self.options  # type: ignore[assignment]
        if opts.spice:
            raise RegbenchError(
                "SPICE is unavailable: it needs the Stanford CoreNLP 3.6.0 jars, which pycocoevalcap downloads on "
                "first use and which cannot be fetched here; remove `spice: true` from the nlg options"
            )
        self.aggregation = "mean" if opts.agg == "sample" else "corpus"  # type: ignore[misc]
        self._last: tuple[list[Stats] | None, dict[str, float]] = (None, {})
        self._tables: tuple[Sequence[Stats], np.ndarray, CiderTables] | None = None
        self.tokenizer: Tokenizer = get_tokenizer(
            opts.tokenizer, language=self.context.language, user_dict=opts.user_dict
        )

    @property
    def opts(self) -> NLGOptions:
        return self.options  # type: ignore[return-value]

    def output_keys(self) -> dict[str, bool]:
        return {k: v for k, v in self.keys.items() if k != "meteor" or self.opts.meteor}

    def meteor(self) -> MeteorProcess:
        return shared_meteor()

    # -- per sample -----------------------------------------------------------------------
    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        if not items:
            return []
        tokens = self.tokenizer([p.text for p, _ in items] + [s.answer for _, s in items])
        hyps, refs = tokens[: len(items)], tokens[len(items) :]
        corpus_bleu, bleu = bleu_scores(hyps, refs)
        corpus_cider, cider = cider_scores(hyps, refs)
        corpus: dict[str, float] = {**dict(zip(BLEU_KEYS, map(float, corpus_bleu), strict=True)), "cider": corpus_cider}
        rows: list[Stats] = []
        for i, (hyp, ref) in enumerate(zip(hyps, refs, strict=True)):
            row: Stats = {"hyp": hyp, "ref": ref, **dict(zip(BLEU_KEYS, bleu[i], strict=True))}
            row["rouge_l"] = rouge_l(hyp, ref)
            row["cider"] = cider[i]  # with document frequencies of the whole split
            rows.append(row)
        if self.opts.meteor:
            meteor = self.meteor()
            lines = [meteor.stats(r["hyp"], r["ref"]) for r in rows]
            corpus["meteor"], segments = meteor.evaluate(lines)
            for row, line, segment in zip(rows, lines, segments, strict=True):
                row["meteor_stats"], row["meteor"] = line, segment
        # The scorers just ran on exactly this split: finalize on this very list reuses their corpus values.
        self._last = (rows, corpus)
        return rows

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {key: stats.get(key) for key in self.output_keys()}

    def rejoin(self, stats: Sequence[Stats]) -> list[Stats]:
        """Per-sample CIDEr-D again, with the document frequencies of the whole merged split."""
        if not stats:
            return []
        _, cider = cider_scores([s["hyp"] for s in stats], [s["ref"] for s in stats])
        return [{**row, "cider": value} for row, value in zip(stats, cider, strict=True)]

    # -- aggregate ------------------------------------------------------------------------
    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        if not stats:
            return {}
        if self.opts.agg == "sample":
            return mean_of_sample_scores([self.sample_scores(s) for s in stats])
        rows, corpus = self._last
        if stats is rows:
            return {**corpus, "rouge_l": sum(s["rouge_l"] for s in stats) / len(stats)}
        hyps, refs = [s["hyp"] for s in stats], [s["ref"] for s in stats]
        corpus_bleu, _ = bleu_scores(hyps, refs)
        values = dict(zip(BLEU_KEYS, map(float, corpus_bleu), strict=True))
        values["rouge_l"] = sum(s["rouge_l"] for s in stats) / len(stats)  # coco-caption: mean over samples
        values["cider"], _ = cider_scores(hyps, refs)
        if self.opts.meteor:
            values["meteor"], _ = self.meteor().evaluate([s["meteor_stats"] for s in stats])
        return values

    def finalize_weighted(self, stats: Sequence[Stats], weights: np.ndarray) -> dict[str, np.ndarray] | None:
        """Corpus values of many resamples: BLEU and CIDEr-D from per-sample tables, ROUGE-L as a
        mean, METEOR from summed statistics (each equal to pycocoevalcap on the resample, tested)."""
        if self.opts.agg == "sample":
            return None
        if self._tables is None or self._tables[0] is not stats:
            hyps, refs = [s["hyp"] for s in stats], [s["ref"] for s in stats]
            self._tables = (stats, bleu_counts(hyps, refs), CiderTables(hyps, refs))
        _, counts, cider = self._tables
        out = dict(zip(BLEU_KEYS, corpus_bleu_weighted(counts, weights).T, strict=True))
        out["rouge_l"] = weighted_means(np.array([[s["rouge_l"]] for s in stats]), weights)[:, 0]
        out["cider"] = cider.scores(weights)
        if self.opts.meteor:
            out["meteor"] = self._meteor_weighted([s["meteor_stats"] for s in stats], weights)
        return out

    def _meteor_weighted(self, lines: list[str], weights: np.ndarray) -> np.ndarray:
        """METEOR's corpus score is its score of the summed statistics lines: one summed line per
        resample, all scored in one call to the METEOR process. As METEOR aggregates, a segment
        that matches its reference exactly (all words, one chunk) adds no chunk: the last three
        fields of a line are chunks, test word matches, reference word matches."""
        table = np.array([line.split() for line in lines], dtype=np.float64)
        exact = (table[:, -3] == 1) & (table[:, -2] == table[:, 0]) & (table[:, -1] == table[:, 1])
        table[exact, -3] = 0.0
        totals = weights @ table
        summed = [" ".join(str(int(x)) if x.is_integer() else repr(float(x)) for x in row) for row in totals]
        return np.array(self.meteor().evaluate(summed)[1])

    def signature(self, key: str | None = None) -> Signature:
        """The resolved tokenizer and aggregation; BLEU's order says which BLEU, CIDEr is CIDEr-D."""
        parts: list[Part] = [("tok", self.tokenizer.signature()), ("agg", self.opts.agg)]
        if key == "cider":
            parts.append(("cider", "D"))
        parts.append(("impl", "pycocoevalcap-1.2"))
        qualifiers = [("n", key[-1])] if key and key.startswith("bleu") else []
        return Signature.for_plugin(self.name, key, parts, qualifiers=qualifiers)
