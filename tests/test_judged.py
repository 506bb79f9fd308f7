"""Judged metrics (issue 18): llm_judge and green against a real loopback judge server, their parsers,
the judge's cache, resume after kill -9, refusals before the first request, and judges kept apart."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from regbench.cli import app
from regbench.metrics.green import parse_green
from regbench.metrics.llm_judge import parse_criteria, parse_score01
from tests.conftest import REPO, write_jsonl
from tests.servers import RunningServer, closed_port, start_openai_server

cli = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


# ------------------------------------------------------------------ GREEN analyses from the authors' repository
# The section lines of the five expected analyses in Stanford-AIMI/GREEN tests/test_repro.py (the
# explanations shortened), and the scores their counts give by hand.
_INSIGNIFICANT_NONE = (
    "[Clinically Insignificant Errors]:\n" + "".join(f"({c}) some category: 0.\n" for c in "abcdef") + "\n"
)


def _analysis(significant: list[str], matched: str) -> str:
    return (
        "\nThe candidate report has several discrepancies when compared to the reference report.\n\n"
        "[Clinically Significant Errors]:\n"
        + "\n".join(significant)
        + "\n\n"
        + _INSIGNIFICANT_NONE
        + "[Matched Findings]:\n"
        + matched
    )


GREEN_EXAMPLES = [
    (
        _analysis(
            [
                "(a) False report of a finding in the candidate: 2. Low lung volumes; "
                "Mild interstitial pulmonary edema.",
                "(b) Missing a finding present in the reference: 3. Increased opacification of the bilateral bases "
                "to the mid lung fields; Stable cardiomegaly; Small-to-moderate bilateral pleural effusions.",
                "(c) Misidentification of a finding's anatomic location/position: 0.",
                "(d) Misassessment of the severity of a finding: 1. Near-complete interval resolution of bilateral "
                "pleural effusions.",
                "(e) Mentioning a comparison that isn't in the reference: 0.",
                "(f) Omitting a comparison detailing a change from a prior study: 0.",
            ],
            "0.",
        ),
        [2, 3, 0, 1, 0, 0],
        0,
        0.0,  # no matched finding: 0, errors or not
    ),
    (
        _analysis(
            [
                "(a) False report of a finding in the candidate: 2. Large right hilar lung mass; Radiation fibrosis.",
                "(b) Missing a finding present in the reference: 1. New focal airspace opacities in the right lung "
                "apex and right lung base.",
                "(c) Misidentification of a finding's anatomic location/position: 2. Pneumonia in the right upper "
                "and lower lobes; Left retrocardiac opacity.",
                "(d) Misassessment of the severity of a finding: 0.",
                "(e) Mentioning a comparison that isn't in the reference: 0.",
                "(f) Omitting a comparison detailing a change from a prior study: 0.",
            ],
            "1. Small left effusion.",
        ),
        [2, 1, 2, 0, 0, 0],
        1,
        1 / 6,
    ),
    (
        _analysis(
            [
                "(a) False report of a finding in the candidate: 0.",
                "(b) Missing a finding present in the reference: 2. Worsened lung volumes; Substantial volume loss "
                "in the lower lobes and pleural effusion.",
                "(c) Misidentification of a finding's anatomic location/position: 1. Opacification at the right "
                "base instead of the left.",
                "(d) Misassessment of the severity of a finding: 1. Incorrectly stated that the opacification is "
                "unchanged.",
                "(e) Mentioning a comparison that isn't in the reference: 0.",
                "(f) Omitting a comparison detailing a change from a prior study: 0.",
            ],
            "2. The monitoring and support devices are unchanged; The left lung remains clear.",
        ),
        [0, 2, 1, 1, 0, 0],
        2,
        2 / 6,
    ),
    (
        _analysis(
            [
                "(a) False report of a finding in the candidate: 1. 10cm opacity in the right lower lobe.",
                "(b) Missing a finding present in the reference: 0.",
                "(c) Misidentification of a finding's anatomic location/position: 0.",
                "(d) Misassessment of the severity of a finding: 0.",
                "(e) Mentioning a comparison that isn't in the reference: 0.",
                "(f) Omitting a comparison detailing a change from a prior study: 0.",
            ],
            "1. No evidence of new acute pneumonia.",
        ),
        [1, 0, 0, 0, 0, 0],
        1,
        1 / 2,
    ),
    (
        _analysis(
            [
                "(a) False report of a finding in the candidate: 1. The candidate report falsely attributes the "
                "growth of the lung abnormality to round atelectasis.",
                "(b) Missing a finding present in the reference: 0.",
                "(c) Misidentification of a finding's anatomic location/position: 1. The candidate report "
                "incorrectly identifies the location of the lung abnormality as the lingula instead of the right "
                "upper lobe.",
                "(d) Misassessment of the severity of a finding: 1. The candidate report incorrectly describes the "
                "lung abnormality as a 3-cm mass, whereas the reference report describes it as a nodular opacity.",
                "(e) Mentioning a comparison that isn't in the reference: 0.",
                "(f) Omitting a comparison detailing a change from a prior study: 0.",
            ],
            "1. Both reports recommend further evaluation with a chest CT.",
        ),
        [1, 0, 1, 1, 0, 0],
        1,
        1 / 4,
    ),
]


@pytest.mark.parametrize(("text", "significant", "matched", "score"), GREEN_EXAMPLES)
def test_green_parser_on_the_authors_example_analyses(
    text: str, significant: list[int], matched: int, score: float
) -> None:
    analysis = parse_green(text)
    assert analysis.significant == significant
    assert analysis.insignificant == [0] * 6
    assert analysis.matched == matched
    assert analysis.score == pytest.approx(score)
    assert analysis.parse_error is None


def test_green_parser_rules_as_released() -> None:
    # a section starting with "No" has no errors; numbered (1)-(6) lines when there is no (a)-(f) line
    numbered = (
        "[Clinically Significant Errors]:\n(1) x: 1. a\n(3) y: 2. b; c\n\n"
        "[Clinically Insignificant Errors]:\nNo errors.\n\n[Matched Findings]:\n3. p; q; r"
    )
    analysis = parse_green(numbered)
    assert analysis.significant == [1, 0, 2, 0, 0, 0] and analysis.matched == 3
    assert analysis.score == pytest.approx(3 / 6)
    assert parse_green("[Clinically Significant Errors]:\nNo errors\n\n[Matched Findings]:\n4. a").score == 1.0
    # what the chat template leaves around the analysis, and an echoed prompt, are cut away
    wrapped = "<|user|>\nprompt</s><|assistant|>\n[Explanation]:\nfine\n\n" + GREEN_EXAMPLES[3][0] + "</s>"
    assert parse_green(wrapped).score == pytest.approx(1 / 2)
    # a count must be followed by "." (as released); "2 errors" is not read
    loose = "[Clinically Significant Errors]:\n(a) x: 2 errors\n\n[Matched Findings]:\n1. a"
    assert parse_green(loose).significant == [0] * 6 and parse_green(loose).score == 1.0


def test_green_missing_sections_score_0_and_are_failures() -> None:
    no_matched = "[Clinically Significant Errors]:\n(a) x: 1. y\n\n"
    analysis = parse_green(no_matched)
    assert analysis.score == 0.0 and analysis.parse_error == "no [Matched Findings] section"
    no_errors = "[Matched Findings]:\n2. a; b"  # as released this would score 2 / (2 + 0) = 1
    assert parse_green(no_errors).score == 0.0
    assert parse_green(no_errors).parse_error == "no [Clinically Significant Errors] section"
    assert parse_green("").parse_error is not None and parse_green("").score == 0.0


_FRAGMENTS = st.sampled_from(
    [
        "[Clinically Significant Errors]:",
        "[Clinically Insignificant Errors]:",
        "[Matched Findings]:",
        "[Explanation]:",
        "<|assistant|>",
        "</s>",
        "\n",
        "\n\n",
        "(a) x: ",
        "(f) y: ",
        "(3) z: ",
        "No",
        ". ",
        ": ",
        "9" * 5000,
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=30).map("".join)))
def test_any_string_parses_to_a_score_or_a_counted_failure(text: str) -> None:
    analysis = parse_green(text)
    assert 0.0 <= analysis.score <= 1.0
    assert all(isinstance(c, int) and c >= 0 for c in [*analysis.significant, *analysis.insignificant])
    assert analysis.parse_error is None or analysis.score == 0.0
    verdict, reason = parse_score01(text)
    assert (verdict in (0, 1) and reason is None) or (verdict is None and isinstance(reason, str))
    scores, why = parse_criteria(text, ["Accuracy", "Consistency", "Clinical relevance"])
    assert (scores is not None and why is None and all(0 <= v <= 10 for v in scores.values())) or (
        scores is None and isinstance(why, str)
    )


def test_correctness_and_criteria_verdicts() -> None:
    assert parse_score01("Analysis: right. Score: 1") == (1, None)
    assert parse_score01("Analysis: wrong.\nScore: 0.") == (0, None)
    assert parse_score01("**Score:** 1.0") == (1, None)
    assert parse_score01("Score: 0.5")[0] is None  # only exactly 0 or 1 counts
    assert parse_score01("Score: 2")[0] is None
    assert parse_score01("score: 1")[0] is None  # the prompt asks for "Score:"
    assert parse_score01("I think it is correct.")[1] == "no 'Score:' in the answer"
    labels = ["Accuracy", "Consistency", "Clinical relevance"]
    assert parse_criteria("Accuracy: 8\nConsistency: 6/10\nClinical relevance: **10**", labels) == (
        {"Accuracy": 8.0, "Consistency": 6.0, "Clinical relevance": 10.0},
        None,
    )
    assert parse_criteria("Accuracy: 8\nConsistency: 11\nClinical relevance: 1", labels)[0] is None
    assert parse_criteria("Accuracy: 8\nConsistency: 6", labels)[1] == "no 'Clinical relevance: <0-10>' in the answer"


# ------------------------------------------------------------------ end to end against a loopback judge


def _judge_yaml(path: Path, url: str, *, name: str = "test-model", **extra: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {"model": "loopback-judge", "adapter": "openai", "base_url": url, "model_name": name}
    fields.update({"max_retries": 1, "timeout": 5, "concurrency": 2, **extra})
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items()))
    return path


VQA = [
    ("q1", "Is there a nodule?", "yes", "Yes", "Analysis: same. Score: 1"),
    ("q2", "Is there an effusion?", "no", "No.", "Analysis: right.\nScore: 1."),
    ("q3", "Which lung?", "right lung", "Left lung", "Analysis: wrong side. Score: 0"),
    ("q4", "Which modality?", "CT", "X-Ray", "Analysis: unsure. Score: 0.5"),  # not 0 or 1: a failure
    ("q5", "Where is it?", "right upper lobe", "upper zone", "I cannot tell."),  # no Score: a failure
    ("q6", "Is the heart enlarged?", "no", "Heart normal", "Analysis: right. Score: 1"),  # after one 500
]


def _vqa_setup(tmp_path: Path, url: str, *, judge: Path | None = None) -> tuple[Path, Path]:
    write_jsonl(tmp_path / "vqa.jsonl", [{"id": i, "question": q, "answer": a} for i, q, a, _, _ in VQA])
    write_jsonl(tmp_path / "preds.jsonl", [{"id": i, "output": p} for i, _, _, p, _ in VQA])
    judge = judge or _judge_yaml(tmp_path / "judge.yaml", url)
    task = tmp_path / "judged.yaml"
    task.write_text(
        "task: judged\nfamily: vqa\ndataset: {path: vqa.jsonl}\nprompt: '{{ question }}'\n"
        f"metrics:\n  - {{name: llm_judge, rubric: correctness, judge: {judge.name}}}\n"
    )
    return task, tmp_path / "preds.jsonl"


def _vqa_script() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"match": f'Prediction: "{p}"', "reply": verdict} for _, _, _, p, verdict in VQA[:5]]
    rules.append({"match": 'Prediction: "Heart normal"', "reply": VQA[5][4], "chaos": "500", "times": 1})
    return rules


def _chat_requests(server: RunningServer) -> list[dict[str, Any]]:
    return server.requests()


def test_llm_judge_scores_counts_failures_and_caches(tmp_path: Path) -> None:
    server = start_openai_server(tmp_path, script=_vqa_script())
    try:
        task, preds = _vqa_setup(tmp_path, server.url)
        out = tmp_path / "out"
        code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(out))
        assert code == 0, text
        run = out / "preds" / "judged"
        results = json.loads((run / "results.json").read_text())
        # verdicts 1, 1, 0, (0.5: failure, 0), (none: failure, 0), 1 after a retried 500
        assert results["metrics"]["judge_accuracy"] == pytest.approx(3 / 6)
        assert results["metrics"]["judge_parse_failures"] == 2
        assert isinstance(results["metrics"]["judge_parse_failures"], int)
        assert results["signatures"]["judge_accuracy"].startswith(
            "judge_accuracy|plugin:llm_judge|rubric:correctness|judge:test-model|prompt:"
        )
        assert "|temperature:0|parser:score01|" in results["signatures"]["judge_accuracy"]
        records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        judged = {r["id"]: r["judge"]["llm_judge"] for r in records}
        assert judged["q1"] == {"raw": "Analysis: same. Score: 1", "verdict": 1, "parse_error": None}
        assert judged["q4"]["verdict"] is None and "not 0 or 1" in judged["q4"]["parse_error"]
        assert judged["q5"]["raw"] == "I cannot tell." and judged["q5"]["parse_error"] == "no 'Score:' in the answer"
        assert [r["scores"]["judge_accuracy"] for r in records] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        sent = _chat_requests(server)
        assert len(sent) == 7 and [r["status"] for r in sent].count(500) == 1
        first = sent[0]
        assert first["system"] == "You are an AI assistant with expertise in radiology."
        assert first["temperature"] == 0.0 and first["max_tokens"] == 1024 and first["model"] == "test-model"
        # a rerun (and the unparseable verdicts) asks the judge nothing: every answer is cached
        before = (run / "results.json").read_bytes()
        code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(out))
        assert code == 0, text
        assert len(_chat_requests(server)) == 7
        assert (run / "results.json").read_bytes() == before
        assert json.loads((run / "run.json").read_text())["judge"]["cached"] == 6
    finally:
        server.stop()


def test_judge_timeouts_are_errors_a_rerun_asks_again(tmp_path: Path) -> None:
    # The first attempt of q6's judge request hangs past the judge's timeout and there is no retry:
    # the sample's judge error makes the run incomplete (exit 3); the rerun asks only that request.
    script = _vqa_script()
    script[-1] = {"match": 'Prediction: "Heart normal"', "reply": VQA[5][4], "chaos": "slow", "times": 1}
    server = start_openai_server(tmp_path, script=script)
    try:
        judge = _judge_yaml(tmp_path / "judge.yaml", server.url, max_retries=0, timeout=1)
        task, preds = _vqa_setup(tmp_path, server.url, judge=judge)
        out = tmp_path / "out"
        code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(out))
        assert code == 3, text
        run = out / "preds" / "judged"
        results = json.loads((run / "results.json").read_text())
        assert results["n_errors"] == 1 and results["metrics"]["judge_parse_failures"] == 2
        assert results["metrics"]["judge_accuracy"] == pytest.approx(2 / 6)
        q6 = json.loads((run / "samples.jsonl").read_text().splitlines()[5])
        assert q6["error"].startswith("judge loopback-judge (metric llm_judge): failed after 1 attempts: ReadTimeout")
        assert q6["output"] == "Heart normal" and q6["judge"]["llm_judge"]["raw"] is None
        assert len(_chat_requests(server)) == 6
        code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(out))
        assert code == 0, text
        asked = _chat_requests(server)[6:]
        assert len(asked) == 1 and "Heart normal" in asked[0]["text"]
        results = json.loads((run / "results.json").read_text())
        assert results["n_errors"] == 0 and results["metrics"]["judge_accuracy"] == pytest.approx(3 / 6)
    finally:
        server.stop()


def test_xmedgpt3_rubric_scores_the_mean_of_three_criteria(tmp_path: Path) -> None:
    replies = {
        "Yes": "Fine.\nAccuracy: 8\nConsistency: 6\nClinical relevance: 10",  # (8 + 6 + 10) / 30
        "No.": "**Accuracy:** 10/10\n**Consistency:** 10/10\n**Clinical relevance:** 7/10",  # 27 / 30
        "Left lung": "Accuracy: 2\nConsistency: 0",  # a criterion missing: a failure, 0
    }
    script = [{"match": f'Model answer: "{p}"', "reply": r} for p, r in replies.items()]
    server = start_openai_server(tmp_path, script=script)
    try:
        task, preds = _vqa_setup(tmp_path, server.url)
        write_jsonl(preds, [{"id": i, "output": p} for i, _, _, p, _ in VQA[:3]])
        write_jsonl(tmp_path / "vqa.jsonl", [{"id": i, "question": q, "answer": a} for i, q, a, _, _ in VQA[:3]])
        task.write_text(task.read_text().replace("rubric: correctness", "rubric: xmedgpt3"))
        code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(tmp_path / "out"))
        assert code == 0, text
        results = json.loads((tmp_path / "out" / "preds" / "judged" / "results.json").read_text())
        assert results["metrics"]["judge_score"] == pytest.approx((24 / 30 + 27 / 30 + 0) / 3)
        assert results["metrics"]["judge_parse_failures"] == 1 and "judge_accuracy" not in results["metrics"]
        assert "|rubric:xmedgpt3|" in results["signatures"]["judge_score"]
        assert "|parser:criteria0to10|" in results["signatures"]["judge_score"]
        first = json.loads((tmp_path / "out" / "preds" / "judged" / "samples.jsonl").read_text().splitlines()[0])
        assert first["judge"]["llm_judge"]["verdict"] == {
            "Accuracy": 8.0,
            "Consistency": 6.0,
            "Clinical relevance": 10.0,
        }
    finally:
        server.stop()


REPORTS = [
    ("r1", "Heart normal. Nodule in the right upper lobe.", "alpha report", GREEN_EXAMPLES[1][0]),  # 1/6
    ("r2", "Lungs clear.", "beta report", GREEN_EXAMPLES[3][0]),  # 1/2
    ("r3", "Effusion on the left.", "gamma report", "[Clinically Significant Errors]:\n(a) x: 1. y\n"),  # failure
    ("r4", "Cardiomegaly.", "delta report", GREEN_EXAMPLES[0][0]),  # 0
]


def test_green_end_to_end_hand_computed(tmp_path: Path) -> None:
    script = [{"match": f"Candidate Report:\n    {cand}", "reply": reply} for _, _, cand, reply in REPORTS]
    server = start_openai_server(tmp_path, script=script)
    try:
        write_jsonl(tmp_path / "reports.jsonl", [{"id": i, "answer": ref} for i, ref, _, _ in REPORTS])
        write_jsonl(tmp_path / "preds.jsonl", [{"id": i, "output": cand} for i, _, cand, _ in REPORTS])
        _judge_yaml(tmp_path / "judges" / "green.yaml", server.url, name="m")
        task = tmp_path / "green.yaml"
        task.write_text(
            "task: green_demo\nfamily: report\ndataset: {path: reports.jsonl}\nprompt: Write a report.\n"
            "metrics:\n  - {name: green, judge: judges/green.yaml}\n"
        )
        code, text = invoke("score", "--task", str(task), "-p", str(tmp_path / "preds.jsonl"), "-o", str(tmp_path))
        assert code == 0, text
        results = json.loads((tmp_path / "preds" / "green_demo" / "results.json").read_text())
        metrics = results["metrics"]
        assert metrics["green"] == pytest.approx((1 / 6 + 1 / 2 + 0 + 0) / 4)
        assert metrics["judge_parse_failures"] == 1
        assert metrics["green_errors_a"] == pytest.approx((2 + 1 + 1 + 2) / 4)
        assert metrics["green_errors_c"] == pytest.approx(2 / 4)
        assert metrics["green_matched"] == pytest.approx((1 + 1 + 0 + 0) / 4)
        assert results["higher_is_better"]["green_errors_a"] is False
        assert results["signatures"]["green"].startswith("green|judge:m|prompt:")
        assert "|parser:green_released|max_words:300|" in results["signatures"]["green"]
        sent = server.requests()
        assert len(sent) == 4 and sent[0]["system"] is None
        # the released prompt, with the reference and the candidate in their places
        assert sent[0]["text"].startswith("Objective: Evaluate the accuracy of a candidate radiology report")
        assert "2. Reference Report:\n    Heart normal. Nodule in the right upper lobe.\n\n" in sent[0]["text"]
        records = [
            json.loads(x) for x in (tmp_path / "preds" / "green_demo" / "samples.jsonl").read_text().splitlines()
        ]
        assert records[0]["judge"]["green"]["verdict"]["significant"] == {
            "a": 2,
            "b": 1,
            "c": 2,
            "d": 0,
            "e": 0,
            "f": 0,
        }
        assert records[2]["judge"]["green"]["parse_error"] == "no [Matched Findings] section"
    finally:
        server.stop()


def test_kill_9_mid_judging_resumes_without_repeating_an_answered_request(tmp_path: Path) -> None:
    server = start_openai_server(tmp_path, latency=0.15)  # echo answers: every verdict is a parse failure
    try:
        n = 24
        write_jsonl(
            tmp_path / "vqa.jsonl", [{"id": f"q{i}", "question": f"question {i}", "answer": "x"} for i in range(n)]
        )
        write_jsonl(tmp_path / "preds.jsonl", [{"id": f"q{i}", "output": f"answer {i}"} for i in range(n)])
        _judge_yaml(tmp_path / "judge.yaml", server.url, concurrency=1)
        task = tmp_path / "judged.yaml"
        task.write_text(
            "task: judged\nfamily: vqa\ndataset: {path: vqa.jsonl}\nprompt: '{{ question }}'\n"
            "metrics:\n  - {name: llm_judge, judge: judge.yaml}\n"
        )
        command = [sys.executable, "-m", "regbench", "score", "--task", str(task), "-p", str(tmp_path / "preds.jsonl")]
        killed = subprocess.Popen([*command, "-o", str(tmp_path / "out")], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.requests()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        with sqlite3.connect(tmp_path / "out" / "cache.sqlite") as db:
            cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        asked_before = len(server.requests())
        assert 5 <= cached < n and asked_before - cached <= 1  # at most the one in flight was lost
        done = subprocess.run([*command, "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        texts = [r["text"] for r in server.requests()]
        assert len(texts) == asked_before + (n - cached)  # only the unanswered ones are asked again
        assert len(set(texts)) == n
        assert max(r["in_flight"] for r in server.requests()) == 1  # the judge YAML's concurrency bounds it
        info = json.loads((tmp_path / "out" / "preds" / "judged" / "run.json").read_text())
        assert info["judge"]["cached"] == cached and info["judge"]["asked"] == n - cached
        results = json.loads((tmp_path / "out" / "preds" / "judged" / "results.json").read_text())
        assert results["metrics"]["judge_parse_failures"] == n
    finally:
        server.stop()


# ------------------------------------------------------------------ refusals before the first request


def _served_model(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "served.yaml"
    path.write_text(f"model: served\nadapter: openai\nbase_url: {url}\nmodel_name: test-model\n")
    return path


def test_missing_or_unreachable_judge_stops_before_the_model_is_asked(tmp_path: Path) -> None:
    model_server = start_openai_server(tmp_path, name="model")
    try:
        task, _ = _vqa_setup(tmp_path, model_server.url)
        model = _served_model(tmp_path, model_server.url)
        (tmp_path / "judge.yaml").unlink()
        code, text = invoke("run", "--model", str(model), "--task", str(task), "-o", str(tmp_path / "out"))
        assert code == 2, text
        assert "judge 'judge.yaml': model YAML not found" in " ".join(text.split())
        _judge_yaml(tmp_path / "judge.yaml", f"http://127.0.0.1:{closed_port()}/v1")
        code, text = invoke("run", "--model", str(model), "--task", str(task), "-o", str(tmp_path / "out"))
        assert code == 2, text
        assert "the judge loopback-judge cannot be used" in " ".join(text.split())
        # a judge that does not serve its model_name: also exit 2, naming it
        _judge_yaml(tmp_path / "judge.yaml", model_server.url, name="no-such-judge")
        code, text = invoke("run", "--model", str(model), "--task", str(task), "-o", str(tmp_path / "out"))
        assert code == 2 and "no-such-judge" in text, text
        assert model_server.requests() == []  # the evaluated model was asked nothing
        assert not (tmp_path / "out" / "served").exists()
    finally:
        model_server.stop()


def test_missing_prompt_file_and_wrong_parser_are_input_errors(tmp_path: Path) -> None:
    task, preds = _vqa_setup(tmp_path, "http://127.0.0.1:9/v1")
    text = task.read_text().replace("judge: judge.yaml", "judge: judge.yaml, prompt: mine.yaml")
    task.write_text(text)
    code, out = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(tmp_path / "out"))
    assert code == 2 and "judge prompt file not found" in out, out
    (tmp_path / "mine.yaml").write_text("judge_prompt: mine\nparser: green_released\nuser: '{{ question }}'\n")
    code, out = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(tmp_path / "out"))
    assert code == 2 and "parser 'green_released' is not one the llm_judge metric reads" in " ".join(out.split()), out


# ------------------------------------------------------------------ judges kept apart in reports


def test_different_judges_are_never_ranked_or_compared_together(tmp_path: Path) -> None:
    server = start_openai_server(tmp_path, script=_vqa_script())
    try:
        task, preds = _vqa_setup(tmp_path, server.url)
        runs = tmp_path / "runs"
        for name, judge in (("a", "test-model"), ("b", "test-model"), ("c", "m")):
            _judge_yaml(tmp_path / "judge.yaml", server.url, name=judge)
            code, text = invoke("score", "--task", str(task), "-p", str(preds), "-o", str(runs), "--name", name)
            assert code == 0, text
        code, text = invoke("leaderboard", str(runs), "-o", str(tmp_path / "board.json"))
        assert code == 0, text
        board = json.loads((tmp_path / "board.json").read_text())
        groups = board["tasks"]["judged"]["rankings"]["judge_accuracy"]
        assert [sorted(g["order"]) for g in groups] == [["a", "b"], ["c"]]
        assert "judge" in groups[1]["difference"]
        code, text = invoke("compare", str(runs / "a" / "judged"), str(runs / "c" / "judged"))
        assert code == 0, text
        assert "signatures differ" in text
        code, text = invoke("compare", str(runs / "a" / "judged"), str(runs / "b" / "judged"))
        assert code == 0 and "signatures differ" not in text, text
    finally:
        server.stop()


# ------------------------------------------------------------------ the bundled judged tasks


def test_bundled_judged_tasks_run_against_a_loopback_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = [
        {"match": "Ground truth", "reply": "Analysis: ok. Score: 1"},
        {"match": "Candidate Report", "reply": GREEN_EXAMPLES[3][0]},
    ]
    server = start_openai_server(tmp_path, script=script)
    try:
        monkeypatch.setenv("REGBENCH_JUDGE_URL", server.url)
        monkeypatch.setenv("REGBENCH_JUDGE_MODEL", "test-model")
        monkeypatch.setenv("REGBENCH_GREEN_URL", server.url)
        monkeypatch.setenv("REGBENCH_GREEN_MODEL", "m")
        out = tmp_path / "out"
        code, text = invoke("run", "--model", "medrega-demo", "--task", "judged_vqa_en,green_report_en", "-o", str(out))
        assert code == 0, text
        vqa = json.loads((out / "medrega-demo" / "judged_vqa_en" / "results.json").read_text())
        assert vqa["metrics"]["judge_accuracy"] == 1.0 and vqa["metrics"]["judge_parse_failures"] == 0
        report = json.loads((out / "medrega-demo" / "green_report_en" / "results.json").read_text())
        assert report["metrics"]["green"] == 0.5 and report["metrics"]["judge_parse_failures"] == 0
        assert len(server.requests()) == 6 + 4
    finally:
        server.stop()
    demo = (REPO / "tasks" / "demo.yaml").read_text()
    assert "judged" not in demo and "green" not in demo  # the demo group needs no server


def test_judged_shards_merge_into_the_unsharded_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_openai_server(tmp_path, script=[{"match": 'Prediction: "Yes"', "reply": "Score: 1"}])
    try:
        monkeypatch.setenv("REGBENCH_JUDGE_URL", server.url)
        monkeypatch.setenv("REGBENCH_JUDGE_MODEL", "test-model")
        command = ["run", "--model", "medrega-demo", "--task", "judged_vqa_en", "--cache", str(tmp_path / "c.sqlite")]
        for shard in ("0/2", "1/2"):
            code, text = invoke(*command, "-o", str(tmp_path / "sh"), "--shard", shard)
            assert code == 0, text
        code, text = invoke(*command, "-o", str(tmp_path / "full"))
        assert code == 0, text
        assert len(server.requests()) == 6  # the unsharded run found every verdict in the shared cache
    finally:
        server.stop()
    # merged elsewhere, where the judge variables are not set: the shards' judge is kept, not re-resolved
    monkeypatch.delenv("REGBENCH_JUDGE_MODEL")
    shards = sorted(str(p) for p in (tmp_path / "sh" / "medrega-demo" / "judged_vqa_en").glob("shard-*"))
    code, text = invoke("merge", *shards, "-o", str(tmp_path / "merged"))
    assert code == 0, text
    full = tmp_path / "full" / "medrega-demo" / "judged_vqa_en"
    for name in ("results.json", "samples.jsonl"):
        assert (tmp_path / "merged" / name).read_bytes() == (full / name).read_bytes()
    assert "|judge:test-model|" in json.loads((full / "results.json").read_text())["signatures"]["judge_accuracy"]
