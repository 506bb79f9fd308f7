"""Typed specs for task, model, metric-suite and task-group YAML files.

A YAML file is data: it is read with ``yaml.safe_load``, string values may contain
``${VAR}`` or ``${VAR:-default}`` (expanded from the environment after parsing, so a
variable can never inject structure; flow mappings such as ``{path: ${DIR}/f}`` work too; a
default's leading ``~`` becomes the home directory, so ``${DATA:-~/data}`` works as in a shell),
and ``include:`` names other YAML files (relative to this one) whose mappings are merged
underneath it. Nothing in a YAML file is executed.

Every validation error is raised as :class:`~regbench.errors.SpecError` naming the
file, the field (``metrics[1].iou_threshold``) and what was expected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from regbench.errors import SpecError

Family = Literal["vqa", "report", "classification", "region_identification", "detection", "grounded_report"]
FAMILIES: tuple[str, ...] = Family.__args__  # type: ignore[attr-defined]

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The YAML file this spec was loaded from (relative paths resolve against it)."""
        return self._source


class GenerationSpec(_Spec):
    """Generation parameters; greedy decoding unless a task or model says otherwise."""

    max_tokens: int = Field(512, gt=0)
    temperature: float = Field(0.0, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    """Ask for the answer's token log-probabilities (``samples_per_question`` sets it on its requests)."""

    @model_serializer(mode="wrap")
    def _without_unset_logprobs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when unset, so cache keys and results.json of runs without it stay as they were.
        data: dict[str, Any] = handler(self)
        if self.logprobs is None:
            data.pop("logprobs", None)
        return data

    def merged(self, override: GenerationSpec | None) -> GenerationSpec:
        """This spec with every field that ``override`` sets explicitly replaced."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


class DatasetSpec(_Spec):
    """Where a task's samples come from."""

    loader: str = "jsonl"
    path: str | None = None
    """File for file-based loaders; relative paths are relative to the task YAML."""
    root: str | None = None
    """Dataset root for readers of public formats."""
    split: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    size: int | None = Field(None, ge=1)
    """The number of samples the split must load (a paper's test-set size); ``data check`` compares."""


class MetricRef(BaseModel):
    """One entry of a task's ``metrics:`` list: a plugin or suite name plus its options."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _names_as_refs(value: Any) -> Any:
    """``metrics: [nlg, {name: region_aligned, mode: medrega}]``: a bare name is a ref without options."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


MetricList = Annotated[list[MetricRef], BeforeValidator(_names_as_refs), Field(min_length=1)]


class TaskSpec(_Spec):
    """A task YAML: data, prompt(s), parsing and metrics."""

    task: str
    family: Family
    description: str = ""
    dataset: DatasetSpec
    language: Literal["en", "zh"] = "en"
    modality: str | None = None
    """Image modality (``chest_xray``, ``ct``, ``mri``, ...); some metrics warn outside their modality."""
    system: str | None = None
    prompt: str | list[str] = "{{ question }}"
    """A jinja2 template, or a list of them for a multi-turn conversation (the last turn is scored)."""
    expect_boxes: bool | None = None
    """Whether an output without boxes is a parse failure; defaults by family."""
    box_format: str | None = None
    """Force a box format for this task (normally the model YAML's ``box_format`` decides)."""
    labels: list[str] | None = None
    """The label set of a classification task."""
    generation: GenerationSpec | None = None
    metrics: MetricList
    tags: list[str] = Field(default_factory=list)
    samples_per_question: int | None = Field(None, ge=1)
    """Ask each question M times, answer ``k`` with seed ``(generation.seed or 0) + k`` and token
    log-probabilities (uncertainty metrics); answer 0 is the one every metric scores."""

    @model_serializer(mode="wrap")
    def _without_unset_sampling(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when unset, so results.json of tasks without it stays byte-identical.
        data: dict[str, Any] = handler(self)
        if self.samples_per_question is None:
            data.pop("samples_per_question", None)
        return data

    @property
    def turns(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def boxes_expected(self) -> bool:
        if self.expect_boxes is not None:
            return self.expect_boxes
        return self.family in ("detection", "grounded_report")


class EndpointSpec(_Spec):
    """One server of a model, with the requests it may have in flight: ``{url: ..., concurrency: 16}``."""

    url: str
    concurrency: int | None = Field(None, gt=0)
    """This server's own bound (in each running process: each shard of a sharded run counts on its own);
    unset, the model's ``concurrency``."""


class ModelSpec(_Spec):
    """A model YAML: which adapter talks to the model, and how the model writes boxes."""

    model: str
    adapter: str
    description: str = ""
    model_name: str | None = None
    """The model id the server or checkpoint knows it by."""
    base_url: str | list[str | EndpointSpec] | None = None
    """The server's URL, or several (used round robin, or by free slots when any names its ``concurrency``)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key. The key itself never appears in any file."""
    path: str | None = None
    """Checkpoint directory (transformers) or recorded-outputs JSONL (replay; ``{task}`` is replaced)."""
    box_format: str = "auto"
    system_prompt: str | None = None
    prompt_suffix: str | None = None
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    concurrency: int = Field(8, gt=0)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)
    """Adapter-specific settings (device, dtype, ...)."""
    start_hint: str | None = None
    """How to start the server, shown when nothing answers at ``base_url``."""
    lm_eval_model: str | None = None
    """The ``lm-eval`` adapter: the lm-evaluation-harness model name (``hf-multimodal``, ``vllm-vlm``, ...)."""
    model_args: dict[str, Any] | None = None
    """The ``lm-eval`` adapter: that model's keyword arguments (lm-eval's ``--model_args``)."""

    @field_validator("base_url", mode="before")
    @classmethod
    def _endpoint_entries(cls, value: Any) -> Any:
        """A wrong ``{url, concurrency}`` entry named as such (the union's errors began with "should be a string")."""
        if not isinstance(value, list):
            return value
        entries: list[Any] = []
        for index, entry in enumerate(value):
            if isinstance(entry, dict):
                try:
                    entry = EndpointSpec.model_validate(entry)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    where = ".".join(str(part) for part in error["loc"]) or "entry"
                    raise ValueError(f"entry {index}: {where}: {error['msg']}") from None
            entries.append(entry)
        return entries

    @property
    def base_urls(self) -> list[str]:
        return [url for url, _ in self.endpoints]

    @property
    def endpoints(self) -> list[tuple[str, int | None]]:
        """Each server's URL and its own concurrency (``None``: it shares the model's)."""
        if self.base_url is None:
            return []
        if isinstance(self.base_url, str):
            return [(self.base_url, None)]
        return [(u, None) if isinstance(u, str) else (u.url, u.concurrency) for u in self.base_url]


class SuiteSpec(_Spec):
    """A metric-suite YAML: a named bundle of metric plugins with options."""

    suite: str
    description: str = ""
    metrics: MetricList


class GroupSpec(_Spec):
    """A task-group YAML: several tasks run under one name."""

    group: str
    description: str = ""
    tasks: list[str] = Field(min_length=1)


KIND_BY_KEY: dict[str, type[_Spec]] = {
    "task": TaskSpec,
    "model": ModelSpec,
    "suite": SuiteSpec,
    "group": GroupSpec,
}


# ---------------------------------------------------------------- loading


def expand_env(value: Any, *, file: str, field: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree (a default's
    leading ``~`` expanded; a variable's value is taken as it is)."""
    if isinstance(value, dict):
        return {k: expand_env(v, file=file, field=_join(field, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file=file, field=f"{field}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:  # a default's leading ~ is the home directory, as in a shell
            return os.path.expanduser(default) if default.startswith("~") else default
        raise SpecError(file, field, f"environment variable {name} is not set and ${{{name}}} has no default")

    return _ENV_PATTERN.sub(substitute, value)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path, *, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one YAML mapping, resolving ``include:`` (depth-first, later includes win)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise SpecError(str(path), "include", f"include cycle: {chain}")
    if not path.is_file():
        raise SpecError(str(path), "", "file not found")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(str(path), where, f"not valid YAML: {problem}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, dict):
        raise SpecError(str(path), "", f"expected a mapping at the top level, got {type(data).__name__}")
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SpecError(str(path), "include", "expected a file name or a list of file names")
    merged: dict[str, Any] = {}
    for name in includes:
        merged = _deep_merge(merged, read_yaml(path.parent / name, _seen=(*_seen, path)))
    return _deep_merge(merged, data)


def parse_yaml(text: str, *, fast: bool = False) -> Any:
    """``yaml.safe_load`` of a spec's text, ``${...}`` references kept as written (also in flow mappings).

    ``fast``: libyaml's safe loader when PyYAML has it, 8x faster and the same data for valid YAML;
    its error messages differ, so only the spec index (which skips files it cannot read) uses it."""
    shielded, variables = _shield_variables(text)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader
    return _unshield(yaml.load(shielded, Loader=loader), variables)


def _shield_variables(text: str) -> tuple[str, tuple[re.Pattern[str], list[str]]]:
    """``text`` with every ``${...}`` replaced by a plain word, so ``{path: ${DIR}/f}`` (a flow
    mapping, whose braces YAML would otherwise read as structure) parses; ``_unshield`` puts the
    references back into the parsed strings, which ``expand_env`` then expands. A reference comes
    back as written: YAML escapes inside a default (``"${X:-caf\\u00e9}"``) are not read."""
    stem = "regbenchvar"
    while stem in text:
        stem += "x"
    found: list[str] = []

    def shield(match: re.Match[str]) -> str:
        found.append(match.group(0))
        return f"{stem}{len(found) - 1}{stem}"

    return _ENV_PATTERN.sub(shield, text), (re.compile(rf"{stem}(\d+){stem}"), found)


def _unshield(value: Any, variables: tuple[re.Pattern[str], list[str]]) -> Any:
    pattern, found = variables
    if not found:
        return value
    if isinstance(value, dict):
        return {_unshield(k, variables): _unshield(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshield(v, variables) for v in value]
    if isinstance(value, str):
        return pattern.sub(lambda m: found[int(m.group(1))], value)
    return value


def kind_of(data: dict[str, Any]) -> str | None:
    """Which spec a parsed YAML mapping is (``task``, ``model``, ``suite``, ``group``)."""
    return next((key for key in KIND_BY_KEY if key in data), None)


def validate(spec_type: type[_Spec], data: dict[str, Any], *, file: str) -> Any:
    """Validate a mapping against a spec model; errors become a SpecError naming file and field."""
    try:
        return spec_type.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from(exc, file=file) from None


def spec_error_from(exc: ValidationError, *, file: str, prefix: str = "") -> SpecError:
    """The first (and a count of further) pydantic errors as a one-paragraph SpecError."""
    errors = exc.errors()
    first = errors[0]
    field = prefix
    for part in first["loc"]:
        field = f"{field}[{part}]" if isinstance(part, int) else _join(field, part)
    message = _describe(first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return SpecError(file, field, message)


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the docs for the allowed fields)"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {got!r}"
    return f"{error['msg'].lower()}, got {got!r}"


def load_spec(path: Path, expected: type[_Spec] | None = None) -> Any:
    """Load a task, model, suite or group YAML file into its typed spec."""
    file = str(path)
    data = expand_env(read_yaml(path), file=file)
    kind = kind_of(data)
    if kind is None and expected is not None:  # validate as expected, so the missing name is reported
        kind = next(k for k, v in KIND_BY_KEY.items() if v is expected)
    if kind is None:
        keys = ", ".join(KIND_BY_KEY)
        raise SpecError(file, "", f"not a regbench spec: expected one of the keys {keys} at the top level")
    spec_type = KIND_BY_KEY[kind]
    if expected is not None and spec_type is not expected:
        want = next(k for k, v in KIND_BY_KEY.items() if v is expected)
        raise SpecError(file, kind, f"expected a {want} YAML, this file is a {kind} YAML")
    spec = validate(spec_type, data, file=file)
    spec._source = path.resolve()
    return spec
