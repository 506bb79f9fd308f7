"""Found by an adversarial review of tonight's features, used through the CLI: each a wrong number or a crash."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from regbench.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_lm_eval_export_skips_judged_and_joint_metrics_instead_of_scoring_them_0(tmp_path: Path) -> None:
    # inside lm-eval no judge is asked: judge_accuracy came out 0.0 for perfect answers, kendall_tau NaN
    for task in ("judged_vqa_en", "demo_kendall_tau"):
        code, text = invoke("export", "lm-eval", str(tmp_path / task), "--task", task)
        assert code == 2 and "nothing to export" in text and "Traceback" not in text, text
    assert "asks a judge model" in invoke("export", "lm-eval", str(tmp_path / "j"), "--task", "judged_vqa_en")[1]
    # the other tasks of the same export are still written
    code, text = invoke("export", "lm-eval", str(tmp_path / "both"), "--task", "judged_vqa_en,demo_vqa_en")
    assert code == 0, text
    assert (tmp_path / "both" / "demo_vqa_en").is_dir() and not (tmp_path / "both" / "judged_vqa_en").exists()
