"""``llm_judge``: a judge model's verdict on each answer (VividMed's 0/1 correctness, a 0-10 rubric).

``rubric: correctness`` asks VividMed's prompt (paper Fig. 12) and reads the number after ``Score:``:
exactly 0 or 1, anything else a parse failure (``judge_accuracy`` is the share judged correct).
``rubric: xmedgpt3`` asks our three-criterion rubric for XMedGPT-style region VQA (the paper gives
none) and reads ``<criterion>: <0-10>`` for each; ``judge_score`` is the mean of the three over 10.
An unreadable verdict scores 0, is counted in ``judge_parse_failures`` and is never asked again
(the answer is cached like any other).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar, Literal

from regbench.errors import SpecError
from regbench.metrics.base import Bounds, Scale, Stats
from regbench.metrics.judged import JUDGE_FAILURES, JudgedMetric, JudgeOptions, JudgePrompt, JudgeRequest
from regbench.signature import Part
from regbench.types import Parsed, Sample, SampledAnswers

_PARSERS = {"correctness": "score01", "xmedgpt3": "criteria0to10"}
_KEYS = {"correctness": "judge_accuracy", "xmedgpt3": "judge_score"}

# the token after the last "Score:" (markdown bold around the label or the number is allowed)
_SCORE = re.compile(r"Score\s*:\s*\**\s*([^\s*]*)")
_ZERO_ONE = re.compile(r"([01])(?:\.0+)?")


class LLMJudgeOptions(JudgeOptions):
    rubric: Literal["correctness", "xmedgpt3"] = "correctness"
    """`correctness`: VividMed's 0/1 prompt (`judge_accuracy`); `xmedgpt3`: our three-criterion 0-10
    rubric (`judge_score`)."""


def parse_score01(text: str) -> tuple[int | None, str | None]:
    """The verdict after the last ``Score:``: 0 or 1 (``1.0`` and a trailing ``.`` too), else a reason."""
    found = _SCORE.findall(text)
    if not found:
        return None, "no 'Score:' in the answer"
    token = found[-1].rstrip(".,;)")
    match = _ZERO_ONE.fullmatch(token)
    if match is None:
        return None, f"the score after 'Score:' is {token[:40]!r}, not 0 or 1"
    return int(match.group(1)), None


def parse_criteria(text: str, criteria: Sequence[str]) -> tuple[dict[str, float] | None, str | None]:
    """Each criterion's ``<label>: <0-10>`` (the last one given; ``/10`` allowed), else a reason."""
    scores: dict[str, float] = {}
    for label in criteria:
        pattern = rf"{re.escape(label)}\s*(?:score)?\s*\**\s*:\s*\**\s*(\d{{1,3}}(?:\.\d+)?)\s*(?:/\s*10)?"
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if not found:
            return None, f"no '{label}: <0-10>' in the answer"
        value = float(found[-1])
        if not 0.0 <= value <= 10.0 or math.isnan(value):
            return None, f"{label} is {found[-1]}, outside 0-10"
        scores[label] = value
    return scores, None


class LLMJudge(JudgedMetric):
    """A judge model's verdict on each answer against the reference (see the module docstring)."""

    Options = LLMJudgeOptions
    keys: ClassVar[dict[str, bool]] = {"judge_accuracy": True, "judge_score": True, JUDGE_FAILURES: False}
    key_scale: ClassVar[dict[str, Scale]] = {JUDGE_FAILURES: "raw"}
    key_bounds: ClassVar[dict[str, Bounds]] = {JUDGE_FAILURES: (0.0, None)}
    count_keys = frozenset({JUDGE_FAILURES})
    parsers = tuple(_PARSERS.values())
    bootstrap_trials = 1000

    @property
    def rubric(self) -> str:
        return str(self.options.rubric)  # type: ignore[attr-defined]

    @property
    def default_prompt(self) -> str:  # type: ignore[override]
        return self.rubric

    @property
    def key(self) -> str:
        return _KEYS[self.rubric]

    def output_keys(self) -> dict[str, bool]:
        return {self.key: True, JUDGE_FAILURES: False}

    def _check(self, prompt: JudgePrompt) -> JudgePrompt:
        if prompt.parser != _PARSERS[self.rubric]:
            raise SpecError(
                self.task_file,
                f"metrics({self.name}).prompt",
                f"rubric {self.rubric} reads answers with parser {_PARSERS[self.rubric]}; "
                f"the prompt {prompt.judge_prompt!r} names {prompt.parser}",
            )
        if self.rubric == "xmedgpt3" and len(prompt.criteria) != 3:
            raise SpecError(
                self.task_file, f"metrics({self.name}).prompt", "rubric xmedgpt3 needs a prompt with three criteria"
            )
        return prompt

    def check(self) -> None:
        super().check()
        self._check(self.prompt)

    def judge_requests(
        self, parsed: Parsed | None, sample: Sample, sampled: SampledAnswers | None = None
    ) -> list[JudgeRequest]:
        if parsed is None:
            return []
        variables = {"question": sample.question, "answer": sample.answer, "prediction": parsed.text}
        return [self.request(sample, variables)]

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        answer = self.answer(sample)
        if answer is None or answer.text is None:  # no model answer, or the judge could not be asked
            return {self.key: 0.0, "verdict": None, "parse_error": None}
        if self.rubric == "correctness":
            verdict, reason = parse_score01(answer.text)
            return {self.key: float(verdict or 0), "verdict": verdict, "parse_error": reason}
        criteria, reason = parse_criteria(answer.text, self.prompt.criteria)
        if criteria is None:
            return {self.key: 0.0, "verdict": None, "parse_error": reason}
        score = sum(criteria.values()) / (10.0 * len(criteria))
        return {self.key: score, "verdict": criteria, "parse_error": None}

    def option_parts(self) -> list[Part]:
        return [("rubric", self.rubric), *self.judge_parts()]
