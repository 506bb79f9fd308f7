"""VQA, region-to-text and classification metrics: hand-computed cases, MedRegA's rules, scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from regbench.errors import RegbenchError
from regbench.metrics import METRICS, MetricContext
from regbench.metrics.classification import map_answer
from regbench.metrics.text_match import bleu1, medrega_clean, normalise, token_prf, tokens
from regbench.parsing import parse_output
from regbench.types import Sample


def make(name: str, language: str = "en", labels: list[str] | None = None, **options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get(name)
    return cls(cls.Options(**options), MetricContext(task="t", language=language, labels=labels))


def score(plugin, pred: str, **sample: object) -> dict:  # type: ignore[no-untyped-def]
    """Stats of one output, parsed as the runner parses it."""
    return plugin.stats(parse_output(pred, box_format="medrega"), Sample(id="s", **sample))


# ---------------------------------------------------------------- shared pieces


def test_normalise_keeps_decimals_and_drops_punctuation() -> None:
    assert normalise("  Yes. ") == "yes"
    assert normalise("A 3.5 cm, left-sided (mass)!") == "a 3.5 cm left sided mass"


def test_medrega_clean_string_quirks() -> None:
    # research/anchors-seed-code.md §4, verified there against the released code
    assert medrega_clean("Yes.") == "yes,"
    assert set(medrega_clean("No, there is not.").split()) == {"no,", "there", "is", "not,"}
    assert medrega_clean("3.5 cm").split() == ["3,5", "cm"]
    assert medrega_clean("x-ray of the head") == "x ray of the brain"


def test_token_prf_and_bleu1_by_hand() -> None:
    assert token_prf(["right", "upper", "lobe"], ["right", "lobe"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert token_prf([], ["a"]) == (0.0, 0.0, 0.0)
    # 2 of 3 unigrams match, hypothesis longer than the reference: no brevity penalty
    assert bleu1(["in", "right", "lobe"], ["right", "lobe"]) == pytest.approx(2 / 3)
    # one matching word against a 3-word reference: precision 1, penalty exp(1 - 3/1)
    assert bleu1(["lobe"], ["right", "upper", "lobe"]) == pytest.approx(np.exp(-2))
    assert bleu1([], ["x"]) == 0.0


# ---------------------------------------------------------------- VQA


def test_vqa_closed_and_open_by_hand() -> None:
    vqa = make("vqa")
    closed = score(vqa, "Yes, there is.", answer="yes", answer_type="closed")
    assert closed["closed_accuracy"] == 1.0 and closed["open_recall"] is None
    wrong = score(vqa, "No", answer="yes")  # yes/no reference: closed even without answer_type
    assert wrong["closed_accuracy"] == 0.0
    opened = score(vqa, "Right upper lobe", answer="right lower lobe", answer_type="open")
    assert opened["open_recall"] == pytest.approx(2 / 3) and opened["open_accuracy"] == 0.0
    assert opened["closed_accuracy"] is None and opened["token_f1"] == pytest.approx(2 / 3)


def test_vqa_exact_match_is_m4cxr_rule() -> None:
    vqa = make("vqa")
    assert score(vqa, "Pleural effusion.", answer="pleural effusion")["exact_match"] == 1.0
    assert score(vqa, "pleural-effusion", answer="pleural effusion")["exact_match"] == 0.0
    assert score(vqa, "pleural effusions", answer="pleural effusion")["exact_match"] == 0.0
    # whitespace is not a difference: the parsed text keeps the output's own line breaks
    assert score(vqa, "Pleural\n  effusion", answer="pleural effusion")["exact_match"] == 1.0


def test_vqa_medrega_mode_reproduces_released_rules() -> None:
    vqa = make("vqa", mode="medrega")
    # "Yes." -> "yes," is not the token "yes": a closed miss in the released code
    assert score(vqa, "Yes.", answer="yes")["closed_accuracy"] == 0.0
    assert score(vqa, "yes", answer="yes")["closed_accuracy"] == 1.0
    # a cleaned reference "yes," is not exactly "yes": the question counts as open
    assert score(vqa, "yes", answer="Yes.")["closed_accuracy"] is None
    standard = make("vqa")
    assert score(standard, "Yes.", answer="yes")["closed_accuracy"] == 1.0


def test_vqa_chinese_tokens() -> None:
    vqa = make("vqa", language="zh")
    assert tokens("右肺上叶，结节。", language="zh") == ["右肺", "上", "叶", "结节"]
    result = score(vqa, "是", answer="是")
    assert result["closed_accuracy"] == 1.0
    opened = score(vqa, "左肺", answer="右肺", answer_type="open")
    assert opened["open_recall"] == 0.0


def test_vqa_finalize_means_over_applicable_questions() -> None:
    vqa = make("vqa")
    stats = [
        score(vqa, "yes", answer="yes"),
        score(vqa, "no", answer="yes"),
        score(vqa, "liver", answer="liver", answer_type="open"),
    ]
    values = vqa.finalize(stats)
    assert values["closed_accuracy"] == 0.5 and values["open_recall"] == 1.0
    assert values["token_recall"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------- region to text


def test_region_to_text_standard_and_medrega() -> None:
    r2t = make("region_to_text")
    assert score(r2t, "Right lung.", answer="right lung")["accuracy"] == 1.0
    partial = score(r2t, "The region is the liver.", answer="liver")
    assert partial["accuracy"] == 0.0 and partial["token_recall"] == 1.0
    assert partial["token_f1"] == pytest.approx(2 * 0.25 * 1 / 1.25)
    medrega = make("region_to_text", mode="medrega")
    # released rule: accuracy = token recall >= 0.75 on whitespace tokens, [[...]] removed
    assert score(medrega, "the liver [[1, 2, 3, 4]]", answer="liver")["accuracy"] == 1.0
    assert score(medrega, "right kidney", answer="left kidney")["accuracy"] == 0.0
    synonyms = make("region_to_text", synonyms={"heart": ["cardiac silhouette"]})
    assert score(synonyms, "cardiac silhouette", answer="heart")["accuracy"] == 1.0


def test_standard_normalisation_drops_every_punctuation_but_decimal_points() -> None:
    vqa = make("vqa")
    assert score(vqa, "The answer is 2.", answer="2")["token_recall"] == 1.0
    assert score(vqa, "T1.", answer="t1")["token_f1"] == 1.0
    for output in ("liver…", "liver—", "«liver»", "liver。"):
        assert score(vqa, output, answer="liver")["token_f1"] == 1.0, output
    assert normalise("3.5 cm, 1,000 ml.") == "3.5 cm 1,000 ml"


def test_medrega_modes_follow_the_released_code_on_raw_outputs() -> None:
    vqa = make("vqa", mode="medrega")
    # cleanStr splits on , : . before its synonym table, so "PA." is "posterior anterior,"
    assert score(vqa, "posterior anterior.", answer="PA.")["token_recall"] == 1.0
    assert score(vqa, "brain, CT", answer="Head: CT")["token_recall"] == 1.0
    # the VQA evaluator sees the raw output, tags included
    assert score(vqa, "<ref>left lung</ref>", answer="left lung")["token_recall"] == 0.0
    r2t = make("region_to_text", mode="medrega")
    assert score(r2t, "<ref>left lung</ref>", answer="left lung")["accuracy"] == 0.0
    # only [[...]] lists on one line are removed: "heart", "[[1,", "2,", "3,", "4]]" stay (P = 1/5, R = 1)
    assert score(r2t, "heart\n[[1, 2,\n3, 4]]", answer="heart")["token_f1"] == pytest.approx(2 * 0.2 / 1.2)


def test_medrega_chinese_vqa_adds_not_only_for_the_closed_check() -> None:
    vqa = make("vqa", language="zh", mode="medrega")
    values = score(vqa, "no", answer="no")
    assert (values["token_recall"], values["bleu1"]) == (1.0, 1.0)
    assert values["closed_accuracy"] == 1.0  # recall 1/2 against {"no", "not"}, threshold 0.4
    # set(jieba.cut(...)) keeps the space token: {右肺, " ", 下叶} against {右肺, 下叶}
    assert score(vqa, "右肺 下叶", answer="右肺下叶")["token_f1"] == pytest.approx(0.8)


# ---------------------------------------------------------------- classification

LABELS = ["No Finding", "Nodule", "Pleural Effusion", "Cardiomegaly", "Pneumothorax"]


def test_mapping_rules() -> None:
    assert map_answer("Lung nodule.", LABELS, "substring") == "Nodule"
    assert map_answer("lung nodule", LABELS, "exact") is None
    assert map_answer("There is a small pleural effusion", LABELS, "substring") == "Pleural Effusion"
    assert map_answer("effusion", LABELS, "bleu1") == "Pleural Effusion"
    assert map_answer("I am not sure", LABELS, "substring") is None


def test_single_label_against_sklearn() -> None:
    clf = make("classification", labels=LABELS)
    answers = ["Nodule", "no finding", "Lung nodule.", "Cardiomegaly", "cardiomegaly", "I am not sure"]
    truth = ["Nodule", "No Finding", "Nodule", "Pleural Effusion", "Cardiomegaly", "Pneumothorax"]
    stats = [score(clf, a, labels=[t]) for a, t in zip(answers, truth, strict=True)]
    assert stats[5]["unmapped"] == ["I am not sure"] and stats[2]["mapping"] == {"Lung nodule.": "Nodule"}
    values = clf.finalize(stats)
    predicted = [s["pred"][0] if s["pred"] else "<unmapped>" for s in stats]
    present = sorted(set(truth) | {p for p in predicted if p in LABELS})
    assert values["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert values["f1_macro"] == pytest.approx(f1_score(truth, predicted, labels=present, average="macro"))
    assert values["f1_micro"] == pytest.approx(f1_score(truth, predicted, labels=LABELS, average="micro"))


def test_multi_label_against_sklearn() -> None:
    clf = make("classification", labels=LABELS)
    cases = [
        ("Nodule, pleural effusion", ["Nodule", "Pleural Effusion"]),
        ("cardiomegaly and pneumothorax", ["Cardiomegaly"]),
        ("no finding", ["No Finding", "Nodule"]),
        ("", ["Pneumothorax", "Nodule"]),
    ]
    stats = [score(clf, a, labels=t) for a, t in cases]
    values = clf.finalize(stats)
    y_true = np.array([[label in t for label in LABELS] for _, t in cases])
    y_pred = np.array([[label in s["pred"] for label in LABELS] for s in stats])
    for key, average in (("f1_macro", "macro"), ("f1_micro", "micro"), ("f1_samples", "samples")):
        assert values[key] == pytest.approx(f1_score(y_true, y_pred, average=average, zero_division=0)), key
    assert values["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))


def test_multi_label_answers_split_on_line_breaks_and_any_case_of_and() -> None:
    clf = make("classification", labels=LABELS, multi_label=True)
    assert score(clf, "effusion\nnodule", labels=["Pleural Effusion"])["pred"] == ["Nodule", "Pleural Effusion"]
    assert score(clf, "Nodule AND cardiomegaly", labels=["Nodule"])["pred"] == ["Nodule", "Cardiomegaly"]


def test_classification_needs_a_label_set() -> None:
    with pytest.raises(RegbenchError, match="needs `labels:`"):
        score(make("classification"), "x", labels=["a"])


def test_auroc_from_json_scores_equals_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    clf = make("classification", labels=LABELS)
    rng = np.random.default_rng(3)
    truth = [LABELS[i] for i in rng.integers(0, len(LABELS), 30)]
    scores = rng.random((30, len(LABELS)))
    scores[:, 2] = scores[:, 2].round(1)  # ties
    outputs = [json.dumps({label: float(s) for label, s in zip(LABELS, row, strict=True)}) for row in scores]
    stats = [score(clf, o, labels=[t]) for o, t in zip(outputs, truth, strict=True)]
    y = np.array([[label == t for label in LABELS] for t in truth])
    present = [j for j in range(len(LABELS)) if 0 < y[:, j].sum() < len(y)]
    expected = np.mean([roc_auc_score(y[:, j], scores[:, j]) for j in present])
    assert clf.finalize(stats)["auroc"] == pytest.approx(expected)
    assert "auroc" not in clf.finalize([score(clf, "Nodule", labels=["Nodule"])])  # no scores, no AUROC


def test_bleu1_equals_nltk_sentence_bleu() -> None:
    import warnings

    from nltk.translate.bleu_score import sentence_bleu

    rng = np.random.default_rng(5)
    words = ["right", "upper", "lobe", "nodule", "liver", "left", "the"]
    for _ in range(200):
        hyp = list(rng.choice(words, size=int(rng.integers(1, 6))))
        ref = list(rng.choice(words, size=int(rng.integers(1, 6))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nltk warns when there is no unigram match
            expected = sentence_bleu([ref], hyp, weights=(1.0,))
        assert bleu1(hyp, ref) == pytest.approx(expected, abs=1e-12)
