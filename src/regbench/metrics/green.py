"""``green``: GREEN (Ostmeier et al., 2024), a judge model's error analysis of a generated report.

The judge compares each generated report with its reference and writes an analysis with three
sections: ``[Clinically Significant Errors]`` and ``[Clinically Insignificant Errors]``, each with a
count per category (a)-(f), and ``[Matched Findings]`` with a count. Per report,
GREEN = matched / (matched + clinically significant errors), and 0 whenever matched is 0; the
metric is its mean over reports. The reading follows the authors' released ``compute_green`` and
``parse_error_counts`` (rules below, written anew); ``docs/judged-metrics.md`` lists where we differ:

- the answer is cut to what follows the last ``<|assistant|>`` and the ``[Explanation]:`` label, and
  ``</s>`` / ``<unk>`` are removed (the released ``clean_responses``);
- a section is the text after ``[<name>]:`` up to the first blank line or the end;
- a section whose text starts with ``No`` has no errors (no matched findings);
- an error line is ``(x) `` followed by the rest of its line, x in a-f (or 1-6 when no a-f line exists);
  its count is the first integer after ``": "`` that a ``.`` follows; lines are taken in sorted order,
  and for a category the last line read wins;
- the matched count is an integer at the very start of its section, followed by ``.``.

Not as released: an analysis without ``[Matched Findings]`` or ``[Clinically Significant Errors]``
scores 0 *and* is counted in ``judge_parse_failures`` (released: 0 for a missing Matched Findings
section, and the matched / (matched + 0) of a report with matched findings and no errors section).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from regbench.metrics.base import Bounds, Scale, Stats
from regbench.metrics.judged import JUDGE_FAILURES, JudgedMetric, JudgeOptions, JudgeRequest
from regbench.signature import Part
from regbench.types import Parsed, Sample, SampledAnswers

SIGNIFICANT = "Clinically Significant Errors"
INSIGNIFICANT = "Clinically Insignificant Errors"
MATCHED = "Matched Findings"
CATEGORIES = "abcdef"
ERROR_KEYS = [f"green_errors_{c}" for c in CATEGORIES]

_LETTER_LINE = re.compile(r"\([a-f]\) .*")
_NUMBER_LINE = re.compile(r"\([1-6]\) .*")
_COUNT = re.compile(r"(?<=: )\b\d+\b(?=\.)")
_LEADING_COUNT = re.compile(r"\b\d+\b(?=\.)")


@dataclass
class GreenAnalysis:
    """What one GREEN analysis says: the counts per category, matched findings, and the score."""

    significant: list[int] = field(default_factory=lambda: [0] * 6)
    insignificant: list[int] = field(default_factory=lambda: [0] * 6)
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    """The sections the score needs that the analysis lacks (a parse failure when not empty)."""

    @property
    def score(self) -> float:
        if self.missing or self.matched == 0:
            return 0.0
        return self.matched / (self.matched + sum(self.significant))

    @property
    def parse_error(self) -> str | None:
        if not self.missing:
            return None
        return "no " + " and no ".join(f"[{name}] section" for name in self.missing)

    def verdict(self) -> dict[str, Any]:
        return {
            "green": self.score,
            "significant": dict(zip(CATEGORIES, self.significant, strict=True)),
            "insignificant": dict(zip(CATEGORIES, self.insignificant, strict=True)),
            "matched": self.matched,
        }


def clean(text: str) -> str:
    """The analysis part of a judge answer (the released ``clean_responses``, on a completion)."""
    if "[Explanation]:" in text:
        if "<|assistant|>" in text:
            text = text.split("<|assistant|>")[-1]
        # the released test checks for the template's own placeholder line: the answer echoed its prompt
        parts = text.split("[Explanation]:")
        text = parts[1] if "[Explanation]:\n    <Explanation>\n" in text else parts[-1]
    if "<|assistant|>" in text:
        text = text.split("<|assistant|>")[-1]
    return text.replace("</s>", "").replace("<unk>", "")


def section(text: str, name: str) -> str | None:
    """The text of ``[name]:`` up to the first blank line (or the end), or None when there is none."""
    found = re.search(rf"\[{re.escape(name)}\]:\s*(.*?)(?:\n\s*\n|\Z)", text, re.DOTALL)
    return None if found is None else found.group(1)


def _integer(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts (4,300): no count anyone wrote
        return 0


def error_counts(body: str) -> list[int]:
    """Counts per category (a)-(f) of an errors section's text."""
    counts = [0] * 6
    if body.startswith("No"):
        return counts
    lines = sorted(_LETTER_LINE.findall(body))
    prefixes = [f"({c}) " for c in CATEGORIES]
    if not lines:
        lines = sorted(_NUMBER_LINE.findall(body))
        prefixes = [f"({i}) " for i in range(1, 7)]
    for position, prefix in enumerate(prefixes):
        for line in lines:
            if line.startswith(prefix) and (found := _COUNT.findall(line)):
                counts[position] = _integer(found[0])
    return counts


def matched_count(body: str) -> int:
    if body.startswith("No"):
        return 0
    found = _LEADING_COUNT.match(body)
    return 0 if found is None else _integer(found.group(0))


def parse_green(answer: str) -> GreenAnalysis:
    """Read one GREEN analysis; any string gives counts, a score, and the sections it lacks."""
    text = clean(answer)
    analysis = GreenAnalysis()
    significant, insignificant, matched = (section(text, name) for name in (SIGNIFICANT, INSIGNIFICANT, MATCHED))
    if significant is None:
        analysis.missing.append(SIGNIFICANT)
    else:
        analysis.significant = error_counts(significant)
    if insignificant is not None:
        analysis.insignificant = error_counts(insignificant)
    if matched is None:
        analysis.missing.append(MATCHED)
    else:
        analysis.matched = matched_count(matched)
    return analysis


class GreenOptions(JudgeOptions):
    max_words: int = Field(300, gt=0)
    """Each report is cut to its first ``max_words`` words (whitespace joined by single spaces), as released."""


class Green(JudgedMetric):
    """GREEN and its per-category clinically significant error counts (see the module docstring)."""

    Options = GreenOptions
    keys: ClassVar[dict[str, bool]] = {
        "green": True,
        **dict.fromkeys(ERROR_KEYS, False),
        "green_matched": True,
        JUDGE_FAILURES: False,
    }
    key_scale: ClassVar[dict[str, Scale]] = dict.fromkeys([*ERROR_KEYS, "green_matched", JUDGE_FAILURES], "raw")
    key_bounds: ClassVar[dict[str, Bounds]] = dict.fromkeys([*ERROR_KEYS, "green_matched", JUDGE_FAILURES], (0.0, None))
    count_keys = frozenset({JUDGE_FAILURES})
    parsers = ("green_released",)
    default_prompt = "green"

    def _words(self, text: str) -> str:
        limit: int = self.options.max_words  # type: ignore[attr-defined]
        return " ".join(text.split()[:limit])

    def judge_requests(
        self, parsed: Parsed | None, sample: Sample, sampled: SampledAnswers | None = None
    ) -> list[JudgeRequest]:
        if parsed is None:
            return []
        variables = {"reference": self._words(sample.answer), "candidate": self._words(parsed.text)}
        return [self.request(sample, variables)]

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        answer = self.answer(sample)
        if answer is None or answer.text is None:  # no model answer, or the judge could not be asked
            return {"green": 0.0, "verdict": None, "parse_error": None}
        analysis = parse_green(answer.text)
        return {
            "green": analysis.score,
            **dict(zip(ERROR_KEYS, analysis.significant, strict=True)),
            "green_matched": analysis.matched,
            "verdict": analysis.verdict(),
            "parse_error": analysis.parse_error,
        }

    def option_parts(self) -> list[Part]:
        return [*self.judge_parts(), ("max_words", str(self.options.max_words))]  # type: ignore[attr-defined]
