"""The region task YAMLs scored end to end (``regbench score``) on their recorded outputs, against hand values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app

REPO = Path(__file__).resolve().parents[1]


def score(task: str, predictions: str, out: Path) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        app, ["score", "--task", task, "--predictions", str(REPO / predictions), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    folder = out / Path(predictions).stem / task
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return json.loads((folder / "results.json").read_text()), samples


def test_m4cxr_phrase_grounding(tmp_path: Path) -> None:
    results, samples = score("phrase_grounding_m4cxr", "models/recorded/m4cxr/phrase_grounding_m4cxr.jsonl", tmp_path)
    # IoUs: exact 1; [60,60,90,92] vs [55,60,90,92] = 30*32 / (35*32) = 6/7; [30,40,50,80] vs
    # [30,40,75,80] = 20/45 = 4/9; "Not present." 0 (a refusal); swapped corners read back: 1;
    # free text: 0 and a parse failure.
    ious = [1.0, 6 / 7, 4 / 9, 0.0, 1.0, 0.0]
    assert [s["scores"]["miou"] for s in samples] == pytest.approx(ious)
    assert results["metrics"]["miou"] == pytest.approx(sum(ious) / 6)
    assert results["metrics"]["acc_iou50"] == pytest.approx(3 / 6)
    assert results["n_parse_failures"] == 1


def test_vividmed_grounded_phrases(tmp_path: Path) -> None:
    results, _ = score(
        "grounded_phrases_vividmed", "models/recorded/vividmed/grounded_phrases_vividmed.jsonl", tmp_path
    )
    m = results["metrics"]
    # vm1 exact; vm2 box 5% short in y: IoU = 0.30 / 0.35 = 6/7, l1 = 0.05 / 4; vm3: the box is given to
    # "edema" (cardiomegaly has none): a region hit, but neither the name nor the pair aligns.
    assert m["region_f1"] == pytest.approx(1.0)
    assert m["alignment_f1"] == pytest.approx(2 / 3) and m["object_f1"] == pytest.approx(2 / 3)
    assert m["iou"] == pytest.approx((1 + 6 / 7 + 1) / 3)
    assert m["l1"] == pytest.approx(0.0125 / 3)
    assert m["giou"] == pytest.approx((1 + 6 / 7 + 1) / 3) and m["giou_loss"] == pytest.approx((1 / 7) / 3)
    assert results["n_parse_failures"] == 0
