"""nlg against pycocoevalcap called directly on the same inputs; Chinese; edge cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer as CocoPTB

from regbench.aggregate import bootstrap_ci
from regbench.errors import RegbenchError
from regbench.metrics import METRICS, MetricContext
from regbench.metrics.tokenize import CharTokenizer, JiebaTokenizer, PTBTokenizer
from regbench.types import Parsed, Sample
from tests.conftest import assert_weighted_equals_finalize

HYPS = [
    "The heart is normal in size. A nodular opacity is seen in the right upper lobe (small).",
    "Lungs are clear; no pleural effusion or pneumothorax.",
    "Mild cardiomegaly, no edema.",
    "",
]
REFS = [
    "The heart size is normal. There is a nodular opacity in the right upper lobe.",
    "The lungs are clear. No pleural effusion. No pneumothorax.",
    "Mild cardiomegaly. No pulmonary edema. No pleural effusion.",
    "No acute cardiopulmonary process.",
]


def plugin(language: str = "en", **options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get("nlg")
    return cls(cls.Options(**options), MetricContext(task="t", family="report", language=language))


def items(hyps: list[str], refs: list[str]) -> list[tuple[Parsed, Sample]]:
    return [(Parsed(text=h), Sample(id=str(i), answer=r)) for i, (h, r) in enumerate(zip(hyps, refs, strict=True))]


def coco_reference(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """coco-caption's own pipeline: its PTBTokenizer, then each scorer."""
    with contextlib.redirect_stdout(io.StringIO()):
        gts = CocoPTB().tokenize({i: [{"caption": r}] for i, r in enumerate(refs)})
        res = CocoPTB().tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
        bleu, _ = Bleu(4).compute_score(gts, res)
        meteor, _ = Meteor().compute_score(gts, res)
        cider, _ = Cider().compute_score(gts, res)
    nonempty = {k: v for k, v in res.items() if v[0]}
    rouge_values = [Rouge().calc_score(nonempty[k], gts[k]) if k in nonempty else 0.0 for k in res]
    return {
        **{f"bleu{n + 1}": bleu[n] for n in range(4)},
        "meteor": meteor,
        "rouge_l": sum(rouge_values) / len(rouge_values),
        "cider": cider,
    }


def test_ptb_tokenizer_equals_coco_caption() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = CocoPTB().tokenize({i: [{"caption": t}] for i, t in enumerate([*HYPS, "A 72mm (left-sided) mass."])})
    ours = PTBTokenizer()([*HYPS, "A 72mm (left-sided) mass."])
    assert ours == [coco[i][0] for i in range(len(ours))]


def test_corpus_scores_equal_pycocoevalcap() -> None:
    nlg = plugin()
    stats = nlg.stats_batch(items(HYPS, REFS))
    ours = nlg.finalize(stats)
    expected = coco_reference(HYPS, REFS)
    assert ours.keys() == expected.keys()
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_per_sample_mode_is_the_mean_of_per_sample_scores() -> None:
    nlg = plugin(agg="sample", meteor=False)
    stats = nlg.stats_batch(items(HYPS, REFS))
    values = nlg.finalize(stats)
    with contextlib.redirect_stdout(io.StringIO()):
        tok = PTBTokenizer()(HYPS + REFS)
        _, per_sample = Bleu(4).compute_score(
            {i: [r] for i, r in enumerate(tok[4:])}, {i: [h] for i, h in enumerate(tok[:4])}
        )
    assert values["bleu1"] == pytest.approx(sum(per_sample[0]) / 4)
    assert values["bleu4"] == pytest.approx(sum(per_sample[3]) / 4)
    assert "meteor" not in values and "meteor" not in nlg.output_keys()
    assert nlg.aggregation == "mean"


def test_corpus_of_one_and_identical_texts() -> None:
    nlg = plugin(meteor=False)
    values = nlg.finalize(nlg.stats_batch(items(["no pleural effusion is seen ."], ["No pleural effusion is seen."])))
    assert values["bleu1"] == pytest.approx(1.0) and values["bleu4"] == pytest.approx(1.0)
    assert values["rouge_l"] == pytest.approx(1.0)
    assert values["cider"] == pytest.approx(0.0)  # one document: every n-gram has idf log(1/1) = 0


def test_empty_prediction_scores_zero_not_a_crash() -> None:
    nlg = plugin()
    stats = nlg.stats_batch(items(["", ""], ["normal heart", "clear lungs"]))
    values = nlg.finalize(stats)
    assert values["bleu1"] == pytest.approx(0.0, abs=1e-6) and values["rouge_l"] == 0.0
    assert values["meteor"] == 0.0 and values["cider"] == 0.0


def test_chinese_is_cut_by_jieba_and_scored_on_chinese_tokens() -> None:
    hyp, ref = "右肺上叶见结节影，直径约10mm。", "右肺上叶见一结节影，直径约8mm，边界清楚。"
    tokens = JiebaTokenizer()([hyp])[0].split()
    assert "，" not in tokens and "。" not in tokens and "10mm" in tokens and "结节" in tokens
    nlg = plugin(language="zh", meteor=False)
    stats = nlg.stats_batch(items([hyp], [ref]))
    assert stats[0]["hyp"] == " ".join(tokens)
    assert 0.3 < stats[0]["rouge_l"] < 1.0  # Chinese tokens count (MedRegA's ROUGE kept only [a-z0-9])
    assert nlg.signature("bleu1").format().startswith("bleu1|n:1|plugin:nlg|tok:jieba|agg:corpus|")


def test_chinese_char_level_and_mixed_measurements() -> None:
    assert CharTokenizer()(["右肺结节72mm，3.5 cm。"]) == ["右 肺 结 节 72mm 3.5 cm"]
    nlg = plugin(language="zh", tokenizer="char", meteor=False)
    values = nlg.finalize(nlg.stats_batch(items(["右肺结节72mm"], ["右肺结节72mm"])))
    assert values["bleu4"] == pytest.approx(1.0)  # 右 肺 结 节 72mm: five tokens, two 4-grams
    assert nlg.signature("bleu4").format().split("|")[3] == "tok:char"


def test_bootstrap_interval_contains_the_value() -> None:
    nlg = plugin()
    stats = nlg.stats_batch(items(HYPS, REFS))
    values = nlg.finalize(stats)
    ci = bootstrap_ci(nlg, stats, trials=30, seed=0)
    for key in ("bleu1", "meteor", "rouge_l"):
        assert ci[key][0] <= ci[key][1]
        assert ci[key][0] >= 0.0 and ci[key][1] <= 1.0
    assert set(ci) == set(values)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_resampled_corpus_scores_equal_pycocoevalcap_on_each_resample(language: str) -> None:
    # BLEU and CIDEr-D from per-sample tables, METEOR from summed statistics: each must equal
    # the scorers rerun on the materialised resample (duplicates change CIDEr's document counts).
    nlg = plugin(language=language)
    hyps = HYPS + ["右肺上叶结节。", "心影不大", "No pneumothorax.", "."] * 3
    refs = REFS + ["右肺上叶见结节影。", "心影增大。", "No pneumothorax is seen.", "Normal chest."] * 3
    stats = nlg.stats_batch(items(hyps, refs))
    assert set(nlg.finalize(stats)) == set(nlg.output_keys())
    assert_weighted_equals_finalize(nlg, stats, trials=12, seed=2)
    # a permutation (regbench compare) draws each sample from one of two lists: weights over
    # both lists, summing to one list's length
    other = nlg.stats_batch(items(list(reversed(hyps)), refs))
    swap = np.random.default_rng(4).random((5, len(stats))) < 0.5
    counts = np.hstack([~swap, swap]).astype(float)
    weighted = nlg.finalize_weighted([*stats, *other], counts)
    for t, row in enumerate(swap):
        mixed = nlg.finalize([o if s else x for x, o, s in zip(stats, other, row, strict=True)])
        for key, value in mixed.items():
            assert weighted[key][t] == pytest.approx(value, abs=1e-12), key


def test_resampled_meteor_with_exact_matches_equals_pycocoevalcap() -> None:
    # METEOR drops the fragmentation penalty of a segment equal to its reference, also when it
    # aggregates: the summed statistics must not count that segment's one chunk.
    nlg = plugin()
    exact = ["The heart is normal.", "No pleural effusion.", "Lungs are clear."]
    stats = nlg.stats_batch(items(exact, exact))
    assert nlg.finalize(stats)["meteor"] == 1.0
    assert_weighted_equals_finalize(nlg, stats, trials=6, seed=1)
    mixed = nlg.stats_batch(items([*exact, "Heart normal lungs."], [*exact, "The heart is normal."]))
    assert_weighted_equals_finalize(nlg, mixed, trials=10, seed=3)


def test_spice_is_reported_unavailable() -> None:
    with pytest.raises(RegbenchError, match="SPICE is unavailable"):
        plugin(spice=True)
