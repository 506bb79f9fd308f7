"""Semantic entropy over a question's M sampled answers (Farquhar et al. 2024; XMedGPT's variant).

The task asks each question M times (``samples_per_question``). The answers are clustered by
strict bidirectional entailment: an answer joins the first cluster whose first answer it entails
and is entailed by (both verdicts ``entailment``; identical texts are one meaning without asking).
With ``P(s)`` the exponential of an answer's log-likelihood (the sum of its token log-probabilities,
or their mean with ``length_normalised``; natural log), and sums over the M answers (duplicates count):

- ``semantic_entropy``: ``P(c) = sum_{s in c} P(s)`` normalised over the question's clusters, ``H =
  -sum_c P(c) ln P(c)`` (XMedGPT Eq. 2-4);
- ``discrete_semantic_entropy``: the same with ``P(c) = |c| / M`` (no likelihoods needed);
- ``semantic_entropy_xmedgpt``: XMedGPT's Eq. 5-6, literally: ``H = sum_c P(c) H_c`` with ``P(c)`` as
  above and ``H_c = -sum_{s in c} q(s) ln q(s)``, ``q(s) = P(s) / sum_{s' in c} P(s')``.

The verdicts come from a local NLI checkpoint (:mod:`regbench.metrics.nli`) or, when ``nli:`` names a
model (a name in ``regbench list models`` or a model YAML path, as a judged metric's ``judge:``), from
that model through the judge mechanism (:mod:`regbench.metrics.judged`): for each question the plugin
declares up front every ordered pair of its distinct answers (the pairs the clustering may compare:
``D (D - 1)`` requests for ``D`` distinct answers, none when all M are equal), the runner asks them
(cached, resumable) and hands the answers back. An answer the prompt's parser cannot read, or a pair
the judge could not answer, is not entailment (the two answers stay apart); unreadable ones are
counted in ``nli_parse_failures``.

A question with one cluster has semantic and discrete entropy exactly 0. Each question is
correct when the task's per-sample metric ``correct_if.metric`` (default ``token_f1``, from
``vqa``) of answer 0 reaches ``correct_if.threshold``; ``auroc_<key>`` is the AUROC of each entropy
as a predictor of a wrong answer (ties count one half, as scikit-learn's ``roc_auc_score``) and
``aurac_<key>`` the area under the rejection-accuracy curve: the mean, over the questions, of the
accuracy of the questions whose entropy is at most that question's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regbench.errors import RegbenchError
from regbench.metrics.base import Bounds, Joint, Scale, Stats, register_metric
from regbench.metrics.judged import JudgedMetric, JudgeRequest
from regbench.metrics.nli import Entails, Verdict, local_nli
from regbench.registry import spec_index
from regbench.signature import Signature
from regbench.types import Parsed, Sample, SampledAnswers
from regbench.weights import resolve_model, weights_dir

ENTROPIES = ("semantic_entropy", "discrete_semantic_entropy", "semantic_entropy_xmedgpt")
LIKELIHOOD = ("semantic_entropy", "semantic_entropy_xmedgpt")
"""The keys that need the answers' token log-probabilities."""
NLI_FAILURES = "nli_parse_failures"
"""The results.json key counting an NLI judge's answers that could not be read (an integer)."""


# ---------------------------------------------------------------- clustering


def cluster_questions(questions: Sequence[Sequence[str]], entails: Entails) -> list[list[int]]:
    """Each question's cluster ids (0, 1, ... in order of first appearance) by strict bidirectional
    entailment against each cluster's first answer. The questions are clustered side by side, one
    answer of each per round, so every round is a single batch of pairs for ``entails``."""
    ids: list[list[int]] = [[-1] * len(answers) for answers in questions]
    heads: list[list[str]] = [[] for _ in questions]  # each cluster's first answer
    rounds = max((len(a) for a in questions), default=0)
    for position in range(rounds):
        asks: list[tuple[int, int]] = []  # (question, cluster) whose head is compared with this round's answer
        pairs: list[tuple[str, str]] = []
        for q, answers in enumerate(questions):
            if position >= len(answers):
                continue
            text = answers[position]
            same = next((c for c, head in enumerate(heads[q]) if head.strip() == text.strip()), None)
            if same is not None:  # the same text is the same meaning: nothing to ask
                ids[q][position] = same
                continue
            for c, head in enumerate(heads[q]):
                asks.append((q, c))
                pairs += [(head, text), (text, head)]
        verdicts = entails(pairs) if pairs else []
        joined: dict[int, int] = {}
        for index, (q, c) in enumerate(asks):
            both = verdicts[2 * index] == "entailment" and verdicts[2 * index + 1] == "entailment"
            if both and q not in joined:
                joined[q] = c  # the first cluster that entails both ways
        for q, answers in enumerate(questions):
            if position >= len(answers) or ids[q][position] >= 0:
                continue
            if q in joined:
                ids[q][position] = joined[q]
            else:
                ids[q][position] = len(heads[q])
                heads[q].append(answers[position])
    return ids


# ---------------------------------------------------------------- entropies


def _normalised_cluster_logs(cluster_ids: Sequence[int], log_likelihoods: Sequence[float]) -> dict[int, float]:
    """``ln P(c)`` normalised over the clusters (Eq. 2 and Eq. 4), computed in log space."""
    logs = np.asarray(log_likelihoods, dtype=np.float64)
    ids = np.asarray(cluster_ids)
    per_cluster = {int(c): float(np.logaddexp.reduce(logs[ids == c])) for c in np.unique(ids)}
    total = float(np.logaddexp.reduce(np.array(list(per_cluster.values()))))
    return {c: value - total for c, value in per_cluster.items()}


def semantic_entropy(cluster_ids: Sequence[int], log_likelihoods: Sequence[float]) -> float:
    """``-sum_c P(c) ln P(c)``, ``P(c)`` the normalised sum of its answers' likelihoods; 0 for one cluster."""
    if len(set(cluster_ids)) <= 1:
        return 0.0
    logs = _normalised_cluster_logs(cluster_ids, log_likelihoods)
    return float(-sum(math.exp(v) * v for v in logs.values()))


def discrete_semantic_entropy(cluster_ids: Sequence[int]) -> float:
    """``-sum_c (|c|/M) ln(|c|/M)`` over the M answers; 0 for one cluster."""
    counts = np.bincount(np.asarray(cluster_ids))
    counts = counts[counts > 0]
    if len(counts) <= 1:
        return 0.0
    shares = counts / counts.sum()
    return float(-(shares * np.log(shares)).sum())


def xmedgpt_entropy(cluster_ids: Sequence[int], log_likelihoods: Sequence[float]) -> float:
    """XMedGPT's Eq. 6, ``sum_c P(c) H_c``, with Eq. 5's within-cluster entropy ``H_c`` of the answers'
    likelihoods renormalised inside the cluster (duplicates count: M equal answers give ``ln M``)."""
    logs = np.asarray(log_likelihoods, dtype=np.float64)
    ids = np.asarray(cluster_ids)
    weights = _normalised_cluster_logs(cluster_ids, log_likelihoods)
    total = 0.0
    for c, log_pc in weights.items():
        members = logs[ids == c]
        inside = members - np.logaddexp.reduce(members)
        total += math.exp(log_pc) * float(-(np.exp(inside) * inside).sum())
    return total


def sequence_log_likelihood(token_logprobs: Sequence[float], *, length_normalised: bool) -> float:
    """An answer's ``ln P(s)``: the sum of its token log-probabilities, or their mean."""
    if not token_logprobs:
        return 0.0
    total = float(math.fsum(token_logprobs))
    return total / len(token_logprobs) if length_normalised else total


# ---------------------------------------------------------------- error prediction


def auroc(positive: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve of ``scores`` for the ``positive`` class (ties count one half); ``None``
    when one class is absent."""
    labels = np.asarray(positive, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(values)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank (Mann-Whitney)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


def aurac(correct: Sequence[bool], uncertainty: Sequence[float]) -> float | None:
    """Area under the rejection-accuracy curve: the mean over questions of the accuracy of the questions
    whose uncertainty is at most that question's (ties are kept or rejected together); ``None`` if empty."""
    right = np.asarray(correct, dtype=np.float64)
    values = np.asarray(uncertainty, dtype=np.float64)
    if len(values) == 0:
        return None
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    kept = np.searchsorted(sorted_values, sorted_values, side="right")  # questions kept at each threshold
    cumulative = np.cumsum(right[order])
    return float(np.mean(cumulative[kept - 1] / kept))


# ---------------------------------------------------------------- an NLI judge's answers

_LABELS = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}
_LABEL = re.compile(r"\b(entailment|neutral|contradiction)\b", re.IGNORECASE)
_AFTER_VERDICT = re.compile(r"verdict\s*:\s*\**\s*([a-z]+)", re.IGNORECASE)


def parse_nli_verdict(text: str) -> tuple[Verdict | None, str | None]:
    """An NLI judge's label: the word after the last ``Verdict:`` when it is one of the three labels, else
    the one label the answer names; ``(None, reason)`` when there is none or several."""
    after = _AFTER_VERDICT.findall(text)
    if after and after[-1].lower() in _LABELS:
        return _LABELS[after[-1].lower()], None
    named = {match.lower() for match in _LABEL.findall(text)}
    if len(named) == 1:
        return _LABELS[named.pop()], None
    if not named:
        return None, "no entailment / neutral / contradiction label"
    return None, f"several labels ({', '.join(sorted(named))}) and no Verdict: line naming one"


def distinct_answers(texts: Sequence[str]) -> list[int]:
    """The positions of each distinct answer's first occurrence (compared stripped, as clustering does)."""
    first: dict[str, int] = {}
    for position, text in enumerate(texts):
        first.setdefault(text.strip(), position)
    return list(first.values())


def pair_purpose(premise: int, hypothesis: int) -> str:
    """The judge request key of "does answer ``premise`` entail answer ``hypothesis``" (answer positions)."""
    return f"entail:{premise}>{hypothesis}"


# ---------------------------------------------------------------- the plugin


class CorrectIf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    metric: str = "token_f1"
    """A per-sample key of the task's other metrics, scored on answer 0."""
    threshold: float = 0.5
    """Correct when the key's value is at least this; wrong below it."""


class SemanticEntropyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    nli: str = "deberta-large-mnli"
    """A local NLI checkpoint (a directory, a name in ``regbench weights``, a hub id in the local cache), or
    an NLI judge: a model name (``regbench list models``) or a model YAML path relative to the task YAML
    (its served name is in the signature)."""
    correct_if: CorrectIf = Field(default_factory=CorrectIf)
    """What makes answer 0 wrong: a per-sample key of the task's other metrics below a threshold."""
    length_normalised: bool = False
    """ln P(answer) as the mean of its token log-probabilities instead of their sum."""
    batch_size: int = Field(32, gt=0)
    """Premise-hypothesis pairs per NLI forward pass."""
    device: str = "auto"
    """Where the NLI model runs: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda:0``, ..."""
    nli_cache: bool = True
    """Keep NLI verdicts in ``<weights dir>/../nli-verdicts.sqlite`` (a rerun classifies nothing again)."""
    prompt: str | None = None
    """NLI judge only: an entailment prompt YAML (relative to the task YAML); default: the bundled
    ``entailment`` prompt."""
    temperature: float = Field(0.0, ge=0)
    """NLI judge only: the judge's sampling temperature (0: greedy)."""


@register_metric("semantic_entropy")
class SemanticEntropy(JudgedMetric):
    """Semantic, discrete and XMedGPT entropy of the sampled answers, and how well each predicts errors."""

    keys = {
        **dict.fromkeys(ENTROPIES, False),
        **{f"auroc_{k}": True for k in ENTROPIES},
        **{f"aurac_{k}": True for k in ENTROPIES},
        NLI_FAILURES: False,
    }
    key_scale: ClassVar[dict[str, Scale]] = dict.fromkeys([*ENTROPIES, NLI_FAILURES], "raw")
    key_bounds: ClassVar[dict[str, Bounds]] = dict.fromkeys([*ENTROPIES, NLI_FAILURES], (0.0, None))
    count_keys = frozenset({NLI_FAILURES})
    Options = SemanticEntropyOptions
    aggregation = "corpus"
    joint = True
    judge_option = "nli"
    parsers = ("nli_verdict",)
    default_prompt = "entailment"

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        if self.context.samples_per_question is None:
            raise RegbenchError(
                f"task {self.context.task}: the semantic_entropy metric needs `samples_per_question: M` "
                "(a top-level task field: each question is asked M times)"
            )
        self.m = self.context.samples_per_question
        self.nli_is_judge = self._names_a_model(self.opts.nli)
        self.nli_dir = None if self.nli_is_judge else resolve_model(self.opts.nli, used_by="semantic_entropy (nli)")
        self._entails: Entails | None = None

    def _names_a_model(self, value: str) -> bool:
        """A model YAML path or a model name (as ``judge:``) rather than a local checkpoint; an existing
        directory is always a checkpoint."""
        if value.endswith((".yaml", ".yml")):
            return True
        if self._relative(value).is_dir() or Path(value).expanduser().is_dir():
            return False
        return value in spec_index("model")

    @property
    def needs_judge(self) -> bool:
        return self.nli_is_judge

    def output_keys(self) -> dict[str, bool]:
        keys = dict(self.keys)
        if not self.nli_is_judge:
            del keys[NLI_FAILURES]
        return keys

    @property
    def opts(self) -> SemanticEntropyOptions:
        return self.options  # type: ignore[return-value]

    def requires(self) -> list[str]:
        return [self.opts.correct_if.metric]

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        if self.nli_is_judge:
            self.check()
        else:
            self.entails()

    def entails(self) -> Entails:
        if self.nli_dir is None:
            raise RuntimeError("semantic_entropy: the NLI is a judge, its verdicts come through receive")
        if self._entails is None:
            cache = weights_dir().parent / "nli-verdicts.sqlite" if self.opts.nli_cache else None
            self._entails = local_nli(
                Path(self.nli_dir), device=self.opts.device, batch_size=self.opts.batch_size, cache=cache
            )
        return self._entails

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        raise RegbenchError("semantic_entropy scores a question's sampled answers: it runs through stats_joint")

    # -- an NLI judge ------------------------------------------------------------------
    def judge_requests(
        self, parsed: Parsed | None, sample: Sample, sampled: SampledAnswers | None = None
    ) -> list[JudgeRequest]:
        """Every ordered pair of the question's distinct answers: the clustering compares an answer with
        the first answer of each earlier cluster, both ways, and which answers head clusters depends on
        the verdicts, so all pairs are asked up front (each once; equal texts need no verdict)."""
        if not self.nli_is_judge or parsed is None or sampled is None:
            return []
        texts = [t.strip() for t in sampled.texts]
        firsts = distinct_answers(texts)
        return [
            self.request(
                sample,
                {"question": sample.question, "premise": texts[a], "hypothesis": texts[b]},
                pair_purpose(a, b),
            )
            for i, first in enumerate(firsts)
            for later in firsts[i + 1 :]
            for a, b in ((first, later), (later, first))
        ]

    def _judged_verdicts(self, sample: Sample, texts: Sequence[str]) -> dict[str, tuple[Verdict | None, str | None]]:
        """Each pair's (verdict, why it could not be read) by request key; a pair without an answer is absent."""
        out: dict[str, tuple[Verdict | None, str | None]] = {}
        firsts = distinct_answers(texts)
        for a in firsts:
            for b in firsts:
                purpose = pair_purpose(a, b)
                answer = self.answer(sample, purpose) if a != b else None
                if answer is not None and answer.text is not None:
                    out[purpose] = parse_nli_verdict(answer.text)
        return out

    def _judged_entails(
        self, texts: Sequence[str], verdicts: Mapping[str, tuple[Verdict | None, str | None]]
    ) -> Entails:
        first = {texts[p].strip(): p for p in distinct_answers(texts)}

        def entails(pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
            # unreadable or unanswered: not entailment, so the two answers stay in different clusters
            found = [verdicts.get(pair_purpose(first[p.strip()], first[h.strip()]), (None, None)) for p, h in pairs]
            return [verdict or "neutral" for verdict, _ in found]

        return entails

    def judge_record(self, sample: Sample, stats: Stats) -> dict[str, Any] | None:
        """The NLI judge's answers of one question: per pair (``entail:A>B``, answer positions) the raw
        answer, the verdict read and why it could not be read."""
        answers = stats.get("answers")
        if not self.nli_is_judge or not answers:
            return None
        verdicts = self._judged_verdicts(sample, answers)
        pairs: dict[str, Any] = {}
        errors = []
        firsts = distinct_answers(answers)
        for a in firsts:
            for b in firsts:
                if a == b:
                    continue
                purpose = pair_purpose(a, b)
                answer = self.answer(sample, purpose)
                if answer is None:
                    continue
                verdict, reason = verdicts.get(purpose, (None, None))
                pairs[purpose] = {"raw": answer.text, "verdict": verdict, "parse_error": reason}
                if answer.error is not None:
                    pairs[purpose]["error"] = answer.error
                    errors.append(f"{purpose}: {answer.error}")
        if not pairs:
            return None
        record: dict[str, Any] = {"pairs": pairs}
        if errors:
            record["error"] = "; ".join(errors)
        return record

    def stats_joint(self, items: Sequence[tuple[Parsed, Sample]], joint: Joint) -> list[Stats]:
        rule = self.opts.correct_if
        sampled = [(i, s) for i, s in enumerate(joint.sampled) if s is not None]
        failures: dict[int, int] = {}
        if self.nli_is_judge:
            clusters = []
            for i, answers in sampled:
                verdicts = self._judged_verdicts(items[i][1], answers.texts)
                failures[i] = sum(reason is not None for _, reason in verdicts.values())
                clusters += cluster_questions([answers.texts], self._judged_entails(answers.texts, verdicts))
        else:
            clusters = cluster_questions([s.texts for _, s in sampled], self.entails())
        out: list[Stats] = [{"sampled": False} for _ in joint.sampled]
        for (i, answers), ids in zip(sampled, clusters, strict=True):
            value = joint.scores[i].get(rule.metric)
            logs = [
                None if t is None else sequence_log_likelihood(t, length_normalised=self.opts.length_normalised)
                for t in answers.token_logprobs
            ]
            have_logs = all(v is not None for v in logs)
            known = [float(v) for v in logs if v is not None]
            out[i] = {
                "sampled": True,
                "answers": answers.texts,
                "sequence_logprobs": logs,
                "cluster_ids": ids,
                "correct": None if value is None else bool(value >= rule.threshold),
                "same_text": len({t.strip() for t in answers.texts}) == 1,
                "semantic_entropy": semantic_entropy(ids, known) if have_logs else None,
                "discrete_semantic_entropy": discrete_semantic_entropy(ids),
                "semantic_entropy_xmedgpt": xmedgpt_entropy(ids, known) if have_logs else None,
            }
            if self.nli_is_judge:
                out[i][NLI_FAILURES] = failures[i]
        return out

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        scores = {key: stats.get(key) for key in ENTROPIES}
        if self.nli_is_judge:
            scores[NLI_FAILURES] = None  # a count over the split, not a per-sample value
        return scores

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        sampled = [s for s in stats if s.get("sampled")]
        without_logs = any(None in s["sequence_logprobs"] for s in sampled)
        values: dict[str, float] = {}
        for key in ENTROPIES:
            if without_logs and key in LIKELIHOOD:
                continue  # a mean over only the questions with likelihoods would be another number
            rows = [s for s in sampled if s.get(key) is not None]
            if not rows:
                continue
            values[key] = float(np.mean([s[key] for s in rows]))
            judged = [s for s in rows if s["correct"] is not None]
            area = auroc([not s["correct"] for s in judged], [s[key] for s in judged])
            if area is not None:
                values[f"auroc_{key}"] = area
            rejection = aurac([s["correct"] for s in judged], [s[key] for s in judged])
            if rejection is not None:
                values[f"aurac_{key}"] = rejection
        if self.nli_is_judge:
            values[NLI_FAILURES] = sum(int(s.get(NLI_FAILURES, 0)) for s in sampled)
        return values

    def notes(self, stats: Sequence[Stats]) -> list[str]:
        found = []
        sampled = [s for s in stats if s.get("sampled")]
        lacking = sum(None in s["sequence_logprobs"] for s in sampled)
        if lacking:
            found.append(
                f"semantic_entropy: {lacking} of {len(sampled)} questions have answers without token "
                "log-probabilities (the backend sent none), so the likelihood-based semantic_entropy and "
                "semantic_entropy_xmedgpt (and their AUROC / AURAC) are withheld; discrete_semantic_entropy is computed"
            )
        same = sum(bool(s.get("same_text")) for s in sampled)
        if same:
            found.append(
                f"semantic_entropy: {same} of {len(sampled)} questions got the same text in all {self.m} samples "
                "(does the backend ignore temperature and seed?); their semantic and discrete entropy is 0 "
                f"(XMedGPT's Eq. 6 counts the duplicates: ln {self.m} when their likelihoods are equal)"
            )
        unread = sum(int(s.get(NLI_FAILURES, 0)) for s in sampled)
        if unread:
            found.append(
                f"semantic_entropy: {unread} of the NLI judge's answers could not be read as entailment, neutral or "
                f"contradiction ({NLI_FAILURES}); each counts as not entailed (those two answers stay apart)"
            )
        judged = [s["correct"] for s in sampled if s.get("correct") is not None]
        if judged and len(set(judged)) == 1:
            state = "correct" if judged[0] else "wrong"
            found.append(f"semantic_entropy: every question is {state}, so no AUROC can be computed")
        return found

    def signature(self, key: str | None = None) -> Signature:
        """The NLI checkpoint by a readable name (an NLI judge: its served name, then its prompt, temperature and
        parser), M, the likelihood rule and the correctness rule."""
        from regbench.metrics.bertscore import model_label

        if key is not None and key in self._recorded:
            return self._recorded[key]
        opts = self.opts
        nli = self.judge_name if self.nli_is_judge else model_label(opts.nli, Path(str(self.nli_dir)))
        parts = [
            ("nli", nli),
            ("m", str(self.m)),
            ("length_normalised", "yes" if opts.length_normalised else "no"),
            ("correct_if", f"{opts.correct_if.metric}>={opts.correct_if.threshold:g}"),
        ]
        if self.nli_is_judge:
            parts += [(name, value) for name, value in self.judge_parts() if name != "judge"]
        return Signature.for_plugin(self.name, key, parts)
