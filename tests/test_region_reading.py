"""MedRegA's released reading (the ``medrega_released`` box format) and how a plugin gets its own reading.

The one-output path reads what the released evaluator's pattern reads (written out here from
``PATTERN_REGCAP``, as the evaluator applies it), the batch path equals the one-output path output
by output (regex and numba), and the runner gives a ``mode: medrega`` plugin this reading and
counts the outputs it cannot read as parse failures.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from regbench import accel
from regbench.cli import app
from regbench.metrics.region import RegionAligned
from regbench.parsing import BOX_FORMATS, parse_output
from regbench.parsing import medrega_released as released
from regbench.parsing.readings import ParsedColumns, ReadItems, read_outputs
from regbench.results import SampleRecord
from regbench.types import Parsed, Region, Sample, encodable

RELEASED = BOX_FORMATS.get("medrega_released")
REPO = Path(__file__).resolve().parents[1]

# evaluator_reg.py
PATTERN_REGCAP = r"([^\[\]]*)(\[\[\d+,\s*\d+,\s*\d+,\s*\d+\](?:,\s*\[\d+,\s*\d+,\s*\d+,\s*\d+\])*\])"


def released_evaluator(raw: str) -> tuple[list[list[float]], list[str]]:
    """The released reading of one prediction: every box of every list / 999, named by its group's text,
    lower-cased. (A number too large for a float stops the released code; regbench reads it as infinity.)"""

    def scaled(digits: str) -> float:
        try:
            return int(digits) / 999
        except (OverflowError, ValueError):
            return math.inf

    boxes, names = [], []
    for text, lists in re.findall(PATTERN_REGCAP, raw):
        for box in re.findall(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]", lists):
            boxes.append([scaled(v) for v in box])
            names.append(text.lower())
    return boxes, names


box_list = st.lists(
    st.lists(st.integers(0, 1200), min_size=4, max_size=4).map(lambda v: "[" + ", ".join(map(str, v)) + "]"),
    min_size=1,
    max_size=3,
).map(lambda boxes: "[" + ",".join(boxes) + "]")
pieces = [
    "[[", "]]", "[", "]", ", ", ",", " ", "\t", "\x1c", "\x85", "\xa0", "\u3000", "<ref>", "</ref>", "<box>",
    "</box>", "<think>", "</think>", "Liver", "LIVER", "肝脏", "İ", "3", "999", "１", "٣", "99999999999999999999",
    "9007199254740993", "0.5", "Not present.", "\ud800",
]  # fmt: skip
medrega_text = st.lists(
    st.one_of(box_list, st.sampled_from(pieces), st.integers(0, 2000).map(str), st.text(max_size=3)), max_size=40
).map("".join)
outputs = st.one_of(medrega_text, st.text())


def flat(parsed: Parsed) -> tuple[list[list[float]], list[str]]:
    return [b for r in parsed.objects for b in r.boxes], [r.name for r in parsed.objects for _ in r.boxes]


@settings(max_examples=400, deadline=None)
@given(raw=outputs, expect=st.booleans())
def test_one_output_reads_what_the_released_evaluator_reads(raw: str, expect: bool) -> None:
    parsed = RELEASED.read(raw, expect_boxes=expect)
    assert flat(parsed) == released_evaluator(encodable(raw)) == released.released_boxes(encodable(raw))
    assert parsed.box_format == "medrega_released" and parsed.raw == encodable(raw)
    if parsed.objects:
        assert parsed.ok and not parsed.refusal
    else:  # as the parser chain judges an output without boxes
        chain = parse_output(encodable(raw), box_format="medrega_released", expect_boxes=expect)
        if not chain.objects:  # (dropping the reasoning can join brackets into a list the whole output lacks)
            assert (parsed.ok, parsed.refusal, parsed.error) == (chain.ok, chain.refusal, chain.error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(st.one_of(st.none(), outputs), max_size=8), expect=st.booleans(), compiled=st.booleans())
def test_batch_reading_equals_the_one_output_reading(raws: list[str | None], expect: bool, compiled: bool) -> None:
    with pytest.MonkeyPatch.context() as patch, accel.numba_disabled(not compiled):
        patch.setattr(accel, "MIN_SIZE", 0)  # the compiled scanner for any batch (when numba is installed)
        batch = RELEASED.read_batch(raws, expect_boxes=expect)
    one_by_one = [RELEASED.read(raw, expect_boxes=expect) for raw in raws]
    assert batch.counts.tolist() == [len(flat(p)[0]) for p in one_by_one]
    assert batch.boxes.reshape(-1, 4).tolist() == [box for p in one_by_one for box in flat(p)[0]]
    assert batch.names == [name for p in one_by_one for name in flat(p)[1]]
    assert batch.ok.tolist() == [p.ok for p in one_by_one]
    assert list(batch) == one_by_one and batch[1:3] == one_by_one[1:3]


@settings(max_examples=500, deadline=None)
@given(text=medrega_text)
def test_the_linear_time_pattern_finds_what_the_released_one_finds(text: str) -> None:
    assert released._GROUP_LONG.findall(text) == released._GROUP.findall(text) == re.findall(PATTERN_REGCAP, text)


def test_the_released_reading_by_example() -> None:
    parsed = RELEASED.read("<think>[[1, 2, 3, 4]]</think><ref>Liver</ref><box>[[999, 0, 0, 1200]]</box> [5, 6, 7, 8]")
    assert [(r.name, r.boxes) for r in parsed.objects] == [
        ("<think>", [[1 / 999, 2 / 999, 3 / 999, 4 / 999]]),  # the reasoning is read too, as released
        ("</think><ref>liver</ref><box>", [[1.0, 0.0, 0.0, 1200 / 999]]),  # neither reordered nor clipped
    ]
    assert parsed.ok and parsed.text == "Liver [5, 6, 7, 8]"
    refusal = RELEASED.read("Not present.", expect_boxes=True)
    assert refusal.ok and refusal.refusal and not refusal.objects
    failed = RELEASED.read("<box>[100, 200, 300, 400]</box>", expect_boxes=True)
    assert not failed.ok and failed.error == "no box in medrega_released format found"
    assert RELEASED.read("<box>[100, 200, 300, 400]</box>").ok  # boxes not expected: no failure
    assert RELEASED.read(None).error == "no output (model error)"
    assert not RELEASED.read("<think>x</think> ").ok
    huge = RELEASED.read("[[" + "9" * 400 + ", 0, 1, 1]]")
    assert huge.objects[0].boxes[0][0] == math.inf
    assert RELEASED.write([0.1, 0.2, 0.35, 0.6]) == "[[100, 200, 350, 599]]"


def test_plugins_declare_their_reading() -> None:
    def plugin(mode: str) -> RegionAligned:
        return RegionAligned(RegionAligned.Options(mode=mode))

    assert plugin("medrega").reads == "medrega_released"
    assert plugin("standard").reads is None and plugin("m3d").reads is None
    sample = Sample(id="s", objects=[Region(name="liver", boxes=[[0.1, 0.1, 0.5, 0.5]])])
    wrong = parse_output("<ref>liver</ref><box>[[100, 100, 500, 500]]</box>", box_format="medrega")
    with pytest.raises(ValueError, match="medrega_released"):
        plugin("medrega").stats(wrong, sample)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raws=st.lists(st.one_of(st.none(), medrega_text), min_size=1, max_size=8),
    subtask=st.sampled_from([None, "multi_object_multi_region"]),
)
def test_the_medrega_plugin_scores_the_batch_columns_as_the_parsed_outputs(
    raws: list[str | None], subtask: str | None
) -> None:
    references = [
        Sample(id=str(i), objects=[Region(name="liver", boxes=[[0.0, 0.0, 0.5, 0.5]] * (i % 3))])
        for i in range(len(raws))
    ]
    plugin = RegionAligned(RegionAligned.Options(mode="medrega", subtask=subtask))
    readings = read_outputs(raws, references, box_format="medrega", expect_boxes=True, reads={plugin.reads})
    by_columns = plugin.stats_batch(readings.items(plugin.reads))
    by_parsed = plugin.stats_batch(
        [(RELEASED.read(raw, expect_boxes=True), s) for raw, s in zip(raws, references, strict=True)]
    )
    items = readings.items(plugin.reads)
    assert isinstance(items, ReadItems) and isinstance(items.parsed, ParsedColumns)
    items.parsed.read_one = None  # type: ignore[assignment]  # the plugin takes the columns, never one output
    assert plugin.stats_batch(items) == by_columns == by_parsed
    assert plugin.finalize(by_columns) == plugin.finalize(by_parsed)


def test_outputs_the_released_reading_cannot_read_are_parse_failures(tmp_path: Path) -> None:
    recorded = REPO / "models/recorded/medrega/demo_detection_medrega.jsonl"
    lines = [json.loads(line) for line in recorded.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["id"] == "det1"
    lines[0]["output"] = "<ref>liver</ref><box>[170, 220, 519, 519]</box>"  # the medrega format reads it; MedRegA's not
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    command = ["score", "--task", "demo_detection_medrega", "-p", str(predictions), "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*command, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "predictions" / "demo_detection_medrega"
    results = json.loads((folder / "results.json").read_text())
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    det1 = records[0]
    assert det1["parsed"]["ok"] and det1["stats"]["region_aligned"]["n_pred"] == 0
    assert det1["reading_errors"] == {"medrega_released": "no box in medrega_released format found"}
    assert [("reading_errors" in r) for r in records] == [True] + [False] * 5  # det4 fails the task's parse already
    recounted = sum(SampleRecord(**record).parse_failed for record in records)  # what `merge` recounts
    assert results["n_parse_failures"] == 2 == recounted
