"""A run that lacks neural-metric weights names every missing file of every task in one message
(what to fetch, where to put it), exit 2, before the model is asked anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from tests.conftest import write_jsonl
from tests.servers import start_openai_server


def test_every_missing_weight_of_every_task_is_named_at_once_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights, hub = tmp_path / "weights", tmp_path / "hub"
    monkeypatch.setenv("REGBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    write_jsonl(tmp_path / "data.jsonl", [{"id": "a", "question": "Report?", "answer": "No effusion."}])
    base = "family: report\nmodality: chest_xray\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
    (tmp_path / "clinical.yaml").write_text("task: clinical\n" + base + "metrics: [clinical_efficacy]\n")
    (tmp_path / "bert.yaml").write_text("task: bert\n" + base + "metrics: [bertscore]\n")
    server = start_openai_server(tmp_path)
    try:
        model = {"model": "served", "adapter": "openai", "base_url": server.url, "model_name": "test-model"}
        (tmp_path / "m.yaml").write_text(json.dumps(model))
        tasks = f"{tmp_path / 'clinical.yaml'},{tmp_path / 'bert.yaml'}"
        args = ["run", "--model", str(tmp_path / "m.yaml"), "--task", tasks, "-o", str(tmp_path / "runs")]
        result = CliRunner().invoke(app, args)
        assert server.requests() == []  # not even the start check
    finally:
        server.stop()
    assert result.exit_code == 2, result.output
    text = result.output
    assert "Traceback" not in text and "weights are missing for tasks clinical, bert:" in text
    where = {
        "chexbert.pth": "StanfordAIMI/RRG_scorers",
        "bert-base-uncased": "bert-base-uncased",  # the encoder CheXbert's checkpoint was trained on
        "radgraph": "radgraph.tar.gz",
        "distilroberta-base": "distilroberta-base",  # RadCliQ's BERTScore input
        "deberta-xlarge-mnli": "microsoft/deberta-xlarge-mnli",  # the bertscore task's English model
    }
    flat = " ".join(text.split())
    for name, fetch in where.items():
        assert f"needs '{name}'" in flat and fetch in flat, name
        assert str(weights / name) in flat.replace(" ", ""), name  # where to put it (the path may wrap)
    assert flat.count("needs 'chexbert.pth'") == 1  # radcliq needs it too: named once
    assert not (tmp_path / "runs").exists()
