"""Metrics scored by a judge model: the requests they need, and the answers they are handed back.

A judged metric stays pure (no adapter, no network): for each sample it *declares* the judge
requests it needs (:meth:`JudgedMetric.judge_requests`, each keyed by ``(sample id, purpose)``),
the runner sends them through the adapter layer (:mod:`regbench.judging`: the judge's own adapter,
the response cache, its concurrency and retries) and hands the answers back
(:meth:`JudgedMetric.receive`) before ``stats`` runs. Any plugin that needs a model's opinion on a
sample (a correctness verdict, a GREEN analysis, an entailment label) can use this interface: it
names its judge (a :class:`~regbench.spec.ModelSpec`), yields requests, reads answers.

Judge prompts are YAML files (:class:`JudgePrompt`): a system message, a jinja2 user template over the
variables the plugin supplies, the parser that reads the answer, generation settings. The bundled
ones live in ``regbench/judges/``; a task may name its own, relative to the task YAML.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regbench.errors import RegbenchError, SpecError
from regbench.metrics.base import Metric, MetricContext, Stats
from regbench.resolve import resolve_model
from regbench.signature import Part, Signature
from regbench.spec import GenerationSpec, ModelSpec
from regbench.types import Message, Parsed, Sample, SampledAnswers

JUDGE_FAILURES = "judge_parse_failures"
"""The results.json ``metrics`` key counting verdicts that could not be read (an integer)."""

BUNDLED_PROMPTS = Path(__file__).resolve().parents[1] / "judges"


@dataclass(frozen=True)
class JudgeRequest:
    """One question a metric asks its judge about one sample.

    ``purpose`` tells a plugin's requests of one sample apart (``"verdict"``; an NLI judge might use
    ``"entail:0>1"``); ``(sample_id, purpose)`` is the key its answer comes back under.
    """

    sample_id: str
    purpose: str
    messages: tuple[Message, ...]
    generation: GenerationSpec


@dataclass(frozen=True)
class JudgeAnswer:
    """The judge's answer to one request: its text, or why there is none (after the adapter's retries)."""

    text: str | None
    error: str | None = None
    cached: bool = False


AnswerKey = tuple[str, str]
"""``(sample id, purpose)``."""


class JudgePrompt(BaseModel):
    """A judge prompt YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    judge_prompt: str
    """The prompt's name."""
    description: str = ""
    source: str = ""
    """Where the text comes from (a paper's figure, a released repository), or that it is ours."""
    parser: str
    """How the answer is read (the plugin checks it knows this parser)."""
    system: str | None = None
    user: str
    """A jinja2 template over the variables the plugin supplies (strict: a missing one is an error)."""
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    criteria: list[str] = Field(default_factory=list)
    """The labels a multi-criterion parser reads, in order (``Accuracy``, ...)."""

    @cached_property
    def sha12(self) -> str:
        """The first 12 hex digits of the sha256 of everything that shapes the judge's answer and its reading."""
        content = self.model_dump(include={"parser", "system", "user", "generation", "criteria"}, mode="json")
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    def messages(self, variables: Mapping[str, str], *, where: str) -> tuple[Message, ...]:
        """The rendered system and user messages (``where`` names the prompt in an error)."""
        try:
            user = _templates().from_string(self.user).render(**variables)
        except jinja2.TemplateError as exc:
            raise RegbenchError(f"judge prompt {where}: {exc}") from None
        system = () if not self.system else (Message(role="system", content=self.system),)
        return (*system, Message(role="user", content=user))


def _templates() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def load_prompt(path: Path, *, field: str, task_file: str) -> JudgePrompt:
    """Read a judge prompt YAML; a missing or invalid one is a SpecError naming the task field and the file."""
    if not path.is_file():
        raise SpecError(task_file, field, f"judge prompt file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return JudgePrompt.model_validate(data)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(task_file, field, f"{path}: not a readable YAML file ({type(exc).__name__})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SpecError(task_file, field, f"{path}: {where}: {first['msg']}") from None


class JudgeOptions(BaseModel):
    """Options every judged metric takes."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    judge: str
    """The judge: a model name or a model YAML path (relative to the task YAML); its served name is in
    the signature."""
    temperature: float = Field(0.0, ge=0)
    """The judge's sampling temperature (0: greedy; VividMed used 0.1)."""
    prompt: str | None = None
    """A judge prompt YAML (relative to the task YAML); default: the plugin's bundled prompt
    (docs/judged-metrics.md)."""


class JudgedMetric(Metric):
    """A metric whose per-sample statistics come from a judge model's answers.

    Subclasses implement :meth:`judge_requests` (what to ask about a sample) and ``stats`` (read
    :meth:`answer` for the sample's requests). The runner calls :meth:`receive` with every answer
    before scoring. ``stats`` must put ``verdict`` and ``parse_error`` (``None`` when read) in its
    record; :meth:`judge_record` turns them and the raw answer into the samples.jsonl ``judge`` entry.
    """

    Options: ClassVar[type[BaseModel]] = JudgeOptions
    parsers: ClassVar[tuple[str, ...]] = ()
    """The parser names this plugin can read answers with."""
    default_prompt: ClassVar[str] = ""
    """The bundled prompt file's stem (``regbench/judges/<stem>.yaml``)."""
    purpose: ClassVar[str] = "verdict"
    judge_option: ClassVar[str] = "judge"
    """The option that names the judge (``judge``; semantic_entropy's is ``nli``)."""

    @property
    def needs_judge(self) -> bool:
        """Whether this configured plugin asks a judge (semantic_entropy does only when ``nli:`` names a
        model, not a local checkpoint); the runner starts and asks judges only for those that do."""
        return True

    def __init__(self, options: BaseModel | None = None, context: MetricContext | None = None) -> None:
        super().__init__(options, context)
        self._answers: dict[AnswerKey, JudgeAnswer] = {}
        self._recorded: dict[str, Signature] = {}

    def use_recorded_signatures(self, signatures: Mapping[str, str]) -> None:
        """Sign with the signatures a run wrote (``regbench merge``): the judge its shards were scored
        by, not the one its name or path would resolve to now (an environment variable may differ)."""
        self._recorded = {
            key: Signature.parse(text).comparable() for key, text in signatures.items() if key in self.output_keys()
        }

    def signature(self, key: str | None = None) -> Signature:
        if key is not None and key in self._recorded:
            return self._recorded[key]
        return super().signature(key)

    # -- the judge and its prompt ------------------------------------------------------
    @property
    def task_file(self) -> str:
        return self.context.source or self.context.task or "(task)"

    def _relative(self, value: str) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute() and self.context.source:
            path = Path(self.context.source).parent / path
        return path

    @cached_property
    def judge(self) -> ModelSpec:
        """The judge's model spec: a model YAML path relative to the task YAML, else a model name."""
        name: str = getattr(self.options, self.judge_option)
        field = f"metrics({self.name}).{self.judge_option}"
        if name.endswith((".yaml", ".yml")):
            path = self._relative(name)
            if not path.is_file():
                raise SpecError(self.task_file, field, f"{self.judge_option} {name!r}: model YAML not found: {path}")
            name = str(path)
        try:
            return resolve_model(name)
        except SpecError:
            raise
        except RegbenchError as exc:
            raise SpecError(self.task_file, field, f"{self.judge_option} {name!r}: {exc}") from None

    @cached_property
    def prompt(self) -> JudgePrompt:
        chosen: str | None = self.options.prompt  # type: ignore[attr-defined]
        path = self._relative(chosen) if chosen else BUNDLED_PROMPTS / f"{self.default_prompt}.yaml"
        prompt = load_prompt(path, field=f"metrics({self.name}).prompt", task_file=self.task_file)
        if prompt.parser not in self.parsers:
            raise SpecError(
                self.task_file,
                f"metrics({self.name}).prompt",
                f"{path}: parser {prompt.parser!r} is not one the {self.name} metric reads ({', '.join(self.parsers)})",
            )
        return prompt

    @property
    def judge_name(self) -> str:
        """The judge model's name as the signature writes it (the served name when the YAML gives one)."""
        name = self.judge.model_name or self.judge.model
        return name.replace("|", "/")

    def generation(self) -> GenerationSpec:
        """The prompt's generation settings with the metric's temperature (greedy by default)."""
        temperature: float = self.options.temperature  # type: ignore[attr-defined]
        return self.prompt.generation.model_copy(update={"temperature": temperature})

    def judge_parts(self) -> list[Part]:
        """The signature parts every judged key carries (the pinned order)."""
        return [
            ("judge", self.judge_name),
            ("prompt", self.prompt.sha12),
            ("temperature", f"{self.generation().temperature:g}"),
            ("parser", self.prompt.parser),
        ]

    def check(self) -> None:
        """Resolve the judge and read the prompt: a missing or unfit file is a SpecError (exit 2)."""
        _ = self.judge, self.prompt

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        """:meth:`check`, so a missing file stops the run before any request."""
        self.check()

    # -- requests and answers ----------------------------------------------------------
    def request(self, sample: Sample, variables: Mapping[str, str], purpose: str | None = None) -> JudgeRequest:
        """A request of ``sample`` with this plugin's prompt rendered over ``variables``."""
        where = f"{self.prompt.judge_prompt} (metric {self.name}, sample {sample.id!r})"
        return JudgeRequest(
            sample_id=sample.id,
            purpose=purpose or self.purpose,
            messages=self.prompt.messages(variables, where=where),
            generation=self.generation(),
        )

    def judge_requests(
        self, parsed: Parsed | None, sample: Sample, sampled: SampledAnswers | None = None
    ) -> list[JudgeRequest]:
        """What to ask the judge about one sample (``parsed`` is ``None`` when the model gave no answer;
        ``sampled``: the question's M answers under ``samples_per_question``, ``None`` otherwise)."""
        return []

    def receive(self, answers: Mapping[AnswerKey, JudgeAnswer]) -> None:
        """The judge's answers to the requests of :meth:`judge_requests`, before ``stats`` is called."""
        self._answers = dict(answers)

    def answer(self, sample: Sample, purpose: str | None = None) -> JudgeAnswer | None:
        return self._answers.get((sample.id, purpose or self.purpose))

    def judge_record(self, sample: Sample, stats: Stats) -> dict[str, Any] | None:
        """The samples.jsonl ``judge`` entry of this plugin for one sample: raw answer, verdict, parse error."""
        answer = self.answer(sample)
        if answer is None:
            return None
        record: dict[str, Any] = {
            "raw": answer.text,
            "verdict": stats.get("verdict"),
            "parse_error": stats.get("parse_error"),
        }
        if answer.error is not None:
            record["error"] = answer.error
        return record

    # -- the failure count -------------------------------------------------------------
    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        scores = super().sample_scores(stats)
        scores[JUDGE_FAILURES] = None  # a count over the split, not a per-sample value
        return scores

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        values = super().finalize(stats)
        values[JUDGE_FAILURES] = sum(1 for s in stats if s.get("parse_error") is not None)
        return values
