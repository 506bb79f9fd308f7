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


def test_prognosis_does_not_read_a_duration_or_a_negative_number_as_a_probability() -> None:
    from regbench.metrics.prognosis import read_score

    # XMedGPT's endpoints are "OS > 1 year", "OS > 2 years": "1" was read as probability 1.0 (group: positive)
    assert read_score("No, OS beyond 1 year is unlikely") == 0.0
    assert read_score("Yes, 1 year or more: 0.7") == 0.7
    assert read_score("-0.3") is None and read_score("1e-3") is None
    assert read_score("Probability: 1") == 1.0 and read_score("0") == 0.0 and read_score("40 %") == 0.4


def test_a_wrong_base_url_entry_is_named_not_called_a_non_string(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    for entry, says in (
        ("{url: 'http://127.0.0.1:9/v1', concurrency: 0}", "entry 0: concurrency: input should be greater than 0"),
        ("{url: 'http://127.0.0.1:9/v1', concurency: 2}", "entry 0: concurency: extra inputs are not permitted"),
        ("{concurrency: 2}", "entry 0: url: field required"),
    ):
        model.write_text(f"model: m\nadapter: openai\nmodel_name: x\nbase_url: [{entry}]\n")
        code, text = invoke("run", "--model", str(model), "--task", "demo_vqa_en", "--output", str(tmp_path))
        assert code == 2 and says in text and "valid string" not in text and "Traceback" not in text, text
