"""Prompt rendering: sample variables, the model's box format, multi-turn history, missing variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.errors import SpecError
from regbench.parsing import BOX_FORMATS
from regbench.prompts import PromptRenderer
from regbench.spec import ModelSpec, TaskSpec
from regbench.types import Region, Sample

SAMPLE = Sample(
    id="s1",
    question="Where is the liver?",
    image=["/x/img.png"],
    objects=[Region(name="liver", boxes=[[0.1, 0.2, 0.5, 0.6]])],
)


def renderer(prompt: str | list[str], box_format: str = "medrega", **model: object) -> PromptRenderer:
    task = TaskSpec(
        task="t", family="vqa", dataset={"path": "d.jsonl"}, prompt=prompt, metrics=["vqa"], system="Task system."
    )
    spec = ModelSpec(model="m", adapter="replay", path="p.jsonl", **model)  # type: ignore[arg-type]
    return PromptRenderer(task, spec, write_box=BOX_FORMATS.get(box_format).write)


def test_single_turn_with_system_image_and_box_filter() -> None:
    messages = renderer("What is <box>{{ objects[0].boxes[0] | box }}</box>? {{ question }}").messages(SAMPLE, 0, [])
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == "Task system."
    assert messages[1].content == "What is <box>[[100, 200, 500, 599]]</box>? Where is the liver?"
    assert messages[1].images == ["/x/img.png"]


def test_pixel_formats_write_boxes_in_the_samples_image_size() -> None:
    r = renderer("{{ objects[0].boxes | boxes }}", box_format="qwen25_vl")
    sized = SAMPLE.model_copy(update={"width": 1000, "height": 500})  # Qwen's processor resizes to 1008 x 504
    assert r.messages(sized, 0, [])[1].content == '{"bbox_2d": [101, 101, 504, 302]}'
    # without a size the format can only write 0-1 floats
    assert r.messages(SAMPLE, 0, [])[1].content == '{"bbox_2d": [0.1, 0.2, 0.5, 0.6]}'


def test_model_system_prompt_and_suffix() -> None:
    r = renderer("{{ question }}", system_prompt="Model system.", prompt_suffix=" Answer briefly.")
    messages = r.messages(SAMPLE, 0, [])
    assert messages[0].content == "Model system."
    assert messages[1].content == "Where is the liver? Answer briefly."


def test_multi_turn_feeds_back_earlier_answers() -> None:
    r = renderer(
        ["Find abnormal regions.", "Given {{ previous_objects[0].name }}, {{ history[0] | length }} chars: describe."]
    )
    turn2 = r.messages(SAMPLE, 1, ["<ref>nodule</ref>[[1, 2, 3, 4]]"], [Region(name="nodule", boxes=[[0, 0, 1, 1]])])
    assert [m.role for m in turn2] == ["system", "user", "assistant", "user"]
    assert turn2[2].content == "<ref>nodule</ref>[[1, 2, 3, 4]]"
    assert turn2[3].content == "Given nodule, 31 chars: describe."
    assert turn2[1].images == ["/x/img.png"] and turn2[3].images == []


def test_missing_variable_names_task_and_sample() -> None:
    with pytest.raises(SpecError) as info:
        renderer("{{ questoin }}").messages(SAMPLE, 0, [])
    assert info.value.field == "prompt"
    assert "task t" in str(info.value) and "'s1'" in str(info.value) and "questoin" in str(info.value)


def test_template_cannot_reach_python_internals() -> None:
    r = renderer("{{ question.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SpecError):
        r.messages(SAMPLE, 0, [])


def test_invalid_template_syntax_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a valid jinja2 template"):
        renderer("{{ question ")


def test_boxes_filter_groups_boxes_in_the_models_format() -> None:
    sample = SAMPLE.model_copy(
        update={"objects": [Region(name="kidney", boxes=[[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]])]}
    )
    text = renderer("<box>{{ objects[0].boxes | boxes }}</box>").messages(sample, 0, [])[1].content
    assert text == "<box>[[100, 100, 200, 200], [500, 500, 599, 599]]</box>"


def test_template_variables_are_every_sample_field_with_the_objects_as_regions() -> None:
    sample = SAMPLE.model_copy(update={"meta": {"organ": {"name": "liver"}}, "options": ["a", "b"], "width": 512})
    variables = renderer("{{ question }}").variables(sample, ["earlier"], SAMPLE.objects)
    assert variables.pop("objects") is sample.objects
    assert {k: v for k, v in variables.items() if not k.startswith("__")} == {
        **{k: v for k, v in sample.model_dump().items() if k != "objects"},
        "labels_list": "",
        "task_labels": [],
        "history": ["earlier"],
        "previous_objects": SAMPLE.objects,
    }
