"""regbench export lm-eval: rendered prompts and lm-eval task YAMLs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from regbench.cli import app


def test_export_writes_rendered_prompts_and_task_yaml(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "lm-eval", str(tmp_path), "--task", "demo_region_identification"])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((tmp_path / "demo_region_identification.yaml").read_text())
    assert spec["output_type"] == "generate_until" and spec["doc_to_text"] == "{{prompt}}"
    assert spec["generation_kwargs"]["max_gen_toks"] == 32 and spec["generation_kwargs"]["do_sample"] is False
    data = Path(spec["dataset_kwargs"]["data_files"]["test"])
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["answer"] == "right lung"
    # the box filter was applied in the model's format, and the system prompt leads
    assert "<box>[[102, 106, 481, 910]]</box>" in rows[0]["prompt"]
    assert rows[0]["prompt"].startswith("You are a helpful medical assistant.")
