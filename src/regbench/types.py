"""The records that flow through a run: samples in, messages to a model and its responses, parsed outputs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def encodable(text: str) -> str:
    """``text`` with lone surrogates (what a JSON escape such as ``\\ud800`` decodes to) replaced by
    ``?``, so it can be cached and written as UTF-8. Model outputs are untrusted."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


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

    @field_validator("text", "error")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        return None if value is None else encodable(value)
