"""The records that flow through a run: samples in, messages to a model and its responses, parsed outputs."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

_M = TypeVar("_M", bound=BaseModel)
# BaseModel's own slot setters, called directly: object.__setattr__ would look each one up through the MRO
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def encodable(text: str) -> str:
    """``text`` with lone surrogates (what a JSON escape such as ``\\ud800`` decodes to) replaced by
    ``?``, so it can be cached and written as UTF-8. Model outputs are untrusted."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def built(cls: type[_M], values: dict[str, Any]) -> _M:
    """A ``cls`` from ``values`` without validation: what ``cls(**values)`` gives (the same fields and
    ``model_fields_set``) when the caller already guarantees every value is valid, encodable strings
    included. The parsers' hot path (issue 16): validating a ``Region`` cost as much as reading its boxes."""
    record = cls.__new__(cls)
    template, factories = _DEFAULTS[cls]
    fields = {**template, **values}  # the fields in their declared order
    for name, factory in factories:
        if name not in values:
            fields[name] = factory()
    _set_dict(record, fields)
    _set_fields_set(record, set(values))
    _set_extra(record, None)
    _set_private(record, None)
    return record


class Region(BaseModel):
    """A named object and its boxes: ``[x1, y1, x2, y2]`` or ``[x1, y1, z1, x2, y2, z2]`` in 0–1."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    boxes: list[list[float]] = Field(default_factory=list)
    phrase: str | None = None
    """The report sentence or phrase a box grounds (grounded reports)."""

    @field_validator("name", "phrase")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        return None if value is None else encodable(value)

    @field_validator("boxes")
    @classmethod
    def _box_lengths(cls, boxes: list[list[float]]) -> list[list[float]]:
        for i, box in enumerate(boxes):
            if len(box) not in (4, 6):
                raise ValueError(f"box {i} has {len(box)} numbers; expected 4 (2D) or 6 (3D)")
        return boxes


def region(name: str, boxes: list[list[float]]) -> Region:
    """``Region(name=name, boxes=boxes)`` without validation (:func:`built`): ``boxes`` must be lists of 4
    or 6 floats; ``name`` is made encodable here."""
    record = Region.__new__(Region)
    _set_dict(record, {"name": name if name.isascii() else encodable(name), "boxes": boxes, "phrase": None})
    _set_fields_set(record, {"name", "boxes"})
    _set_extra(record, None)
    _set_private(record, None)
    return record


class Sample(BaseModel):
    """One evaluation item, as in the canonical dataset JSONL (docs/formats.md)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    image: list[str] = Field(default_factory=list)
    """Absolute image paths (the loader resolves them relative to the data file)."""
    question: str = ""
    answer: str = ""
    objects: list[Region] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    answer_type: str | None = None
    language: str | None = None
    width: int | None = None
    height: int | None = None
    depth: int | None = None
    options: list[str] = Field(default_factory=list)
    """Answer choices (multiple-choice questions, classification prompts)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Every field of the source line that regbench does not know."""

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class Parsed(BaseModel):
    """A model output turned into structure. Any string parses; failures say why."""

    ok: bool = True
    raw: str = ""
    """The model's output as it came (paper-compatible modes re-read it with their own rules)."""
    text: str = ""
    """The output with reasoning, box tags and coordinates removed: what text metrics score."""
    objects: list[Region] = Field(default_factory=list)
    """Predicted (name, boxes) pairs, boxes in 0–1."""
    box_format: str | None = None
    """The box format used (``auto`` resolves to the one it detected)."""
    refusal: bool = False
    error: str | None = None
    skipped: list[str] = Field(default_factory=list)
    """Box-like spans that could not be read in an output that otherwise parsed (e.g. a box of 3
    numbers next to good ones): not a parse failure, but visible in samples.jsonl."""

    @field_validator("raw", "text")
    @classmethod
    def _encodable(cls, value: str) -> str:
        return encodable(value)


_DEFAULTS: dict[type[BaseModel], tuple[dict[str, Any], list[tuple[str, Any]]]] = {
    cls: (
        {name: field.default for name, field in cls.model_fields.items()},
        [(name, field.default_factory) for name, field in cls.model_fields.items() if field.default_factory],
    )
    for cls in (Region, Parsed)
}
"""The records :func:`built` makes: each field's default, in order, and the default factories (called per record)."""


class Message(BaseModel):
    """One chat message. ``images`` are local file paths attached to a user message."""

    role: str
    content: str
    images: list[str] = Field(default_factory=list)


class Response(BaseModel):
    """A model's answer, or the error that prevented one (the run goes on)."""

    text: str = ""
    error: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    cached: bool = False
    logprobs: list[float] | None = None
    """The answer's token log-probabilities (natural log), when the request asked for them and the
    backend sent them; ``None`` otherwise."""

    @field_validator("text", "error")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        return None if value is None else encodable(value)


class SampledAnswers(BaseModel):
    """A question's M answers under ``samples_per_question``: answer ``k`` was sampled with seed
    ``(generation.seed or 0) + k``; answer 0 is also the output the other metrics score."""

    texts: list[str]
    token_logprobs: list[list[float] | None]
    """Per answer its token log-probabilities, ``None`` where the backend sent none."""
