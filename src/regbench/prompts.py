"""Prompt rendering: jinja2 templates from task YAML, single- and multi-turn.

Templates run in jinja2's sandbox with ``StrictUndefined``: a template can read the
sample's fields and call a few formatting filters, nothing else, and a variable the
sample does not have is an error naming the task and the turn.

Variables: every field of the sample (``question``, ``objects``, ``labels``, ``options``,
``meta``, ...), ``labels_list`` (the task's label set, one per line), ``history`` (the
model's earlier answers in this conversation) and ``previous_objects`` (the regions
parsed from the previous answer, for MedRegA's Regional CoT).
Filters: ``box`` and ``boxes`` write 0–1 boxes in the model's box format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from regbench.errors import SpecError
from regbench.spec import ModelSpec, TaskSpec
from regbench.types import Message, Region, Sample

BoxWriter = Callable[[Sequence[float], Sample | None], str]
_SAMPLE = "__sample__"  # the sample being rendered, for formats that write pixels of its image


def write_boxes(write_box: BoxWriter, boxes: Sequence[Sequence[float]], sample: Sample | None = None) -> str:
    """Several boxes in one group: ``[[a], [b]]`` for double-bracket formats, else comma-separated."""
    written = [write_box(b, sample) for b in boxes]
    if written and all(w.startswith("[[") and w.endswith("]]") for w in written):
        return "[" + ", ".join(w[1:-1] for w in written) + "]"
    return ", ".join(written)


class PromptRenderer:
    """Renders one task's turns for one model."""

    def __init__(self, task: TaskSpec, model: ModelSpec, *, write_box: BoxWriter) -> None:
        self.task, self.model = task, model
        env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
        env.filters["box"] = pass_context(lambda ctx, box: write_box(box, _sample_of(ctx)))
        env.filters["boxes"] = pass_context(lambda ctx, boxes: write_boxes(write_box, boxes, _sample_of(ctx)))
        self._file = str(task.source or task.task)
        try:
            self._turns = [env.from_string(turn) for turn in task.turns]
            self._system = env.from_string(self.system_template) if self.system_template else None
        except TemplateError as exc:
            raise SpecError(self._file, "prompt", f"not a valid jinja2 template: {exc}") from None
        except TypeError as exc:  # {% include %} / {% import %}: there is no template loader, by design
            raise SpecError(self._file, "prompt", f"templates cannot include or import files: {exc}") from None

    @property
    def n_turns(self) -> int:
        return len(self._turns)

    @property
    def system_template(self) -> str | None:
        """The model's system prompt overrides the task's (models are trained on their own)."""
        return self.model.system_prompt or self.task.system

    def variables(self, sample: Sample, history: Sequence[str], previous_objects: Sequence[Region]) -> dict[str, Any]:
        fields = sample.model_dump(exclude={"objects"})  # the objects go in as they are (half the dump's time)
        return {
            **fields,
            "objects": sample.objects,
            "labels_list": "\n".join(self.task.labels or []),
            "task_labels": self.task.labels or [],
            "history": list(history),
            "previous_objects": list(previous_objects),
            _SAMPLE: sample,
        }

    def messages(
        self,
        sample: Sample,
        turn: int,
        history: Sequence[str],
        previous_objects: Sequence[Region] = (),
    ) -> list[Message]:
        """The conversation up to and including user turn ``turn`` (0-based).

        ``history`` holds the model's answers to turns ``0 .. turn-1``; they are fed back
        as assistant messages.
        """
        context = self.variables(sample, history, previous_objects)
        messages: list[Message] = []
        if self._system is not None:
            messages.append(Message(role="system", content=self._render(self._system, context, "system")))
        for index in range(turn + 1):
            text = self._render(self._turns[index], context, f"prompt[{index}]" if self.n_turns > 1 else "prompt")
            if self.model.prompt_suffix:
                text = f"{text}{self.model.prompt_suffix}"
            images = sample.image if index == 0 else []
            messages.append(Message(role="user", content=text, images=images))
            if index < turn:
                messages.append(Message(role="assistant", content=history[index]))
        return messages

    def _render(self, template: Any, context: dict[str, Any], field: str) -> str:
        try:
            return template.render(context).strip()
        except UndefinedError as exc:
            raise SpecError(
                self._file,
                field,
                f"task {self.task.task}: template variable missing for sample {context['id']!r}: {exc.message}",
            ) from None
        except (TemplateError, TypeError) as exc:  # TypeError: {% include %} with no loader, by design
            raise SpecError(self._file, field, f"task {self.task.task}: {exc}") from None


def _sample_of(context: Context) -> Sample | None:
    sample = context.get(_SAMPLE)
    return sample if isinstance(sample, Sample) else None
