"""The fast parser equals the reference parser (issue 16): ``parse_output`` and the bracket formats'
``extract`` were rewritten for speed; ``regbench.parsing.reference`` keeps the previous code, and
every output (arbitrary strings, MedRegA-like structures, every bundled recorded output) must parse
to the same ``Parsed`` with either: equal fields, the same fields set, the same JSON bytes (so a
``-0.0`` stays a ``-0.0``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from regbench.parsing import BOX_FORMATS, parse_output
from regbench.parsing.boxes import to_unit_box
from regbench.parsing.reference import clean_text_reference, parse_output_reference, to_unit_box_reference
from regbench.parsing.text import clean_text
from regbench.types import Parsed, Region, Sample, built, region

ROOT = Path(__file__).resolve().parents[1]
FORMATS = BOX_FORMATS.names()
SAMPLE = Sample(id="s", width=640, height=480)


def assert_same(fast: Parsed, reference: Parsed) -> None:
    assert fast == reference
    assert fast.model_fields_set == reference.model_fields_set
    assert fast.model_dump_json() == reference.model_dump_json()
    for mine, theirs in zip(fast.objects, reference.objects, strict=True):
        assert type(mine) is Region and mine.model_fields_set == theirs.model_fields_set


def check(text: str | None) -> None:
    for box_format in FORMATS:
        for expect_boxes in (False, True):
            for sample in (None, SAMPLE):
                options = {"box_format": box_format, "sample": sample, "expect_boxes": expect_boxes}
                assert_same(parse_output(text, **options), parse_output_reference(text, **options))


# Pieces MedRegA-like outputs are made of, with the near misses the general pattern handles differently.
piece = st.sampled_from(
    [
        "<ref>", "</ref>", "<box>", "</box>", "<REF>", "<think>", "</think>", "<p>", "</p>",
        "[[", "]]", "[", "]", "], [", ", ", ",", " ", "  ", "\n", "\t", "\x1c", "\u3000", ":", "：", ";", "，", "、",
        "0", "1", "999", "12", "1000", "0.5", ".5", "5.", "-3", "+4", "1e9", "1e999", "07", "٣", "１",
        "liver", "right lung", "The", "is seen in the", "(", ")", "and", ".", "Not present.", "肺", "\ud800",
    ]
)  # fmt: skip
number = st.one_of(st.integers(0, 1200).map(str), st.sampled_from(["0.25", "-1", "1e3", "٣", "07", " 5", "5 ", "4,"]))
# mostly boxes as MedRegA writes them (the fast lane), else any count and syntax of numbers (the general one)
plain_box = st.lists(st.integers(0, 1200).map(str), min_size=4, max_size=4).map(lambda v: "[" + ", ".join(v) + "]")
other_box = st.lists(number, min_size=3, max_size=7).map(lambda v: "[" + ", ".join(v) + "]")
box = st.one_of(plain_box, plain_box, other_box)
name = st.sampled_from(["liver", "right lung", "", " heart ", "a[b", "肺", "x\ud800", "left lung (upper)"])
group = st.builds(
    lambda n, bs, outer, sep: f"<ref>{n}</ref><box>{'[' * outer}{', '.join(bs)}{']' * outer}</box>{sep}",
    name,
    st.lists(box, min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from(["", ", ", ": ", " ", ". ", ",\n"]),
)
prose = st.sampled_from(["", "The ", "A nodule is seen in the ", "Findings: ", " and ", ". ", "Not present."])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
@example(None)  # type: ignore[arg-type]
@example("")
@example("<think>")
def test_any_string_parses_as_the_reference_does(text: str | None) -> None:
    check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(piece, max_size=40).map("".join))
def test_box_syntax_near_misses_parse_as_the_reference_does(text: str) -> None:
    check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(prose, group), min_size=1, max_size=6), prose)
@example([("", "<ref>liver</ref><box>[[1, 2, 3, 4], [5, 6, 7, 8]]</box>, ")], "")
@example([("Seen in the ", "<ref>right lung</ref><box>[[102, 106, 481, 910]]</box>. ")], "The end.")
@example([("", "<ref>x</ref><box>[[-0, 5, 0, 9]]</box>")], "")
@example([("", "<ref> heart </ref><box>[[1, 2, 3, 4]]</box>")], "")
@example([("liver [1, 2, 3, 4, ] and ", "<ref>x</ref><box>[[1, 2, 3, 4 ,\t]]</box>")], "")
def test_grounded_answers_parse_as_the_reference_does(parts: list[tuple[str, str]], tail: str) -> None:
    check("".join(a + b for a, b in parts) + tail)


def recorded_outputs() -> list[str]:
    outputs = []
    for path in sorted((ROOT / "models" / "recorded").glob("*/*.jsonl")):
        outputs += [json.loads(line)["output"] for line in path.read_text().splitlines() if line.strip()]
    return outputs


def test_every_bundled_recorded_output_parses_as_the_reference_does() -> None:
    outputs = recorded_outputs()
    assert len(outputs) > 50  # the bundled recordings are there
    for output in outputs:
        check(output)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0]), min_size=0, max_size=7))
@example([-0.0, 0.0, -0.0, 0.0])
@example([0.0, -0.0, 0.0, -0.0])
@example([math.nan, 1, 2, 3])
def test_to_unit_box_equals_the_reference(values: list[float]) -> None:
    for scale_x, scale_y in ((999, None), (1.0, None), (640.0, 480.0)):
        fast, reference = to_unit_box(values, scale_x, scale_y), to_unit_box_reference(values, scale_x, scale_y)
        assert json.dumps(fast) == json.dumps(reference)


@given(st.text(max_size=100) | st.lists(piece, max_size=30).map("".join))
def test_clean_text_equals_the_reference(text: str) -> None:
    assert clean_text(text) == clean_text_reference(text)


def test_records_built_without_validation_equal_validated_ones() -> None:
    boxes = [[0.1, 0.2, 0.3, 0.4]]
    fast, validated = region("x\ud800", boxes), Region(name="x\ud800", boxes=boxes)
    assert fast == validated and fast.name == "x?" and fast.model_fields_set == validated.model_fields_set
    assert list(fast.__dict__) == list(validated.__dict__)
    first, second = built(Parsed, {"ok": True}), built(Parsed, {"ok": True})
    first.objects.append(fast)
    assert second.objects == [] and second == Parsed(ok=True)  # a default factory is called per record
    assert list(first.__dict__) == list(Parsed(ok=True).__dict__)


@pytest.mark.parametrize("box_format", ["medrega", "internvl", "m4cxr"])
def test_a_format_written_box_reads_back(box_format: str) -> None:
    fmt = BOX_FORMATS.get(box_format)
    text = f"<ref>liver</ref><box>{fmt.write([0.1, 0.2, 0.5, 0.6])}</box>"
    parsed = parse_output(text, box_format=box_format, expect_boxes=True)
    assert parsed.ok and [r.name for r in parsed.objects] == ["liver"]
    assert parsed.objects[0].boxes[0] == pytest.approx([0.1, 0.2, 0.5, 0.6], abs=1e-2)
