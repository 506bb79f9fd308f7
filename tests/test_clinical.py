"""Clinical efficacy: CheXbert on a tiny BERT built here (real labeller code, strict loading, batching,
label cache), F1 variants against scikit-learn, RadGraph rewards and RadCliQ by hand."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from regbench.errors import RegbenchError, WeightsMissingError  # noqa: E402
from regbench.metrics import METRICS, MetricContext  # noqa: E402
from regbench.metrics.chexbert import CONDITIONS, FIVE, Labeller, binarize, build_labeller  # noqa: E402
from regbench.metrics.radcliq import bleu2, radcliq_v0, radcliq_v1, recipe_tokens  # noqa: E402
from regbench.metrics.radgraph import entity_relation_f1, radgraph_scores, reward  # noqa: E402
from regbench.types import Parsed, Sample  # noqa: E402
from tests.helpers.tiny_bert import VOCAB, write_encoder  # noqa: E402

REPORTS = [
    "The heart is enlarged. There is a small left pleural effusion.",
    "No acute cardiopulmonary process.",
    "Mild pulmonary edema and bibasilar atelectasis.",
    "Right upper lobe consolidation concerning for pneumonia.",
    "Support devices in place. No pneumothorax.",
    "Stable cardiomegaly without edema.",
    "",
    "Large right pleural effusion with adjacent atelectasis, possible consolidation.",
]


@pytest.fixture(scope="module")
def tiny_chexbert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A BERT encoder directory (MiniLM's real BERT vocabulary, tiny layers) and a chexbert.pth for it."""
    root = tmp_path_factory.mktemp("chexbert")
    encoder = root / "bert-base-uncased"
    config = write_encoder(encoder)
    torch.manual_seed(0)
    model = build_labeller(config)
    with torch.no_grad():
        for head in model.linear_heads:  # spread the classes so the labels vary
            head.weight.mul_(40)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 3}, root / "chexbert.pth")
    return root / "chexbert.pth", encoder


def plain_labels(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f1chexbert's computation: the whole BertModel, the heads on the last layer's CLS, argmax."""
    with torch.inference_mode():
        cls = model.encode_plain(ids, mask)
        return torch.stack([head(cls).argmax(dim=1) for head in model.linear_heads], dim=1), cls


def test_batched_labels_equal_one_report_at_a_time(tiny_chexbert: tuple[Path, Path]) -> None:
    checkpoint, encoder = tiny_chexbert
    labeller = Labeller(checkpoint, encoder, device="cpu", batch_size=3)
    labels, embeddings = labeller.label(REPORTS)
    assert labels.shape == (len(REPORTS), 14) and len(np.unique(labels)) > 1
    for i, report in enumerate(REPORTS):  # f1chexbert's way: one report, no padding, the plain model
        ids = labeller.tokenizer(" ".join(report.split()), return_tensors="pt", truncation=True, max_length=512)
        single, cls = plain_labels(labeller.model, ids["input_ids"], ids["attention_mask"])
        assert single[0].tolist() == labels[i].tolist()
        assert np.allclose(cls[0].numpy(), embeddings[i], atol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_fast_encoder_equals_the_plain_bert_forward(tiny_chexbert: tuple[Path, Path], attention: str) -> None:
    """Unpadded linear layers and a [CLS]-only last layer give the labels and CLS vectors of the full forward."""
    checkpoint, encoder = tiny_chexbert
    config = transformers.BertConfig.from_pretrained(str(encoder), attn_implementation=attention)
    model = build_labeller(config)
    state = torch.load(checkpoint, weights_only=True)["model_state_dict"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    model.eval()
    pooled: list[object] = []
    model.bert.pooler.register_forward_hook(lambda *args: pooled.append(args))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(encoder))
    batch = tokenizer([*REPORTS, " ".join(REPORTS)], padding=True, return_tensors="pt")  # padded rows, one long one
    with torch.inference_mode():
        labels, cls = model(batch["input_ids"], batch["attention_mask"])
    assert pooled == []  # the heads read the CLS of the last layer; the pooler is loaded but never run
    plain, plain_cls = plain_labels(model, batch["input_ids"], batch["attention_mask"])
    assert labels.tolist() == plain.tolist()
    assert torch.allclose(cls, plain_cls, atol=1e-5, rtol=0)


def test_label_cache_labels_each_report_once(tiny_chexbert: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, encoder = tiny_chexbert
    first = Labeller(checkpoint, encoder, device="cpu", cache=tmp_path / "labels.sqlite")
    calls: list[int] = []
    run = first._run
    first._run = lambda reports: calls.append(len(reports)) or run(reports)  # type: ignore[method-assign]
    labels, _ = first.label(REPORTS + REPORTS[:3])
    assert calls == [len(set(" ".join(r.split()) for r in REPORTS))]  # duplicates once
    second = Labeller(checkpoint, encoder, device="cpu", cache=tmp_path / "labels.sqlite")
    second._run = lambda reports: pytest.fail("labelled again")  # type: ignore[method-assign]
    again, _ = second.label(REPORTS)
    assert again.tolist() == labels[: len(REPORTS)].tolist()


def test_strict_loading_rejects_a_wrong_checkpoint(tiny_chexbert: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, encoder = tiny_chexbert
    state = torch.load(checkpoint, weights_only=True)["model_state_dict"]
    del state["module.linear_heads.13.weight"]
    torch.save({"model_state_dict": state}, tmp_path / "broken.pth")
    with pytest.raises(RegbenchError, match="does not fit the CheXbert architecture"):
        Labeller(tmp_path / "broken.pth", encoder, device="cpu")


def test_a_broken_checkpoint_stops_the_run_before_any_request(tiny_chexbert: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app
    from tests.servers import start_openai_server

    checkpoint, encoder = tiny_chexbert
    state = torch.load(checkpoint, weights_only=True)["model_state_dict"]
    del state["module.linear_heads.0.bias"]
    torch.save({"model_state_dict": state}, tmp_path / "broken.pth")
    (tmp_path / "data.jsonl").write_text(
        json.dumps({"id": "a", "question": "Report?", "answer": "No effusion."}) + "\n"
    )
    (tmp_path / "t.yaml").write_text(
        "task: cxr\nfamily: report\nmodality: chest_xray\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        f"metrics: [{{name: chexbert, checkpoint: '{tmp_path / 'broken.pth'}', encoder: '{encoder}'}}]\n"
    )
    server = start_openai_server(tmp_path, latency=0.0)
    try:
        model = {"model": "served", "adapter": "openai", "base_url": server.url, "model_name": "test-model"}
        (tmp_path / "m.yaml").write_text(json.dumps(model))
        args = ["run", "--model", str(tmp_path / "m.yaml"), "--task", str(tmp_path / "t.yaml"), "-o", str(tmp_path)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "does not fit the CheXbert architecture" in result.output
        assert server.requests() == []
    finally:
        server.stop()


def test_an_empty_tokenizer_is_refused(tiny_chexbert: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, encoder = tiny_chexbert
    fake = tmp_path / "fake"
    shutil.copytree(encoder, fake)
    (fake / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(WeightsMissingError, match="empty or not BERT"):
        Labeller(checkpoint, fake, device="cpu")
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]  # a tiny vocabulary that reads "heart"
    (fake / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters]) + "\n")
    with pytest.raises(WeightsMissingError, match="31 tokens, the encoder has 30522"):
        Labeller(checkpoint, fake, device="cpu")


def test_cached_labels_belong_to_the_checkpoint_and_the_encoder(
    tiny_chexbert: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, encoder = tiny_chexbert
    Labeller(checkpoint, encoder, device="cpu", cache=tmp_path / "labels.sqlite").label(REPORTS[:2])
    other = tmp_path / "other-encoder"
    shutil.copytree(encoder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-5}))
    moved = tmp_path / "moved"
    shutil.copytree(encoder, moved)
    calls: list[int] = []
    for directory in (other, moved):
        labeller = Labeller(checkpoint, directory, device="cpu", cache=tmp_path / "labels.sqlite")
        run = labeller._run
        labeller._run = lambda reports, run=run: calls.append(len(reports)) or run(reports)  # type: ignore[misc]
        labeller.label(REPORTS[:2])
    assert calls == [2]  # another encoder config labels again; the same encoder elsewhere hits the cache


def test_missing_weights_are_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cls = METRICS.get("chexbert")
    start = time.perf_counter()
    with pytest.raises(WeightsMissingError, match="StanfordAIMI/RRG_scorers") as info:
        cls(cls.Options(), MetricContext(task="t"))
    assert time.perf_counter() - start < 3 and str(tmp_path / "chexbert.pth") in str(info.value)
    from regbench.metrics import build_plugins
    from regbench.spec import TaskSpec

    task = {"task": "t", "family": "report", "dataset": {"path": "x.jsonl"}, "metrics": ["clinical_efficacy"]}
    with pytest.raises(WeightsMissingError) as info:  # one message for the whole suite, each file once
        build_plugins(TaskSpec.model_validate(task))
    lines = str(info.value).splitlines()
    assert len(lines) == len(set(lines)) == 4  # CheXbert's encoder too
    names = ("'chexbert.pth'", "'bert-base-uncased'", "'radgraph'", "'distilroberta-base'")
    assert [name for name in names if name in str(info.value)] == list(names)


def plugin(tiny: tuple[Path, Path], **options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get("chexbert")
    opts = cls.Options(checkpoint=str(tiny[0]), encoder=str(tiny[1]), label_cache=False, **options)
    return cls(opts, MetricContext(task="t", modality="chest_xray"))


def test_f1_variants_equal_scikit_learn(tiny_chexbert: tuple[Path, Path]) -> None:
    rng = np.random.default_rng(0)
    ref, pred = rng.integers(0, 4, (50, 14)), rng.integers(0, 4, (50, 14))
    ref[:, 13] %= 2
    pred[:, 13] %= 2
    stats = [
        {"ref": r.tolist(), "pred": p.tolist(), "chexbert_similarity": 0.5} for r, p in zip(ref, pred, strict=True)
    ]
    five = [CONDITIONS.index(c) for c in FIVE]
    for policy in ("negative", "positive"):
        values = plugin(tiny_chexbert, uncertain_as=policy).finalize(stats)
        t, p = binarize(ref, policy), binarize(pred, policy)
        assert values["chexbert_f1_micro14"] == pytest.approx(f1_score(t, p, average="micro", zero_division=0))
        assert values["chexbert_f1_macro14"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
        assert values["chexbert_f1_example14"] == pytest.approx(f1_score(t, p, average="samples", zero_division=0))
        assert values["chexbert_f1_micro5"] == pytest.approx(
            f1_score(t[:, five], p[:, five], average="micro", zero_division=0)
        )
        assert values["chexbert_f1_macro5"] == pytest.approx(
            f1_score(t[:, five], p[:, five], average="macro", zero_division=0)
        )
        assert values["chexbert_accuracy5"] == pytest.approx(accuracy_score(t[:, five], p[:, five]))
        per_label = f1_score(t, p, average=None, zero_division=0)
        assert values["chexbert_f1_cardiomegaly"] == pytest.approx(per_label[1])
    assert (
        "uncertain:positive" in plugin(tiny_chexbert, uncertain_as="positive").signature("chexbert_f1_micro14").format()
    )


def test_plugin_end_to_end_and_similarity(tiny_chexbert: tuple[Path, Path]) -> None:
    metric = plugin(tiny_chexbert)
    items = [(Parsed(text=r), Sample(id=str(i), answer=r)) for i, r in enumerate(REPORTS[:4])]
    items.append((Parsed(text=REPORTS[1]), Sample(id="x", answer=REPORTS[0])))
    stats = metric.stats_batch(items)
    assert all(s["chexbert_similarity"] == pytest.approx(1.0, abs=1e-5) for s in stats[:4])
    assert stats[4]["chexbert_similarity"] < 1.0
    values = metric.finalize(stats[:4])
    assert values["chexbert_accuracy5"] == 1.0 and values["chexbert_similarity"] == pytest.approx(1.0, abs=1e-5)


def test_chest_xray_metric_warns_on_other_modalities(tiny_chexbert: tuple[Path, Path]) -> None:
    cls = METRICS.get("chexbert")
    opts = cls.Options(checkpoint=str(tiny_chexbert[0]), encoder=str(tiny_chexbert[1]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls(opts, MetricContext(task="ct_reports", modality="ct"))
    assert any("chest X-ray metric" in str(w.message) for w in caught)


def test_the_modality_warning_is_a_run_note(tiny_chexbert: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    (tmp_path / "data.jsonl").write_text(json.dumps({"id": "a", "answer": "No effusion."}) + "\n")
    (tmp_path / "pred.jsonl").write_text(json.dumps({"id": "a", "output": "Small effusion."}) + "\n")
    checkpoint, encoder = tiny_chexbert
    (tmp_path / "t.yaml").write_text(
        "task: ct_reports\nfamily: report\nmodality: ct\ndataset: {path: data.jsonl}\n"
        f"metrics: [{{name: chexbert, checkpoint: '{checkpoint}', encoder: '{encoder}', label_cache: false}}]\n"
    )
    args = ["score", "--task", str(tmp_path / "t.yaml"), "-p", str(tmp_path / "pred.jsonl"), "-o", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    notes = json.loads((tmp_path / "pred" / "ct_reports" / "run.json").read_text())["notes"]
    assert notes == ["chexbert is a chest X-ray metric; task ct_reports is ct"]


# ---------------------------------------------------------------- RadGraph and RadCliQ by hand

PRED = {
    "entities": {
        "1": {"tokens": "effusion", "label": "OBS-DP", "relations": [["located_at", "2"]]},
        "2": {"tokens": "left", "label": "ANAT-DP", "relations": []},
        "3": {"tokens": "edema", "label": "OBS-DA", "relations": []},
    }
}
REF = {
    "entities": {
        "1": {"tokens": "effusion", "label": "OBS-DP", "relations": [["located_at", "2"]]},
        "2": {"tokens": "right", "label": "ANAT-DP", "relations": []},
    }
}


def test_radgraph_rewards_by_hand() -> None:
    # simple: {effusion, left, edema} vs {effusion, right}: 1 common, P 1/3, R 1/2, F1 0.4
    assert reward(PRED, REF, "simple") == pytest.approx(0.4)
    # partial: (effusion, OBS-DP, True) is in both; same counts
    assert reward(PRED, REF, "partial") == pytest.approx(0.4)
    # complete: effusion->left vs effusion->right differ; left/edema vs right: nothing common
    assert reward(PRED, REF, "complete") == 0.0
    entity, relation = entity_relation_f1(PRED, REF)
    assert entity == pytest.approx(0.4) and relation == 0.0
    scores = radgraph_scores(PRED, PRED)
    assert all(v == 1.0 for k, v in scores.items() if k != "radgraph_f1_relation") and scores["radgraph_f1"] == 1.0
    assert reward({"entities": {}}, REF, "simple") == 0.0


def test_radcliq_from_the_published_constants() -> None:
    features = np.array([[0.5, 0.6, 0.7, 0.4], [1.0, 1.0, 1.0, 1.0]])
    v1_mean = [0.5379231241355762, 0.6175725628125001, 0.7647942121140658, 0.44738335396242174]
    v1_scale = [0.3028258411486429, 0.22430938459304575, 0.2539439110169773, 0.2989271671041838]
    v1_coef = [-0.37708368261038905, -0.37030009974480316, -0.25261621789593225, 4.315048405024756e-12]
    expected = [
        sum(c * (x - m) / s for c, x, m, s in zip(v1_coef, row, v1_mean, v1_scale, strict=True)) + 2.466552561323256e-10
        for row in features
    ]
    assert radcliq_v1(features) == pytest.approx(expected)
    v0 = 1.641666666666666 + (
        -0.4796252644863446 * (0.5 - 0.5398376019082272) / 0.3018344440559102
        - 0.6762170542369337 * (0.6 - 0.6312549595000001) / 0.22466950746141123
        - 0.46366575161751994 * (0.7 - 0.7716797866672277) / 0.24750333805236252
        + 0.2165861905287535 * (0.4 - 0.4607372064809605) / 0.30336670936092264
    )
    assert radcliq_v0(features)[0] == pytest.approx(v0)
    assert radcliq_v1(features)[1] < radcliq_v1(features)[0]  # better inputs, lower RadCliQ


def test_recipe_bleu2_by_hand() -> None:
    assert recipe_tokens("No effusion. Heart normal.") == ["no", "effusion", ".", "heart", "normal", "."]
    # hyp "no effusion ." vs ref "no effusion seen .": unigrams 3/3, bigrams 1/2; BP exp(1 - 4/3)
    value = bleu2(["no", "effusion", "."], ["no", "effusion", "seen", "."])
    assert value == pytest.approx(np.exp(1 - 4 / 3) * np.sqrt(1.0 * 0.5))
    assert bleu2([], ["a"]) == 0.0


@pytest.mark.parametrize(
    ("hyp", "ref", "fast_bleu"),
    [  # fast_bleu 0.0.90, BLEU([recipe_tokens(ref)], {"bigram": (0.5, 0.5)}).get_score([recipe_tokens(hyp)])
        ("No effusion.", "No effusion seen.", 0.5066641486392106),
        ("effusion", "No effusion seen.", 0.01574405340649719),  # exp(1 - 4) * sqrt(1 * 0.1 / 1)
        ("effusion no", "No effusion seen.", 0.11633369384516794),
        ("", "No effusion.", 0.0),
        ("No effusion.", "", 0.0),
        ("Heart normal.\nLungs clear.", "Heart normal. Lungs clear.", 0.5178107940302672),  # ".\nlungs" one token
        ("a.b.c", "a b c", 0.12909944487358058),
        ("pleural effusion pleural effusion pleural effusion", "pleural effusion", 0.25819888974716115),
        ("x", "x", 0.3162277660168379),  # no bigram at all: 0.1 / max(1, 0)
        ("x y", "x", 0.223606797749979),  # sqrt(1/2 * 0.1 / 1)
        ("a b c d", "d c b a", 0.18257418583505536),  # sqrt(1 * 0.1 / 3)
        ("心影增大。双肺未见明显异常。", "心影增大。 双肺未见明显异常。", 0.0),
    ],
)
def test_recipe_bleu2_equals_fast_bleu_with_its_default_smoothing(hyp: str, ref: str, fast_bleu: float) -> None:
    assert bleu2(recipe_tokens(hyp), recipe_tokens(ref)) == pytest.approx(fast_bleu, abs=1e-12)


@pytest.fixture(scope="module")
def tiny_radgraph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("radgraph")
    from tests.helpers.tiny_radgraph import build

    return build(tmp_path_factory.mktemp("radgraph"))


def test_radgraph_plugin_equals_the_package_rewards(tiny_radgraph: Path) -> None:
    import contextlib
    import io

    from radgraph import F1RadGraph

    hyps = ["Mild cardiomegaly with small left pleural effusion.", "No pneumothorax.", "Clear lungs."]
    refs = ["Small left pleural effusion.", "No pneumothorax or effusion.", "Heart size is normal."]
    cls = METRICS.get("radgraph")
    metric = cls(cls.Options(model_dir=str(tiny_radgraph)), MetricContext(task="t", modality="chest_xray"))
    stats = metric.stats_batch(
        [(Parsed(text=h), Sample(id=str(i), answer=r)) for i, (h, r) in enumerate(zip(hyps, refs, strict=True))]
    )
    with contextlib.redirect_stdout(io.StringIO()):
        scorer = F1RadGraph(reward_level="all", model_type="radgraph", model_cache_dir=str(tiny_radgraph.parent))
        (simple, partial, complete), per_report, _, _ = scorer(refs=refs, hyps=hyps)
    values = metric.finalize(stats)
    assert values["radgraph_f1_simple"] == pytest.approx(simple)
    assert values["radgraph_f1_partial"] == pytest.approx(partial)
    assert values["radgraph_f1_complete"] == pytest.approx(complete)
    assert [s["radgraph_f1_partial"] for s in stats] == pytest.approx(per_report[1])
    assert "radgraph:0.1.18" in metric.signature("radgraph_f1").format()


def test_a_radgraph_bert_that_is_not_here_is_named_at_start(
    tiny_radgraph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import shutil

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    copy = tmp_path / "radgraph"
    shutil.copytree(tiny_radgraph, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"]["embedder"]["token_embedders"]["bert"]["model_name"] = "microsoft/BiomedNLP-PubMedBERT-base"
    (copy / "config.json").write_text(json.dumps(config))
    cls = METRICS.get("radgraph")
    with pytest.raises(WeightsMissingError, match="names the BERT model 'microsoft/BiomedNLP-PubMedBERT-base'"):
        cls(cls.Options(model_dir=str(copy)), MetricContext(task="t", modality="chest_xray"))


def test_radcliq_composes_its_inputs_end_to_end(tiny_chexbert: tuple[Path, Path], tiny_radgraph: Path) -> None:
    """The whole RadCliQ path on tiny real models (MiniLM stands in for distilroberta-base)."""
    cls = METRICS.get("radcliq")
    options = cls.Options(
        chexbert_checkpoint=str(tiny_chexbert[0]),
        chexbert_encoder=str(tiny_chexbert[1]),
        bertscore_model=str(VOCAB.parent),
        radgraph_model_dir=str(tiny_radgraph),
    )
    metric = cls(options, MetricContext(task="t", modality="chest_xray"))
    hyps, refs = REPORTS[:3], REPORTS[3:6]
    items = [(Parsed(text=h), Sample(id=str(i), answer=r)) for i, (h, r) in enumerate(zip(hyps, refs, strict=True))]
    stats = metric.stats_batch(items)
    semb = [s["chexbert_similarity"] for s in metric.chexbert.stats_batch(items)]
    bert = [s["bertscore_f1"] for s in metric.bertscore.stats_batch(items)]
    graph = [s["radgraph_f1"] for s in metric.radgraph.stats_batch(items)]
    bleu = [bleu2(recipe_tokens(h), recipe_tokens(r)) for h, r in zip(hyps, refs, strict=True)]
    features = np.column_stack([graph, bert, semb, bleu])
    assert np.allclose([s["features"] for s in stats], features)
    assert [s["radcliq_v1"] for s in stats] == pytest.approx(radcliq_v1(features).tolist())
    values = metric.finalize(stats)
    assert values["radcliq_v0"] == pytest.approx(float(np.mean(radcliq_v0(features))))
    assert metric.output_keys() == {"radcliq_v0": False, "radcliq_v1": False}
    signature = metric.signature("radcliq_v0").format().split("|")
    assert signature[:3] == ["radcliq_v0", "plugin:radcliq", "bleu2:fast_bleu-smooth1"]
    assert {"chexbert.uncertain:negative", "bertscore.layer:5", "bertscore.rescale:yes"} <= set(signature)
    assert any(p.startswith("chexbert.ckpt:") for p in signature)
    weights = next(p for p in signature if p.startswith("radgraph.weights:"))
    assert weights != "radgraph.weights:none" and "radgraph.radgraph:0.1.18" in signature
