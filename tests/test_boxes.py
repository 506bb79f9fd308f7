"""Box parsers: every format of METRICS.md, auto detection, refusals, failures, the grounded-report split."""

from __future__ import annotations

import re

import pytest

from regbench.errors import RegbenchError
from regbench.parsing import BOX_FORMATS, parse_output
from regbench.parsing.base import is_refusal
from regbench.types import Sample

GRID = ("medrega", "qwen_vl")  # 0-999 formats: values come back as k / 999


def boxes_of(text: str, fmt: str, sample: Sample | None = None) -> list[tuple[str, list[float]]]:
    parsed = parse_output(text, box_format=fmt, sample=sample, expect_boxes=True)
    assert parsed.ok, parsed.error
    return [(o.name, b) for o in parsed.objects for b in o.boxes]


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("medrega", "<ref>liver</ref><box>[[100, 200, 300, 400]]</box>", [("liver", [100, 200, 300, 400])]),
        ("medrega", "<ref>liver</ref><ref>[100, 200, 300, 400]</ref>", [("liver", [100, 200, 300, 400])]),
        ("qwen_vl", "<ref>liver</ref><box>(100,200),(300,400)</box>", [("liver", [100, 200, 300, 400])]),
        ("internvl", "<ref>liver</ref><box>[[100, 200, 300, 400]]</box>", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        (
            "qwen2_vl",
            "<|object_ref_start|>liver<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>"
            "<|box_start|>(0,0),(500,1000)<|box_end|>",
            [("liver", [0.1, 0.2, 0.3, 0.4]), ("liver", [0.0, 0.0, 0.5, 1.0])],
        ),
        ("m4cxr", "[10, 20, 30, 40].", [("", [0.1, 0.2, 0.3, 0.4])]),
        ("m4cxr", "consolidation [10, 20, 30, 40]", [("consolidation", [0.1, 0.2, 0.3, 0.4])]),
        ("normalized", "liver [0.1, 0.2, 0.3, 0.4]", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        ("m3d", "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]", [("", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]),
        ("m3d", "<bx_start>[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]<bx_end>", [("", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]),
        ("vividmed", "<p>opacity</p> [0.1, 0.2, 0.3, 0.4] is seen", [("opacity", [0.1, 0.2, 0.3, 0.4])]),
        ("vividmed", "<p> opacity</p> [0.1, 0.2, 0.3, 0.4]", [("opacity", [0.1, 0.2, 0.3, 0.4])]),
    ],
)
def test_box_formats(fmt: str, text: str, expected: list[tuple[str, list[float]]]) -> None:
    got = boxes_of(text, fmt)
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (_, box), (_, want) in zip(got, expected, strict=True):
        scale = 999 if fmt in GRID else 1
        assert box == pytest.approx([v / scale for v in want])


def test_swapped_corners_are_reordered_and_out_of_range_values_clipped() -> None:
    assert boxes_of("<ref>x</ref><box>[[300, 400, 100, 200]]</box>", "medrega")[0][1] == pytest.approx(
        [100 / 999, 200 / 999, 300 / 999, 400 / 999]
    )
    assert boxes_of("x [1.5, -0.2, 0.5, 0.5]", "normalized")[0][1] == pytest.approx([0.5, 0.0, 1.0, 0.5])
    assert boxes_of("[0.9, 0.1, 0.2, 0.1, 0.8, 0.9]", "m3d")[0][1] == pytest.approx([0.1, 0.1, 0.2, 0.9, 0.8, 0.9])


def test_several_boxes_and_objects_keep_their_names() -> None:
    text = "<ref>kidney</ref><box>[[1, 2, 3, 4], [5, 6, 7, 8]]</box> and <ref>liver</ref><box>[[9, 10, 11, 12]]</box>"
    parsed = parse_output(text, box_format="medrega", expect_boxes=True)
    assert [(o.name, len(o.boxes)) for o in parsed.objects] == [("kidney", 2), ("liver", 1)]
    assert parsed.text == "and"


def test_chinese_names() -> None:
    parsed = parse_output("<ref>胰腺癌</ref><box>[[100, 200, 300, 400]]</box>：胰头占位。", box_format="auto")
    assert parsed.objects[0].name == "胰腺癌" and parsed.text == "胰头占位。"


def test_qwen25_needs_the_image_size() -> None:
    text = '```json\n[{"bbox_2d": [28, 56, 140, 280], "label": "liver"}]\n```'
    sized = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s", width=280, height=560))
    assert sized.objects[0].name == "liver"
    assert sized.objects[0].boxes[0] == pytest.approx([0.1, 0.1, 0.5, 0.5])
    unsized = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s"), expect_boxes=True)
    assert not unsized.ok and "width" in (unsized.error or "")
    broken = '{"bbox_2d": [20, 40, 100, 200], "label": "liver",}'  # not JSON: read field by field
    assert parse_output(broken, box_format="qwen25_vl", sample=Sample(id="s", width=200, height=400)).objects


@pytest.mark.parametrize("fmt", sorted(set(BOX_FORMATS.names()) - {"auto"}))
def test_write_then_read_gives_the_box_back(fmt: str) -> None:
    box = [0.1, 0.2, 0.3, 0.35, 0.6, 0.7] if fmt == "m3d" else [0.1, 0.2, 0.35, 0.6]
    sample = Sample(id="s", width=640, height=480)
    written = BOX_FORMATS.get(fmt).write(box, sample)
    text = {
        "qwen25_vl": written,
        "vividmed": f"<p>liver</p> {written}",
        "qwen_vl": f"<ref>liver</ref><box>{written}</box>",
        "qwen2_vl": f"<|object_ref_start|>liver<|object_ref_end|><|box_start|>{written}<|box_end|>",
    }.get(fmt, f"<ref>liver</ref><box>{written}</box>")
    got = boxes_of(text, fmt, sample)
    assert len(got) == 1
    assert got[0][1] == pytest.approx(box, abs=1.5e-3)  # the grid rounds to 1/999 or one pixel


def test_auto_writes_medregas_grid() -> None:
    assert BOX_FORMATS.get("auto").write([0.1, 0.2, 0.35, 0.6]) == "[[100, 200, 350, 599]]"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('[{"bbox_2d": [1, 2, 3, 4]}]', "qwen25_vl"),
        ("<box>(1,2),(3,4)</box>", "qwen_vl"),
        ("<|box_start|>(1,2),(3,4)<|box_end|>", "qwen2_vl"),
        ("<p>nodule</p> [0.1, 0.2, 0.3, 0.4]", "vividmed"),
        ("<ref>a</ref><box>[[1, 2, 3, 4]]</box>", "medrega"),
        ("[0.1, 0.2, 0.3, 0.4]", "normalized"),
        ("[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]", "m3d"),
        ("effusion [10, 20, 30, 40]", "m4cxr"),
        ("liver [120, 340, 560, 780]", "medrega"),
    ],
)
def test_auto_detection_says_what_it_chose(text: str, fmt: str) -> None:
    assert parse_output(text, box_format="auto").box_format == fmt


@pytest.mark.parametrize(
    "text",
    [
        "Not present.",
        "Sorry, I cannot find the liver.",
        "No such region is found.",
        "There is no liver in this image.",
        "The lesion is not visible.",
        "未发现病灶。",
        "图中没有找到肝脏",
    ],
)
def test_refusals_parse_to_no_boxes(text: str) -> None:
    parsed = parse_output(text, box_format="auto", expect_boxes=True)
    assert parsed.ok and parsed.refusal and parsed.objects == []


@pytest.mark.parametrize(
    "text",
    [
        "the liver is big",
        "[[1, 2]]",
        "<box>(1,2)</box>",
        "<ref>liver</ref><box>[[10, 20]]</box>",
        # a long report without boxes is a failure even if it says "no": it is not a refusal
        "The lungs are clear. There is no pleural effusion. The heart size is normal. " * 3,
    ],
)
def test_unreadable_outputs_are_counted_failures(text: str) -> None:
    parsed = parse_output(text, box_format="auto", expect_boxes=True)
    assert not parsed.ok and parsed.error and not parsed.refusal


def test_a_malformed_box_next_to_good_ones_is_recorded_not_a_failure() -> None:
    parsed = parse_output(
        "<ref>a</ref><box>[[1, 2, 3, 4]]</box> <ref>b</ref><box>[[5, 6, 7]]</box>", box_format="medrega"
    )
    assert parsed.ok and [o.name for o in parsed.objects] == ["a"]
    assert parsed.skipped == ["a medrega box needs 4 numbers: [5, 6, 7]"]
    assert parse_output("<ref>a</ref><box>[[1, 2, 3, 4]]</box>", box_format="medrega").skipped == []


def test_empty_and_missing_outputs() -> None:
    assert parse_output("", box_format="medrega").error == "empty output"
    assert parse_output(None, box_format="medrega").ok is False
    assert parse_output("<think>the liver is at [[1, 2, 3, 4]]", box_format="medrega").error == "empty output"


def test_no_box_is_fine_when_the_task_expects_none() -> None:
    parsed = parse_output("A normal chest.", box_format="medrega", expect_boxes=False)
    assert parsed.ok and parsed.objects == []


def test_reasoning_is_stripped_before_parsing() -> None:
    text = "<think>maybe [[1, 1, 2, 2]]</think><ref>liver</ref><box>[[100, 200, 300, 400]]</box>"
    parsed = parse_output(text, box_format="medrega")
    assert len(parsed.objects) == 1 and parsed.objects[0].name == "liver"


def test_vividmed_rejects_nested_or_unmatched_phrases() -> None:
    for text in ("<p>a <p>b</p></p> [0.1, 0.2, 0.3, 0.4]", "<p>a [0.1, 0.2, 0.3, 0.4]", "a</p> [0.1, 0.2, 0.3, 0.4]"):
        parsed = parse_output(text, box_format="vividmed", expect_boxes=True)
        assert not parsed.ok and "nested" in (parsed.error or "")


def test_vividmed_phrases_stay_in_the_text() -> None:
    parsed = parse_output(
        "<p>opacity</p> [0.1, 0.2, 0.3, 0.4] is seen in <p>right lower lobe</p>.", box_format="vividmed"
    )
    assert parsed.text == "opacity is seen in right lower lobe."
    assert [(o.phrase, len(o.boxes)) for o in parsed.objects] == [("opacity", 1)]  # an unboxed phrase is no region


def test_grounded_report_split_english() -> None:
    text = (
        "<ref>right lung</ref><box>[[102, 106, 481, 910]]</box>, "
        "<ref>left lung</ref><box>[[535, 128, 923, 889]]</box>: "
        "No focal consolidation. <ref>heart</ref><box>[[390, 470, 640, 810]]</box>：Normal size."
    )
    parsed = parse_output(text, box_format="medrega", expect_boxes=True)
    assert parsed.text == "No focal consolidation. Normal size."
    assert [o.name for o in parsed.objects] == ["right lung", "left lung", "heart"]


def test_grounded_report_split_chinese() -> None:
    text = "<ref>胰腺癌</ref><box>[[412, 388, 540, 502]]</box>：胰头部见低密度肿块，考虑胰腺癌。"
    parsed = parse_output(text, box_format="medrega", expect_boxes=True)
    assert parsed.text == "胰头部见低密度肿块，考虑胰腺癌。"
    assert parsed.objects[0].boxes[0] == pytest.approx([412 / 999, 388 / 999, 540 / 999, 502 / 999])


def test_is_refusal_needs_a_short_answer() -> None:
    assert is_refusal("There is no nodule.")
    assert not is_refusal("There is no nodule. " + "The rest of the report is long. " * 6)


@pytest.mark.parametrize(
    ("size", "resized"),
    [((1000, 800), (1008, 812)), ((5000, 4000), (4004, 3192)), ((10, 10), (56, 56)), ((280, 560), (280, 560))],
)
def test_qwen25_boxes_are_pixels_of_the_resized_input(size: tuple[int, int], resized: tuple[int, int]) -> None:
    # Qwen2.5-VL's processor resizes to multiples of 28 within its pixel bounds (smart_resize)
    # and the model answers in pixels of that image.
    from regbench.parsing.boxes import qwen25_input_size

    assert qwen25_input_size(*size) == resized
    text = f'{{"bbox_2d": [0, 0, {resized[0] // 2}, {resized[1]}], "label": "liver"}}'
    parsed = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s", width=size[0], height=size[1]))
    assert parsed.objects[0].boxes == [[0.0, 0.0, (resized[0] // 2) / resized[0], 1.0]]


def test_qwen25_pixel_bounds_of_the_server_are_part_of_the_format() -> None:
    # a server started with max_pixels=1003520 resizes a 2048 x 2048 image to 980 x 980
    # (2048 / sqrt(2048^2 / 1003520) / 28 = 35.8 -> 35 x 28), not to 2044 x 2044 (the default)
    from regbench.parsing import get_box_format

    sample = Sample(id="s", width=2048, height=2048)
    text = '{"bbox_2d": [0, 0, 490, 980], "label": "lung"}'
    parsed = parse_output(text, box_format="qwen25_vl(max_pixels=1003520)", sample=sample)
    assert parsed.objects[0].boxes == [[0.0, 0.0, 0.5, 1.0]]
    assert parsed.box_format == "qwen25_vl(min_pixels=3136,max_pixels=1003520)"
    assert parse_output(text, box_format="qwen25_vl", sample=sample).objects[0].boxes[0][2] == 490 / 2044
    assert get_box_format("qwen25_vl( max_pixels = 1003520 )").write([0.0, 0.0, 0.5, 1.0], sample) == (
        '{"bbox_2d": [0, 0, 490, 980]}'
    )
    for bad, message in [
        ("medrega(max_pixels=1)", "'medrega' takes no options"),
        ("qwen25_vl(pixels=1)", "has no option 'pixels'"),
        ("qwen25_vl(max_pixels=1e6)", "options are written key=integer"),
        ("qwen25_vl(min_pixels=9,max_pixels=4)", "min_pixels <= max_pixels"),
        ("qwen25_vl(max_pixels=\u00b2)", "options are written key=integer"),
        ("qwen25_vl(max_pixels=\u0661\u0660)", "options are written key=integer"),
        ("qwen25_vl(max_pixels=5,max_pixels=9)", "'max_pixels' is given twice"),
    ]:
        with pytest.raises(RegbenchError, match=re.escape(message)):
            get_box_format(bad)


def test_many_unclosed_phrases_parse_without_rescanning() -> None:
    # a lazy <p>.*?</p> rescans to the end from every <p>: 15 s for this text before
    text = "<p>a" * 25_000 + "<p>opacity</p> [0.1, 0.2, 0.4, 0.5]"
    for fmt in ("vividmed", "auto"):
        parsed = parse_output(text, box_format=fmt, expect_boxes=True)
        assert not parsed.ok and parsed.error == "unbalanced or nested <p> tags"


def test_non_numbers_in_json_boxes_are_not_boxes() -> None:
    image = Sample(id="s", width=112, height=112)  # a multiple of 28: Qwen's resize keeps it
    nan = '[{"bbox_2d": [NaN, NaN, NaN, NaN], "label": "x"}]'
    parsed = parse_output(nan, box_format="qwen25_vl", sample=image, expect_boxes=True)
    assert not parsed.ok and parsed.objects == []
    inf = parse_output('{"bbox_2d": [0, 0, Infinity, 56]}', box_format="qwen25_vl", sample=image)
    assert inf.objects[0].boxes == [[0.0, 0.0, 1.0, 0.5]]  # out of range: clipped


def test_lone_surrogates_from_json_escapes_can_still_be_written() -> None:
    from regbench.models.base import Response

    text = '[{"bbox_2d": [1, 2, 3, 4], "label": "\\ud800liver"}]'
    parsed = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s", width=10, height=10))
    assert parsed.objects[0].name == "?liver"
    parsed.model_dump_json().encode("utf-8")  # what samples.jsonl needs
    assert Response(text="a\ud800b").text == "a?b"  # decoded from a server's JSON reply


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("<ref>right lung</ref><box>[[102, 106, 481, 910, " + "102, 106, " * 8, "medrega"),  # cut off by max_tokens
        ("[[102, 106, 481, 910], [102, 106, 481, 910, " + "481, " * 12, "internvl"),
        ("[" + "11, " * 40 + "x", "auto"),
        ("<box>(" + "1" * 20_000 + ",", "qwen_vl"),
        ("[" + "1" * 20_000, "m4cxr"),
    ],
)
def test_truncated_number_lists_fail_quickly(text: str, fmt: str) -> None:
    # Each took seconds to minutes when a number's digits could be split several ways
    # (exponential in the count of integers); a regression hangs this test.
    parsed = parse_output(text, box_format=fmt, sample=Sample(id="s", width=10, height=10), expect_boxes=True)
    assert parsed.ok == (fmt == "internvl")  # internvl still reads its one closed box


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("No pancreas detected.", True),  # M3D's absent templates
        ("This is spleen, but not here.", True),
        ("Nonenhancing hypodense lesion in segment 7 of the liver, consistent with a simple cyst.", False),
        ("Nonetheless, the liver is enlarged.", False),
    ],
)
def test_refusal_wording(text: str, refusal: bool) -> None:
    assert is_refusal(text) == refusal


def test_vividmed_phrase_with_several_boxes() -> None:
    text = (
        "<ngrd>There is <p>cardiomegaly</p> [0.3, 0.4, 0.7, 0.8] and "
        "<p>pleural effusion</p> [0.1, 0.6, 0.4, 0.9], [0.6, 0.6, 0.9, 0.9]."
    )
    parsed = parse_output(text, box_format="vividmed")
    assert parsed.text == "There is cardiomegaly and pleural effusion."
    assert [(o.name, len(o.boxes)) for o in parsed.objects] == [("cardiomegaly", 1), ("pleural effusion", 2)]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        (
            "consolidation [0,1,0,3], atelectasis [2,3,2,5], [3,6,7,8].",
            "m4cxr",
            [("consolidation", 1), ("atelectasis", 2)],
        ),
        ("nodule [0,1,0,3]; [2,3,2,5]", "m4cxr", [("nodule", 1), ("", 1)]),  # only a comma continues an object
        ("<ref>liver</ref><box>(100,200),(350,599)</box><box>(400,400),(500,500)</box>", "qwen_vl", [("liver", 2)]),
        ("<ref>liver</ref><ref>[100,200,350,599], [400,400,500,500]</ref>", "medrega", [("liver", 2)]),
        ("<ref>kidney</ref><box>[[1,2,3,4]], [[5,6,7,8]]</box>", "medrega", [("kidney", 2)]),
        (
            "<ref>liver</ref><box>[[1,2,3,4]]</box>, <ref>spleen</ref><box>[[5,6,7,8]]</box>",
            "medrega",
            [("liver", 1), ("spleen", 1)],
        ),
    ],
)
def test_boxes_that_follow_a_named_box_keep_its_name(text: str, fmt: str, expected: list[tuple[str, int]]) -> None:
    assert [(o.name, len(o.boxes)) for o in parse_output(text, box_format=fmt).objects] == expected


def test_each_format_reads_boxes_of_its_own_dimension() -> None:
    assert not parse_output("[0.1, 0.2, 0.3, 0.4]", box_format="m3d", expect_boxes=True).ok
    bad = parse_output(
        "<ref>liver</ref><box>[[100, 200, 300, 400, 500, 600]]</box>", box_format="medrega", expect_boxes=True
    )
    assert not bad.ok and "medrega box needs 4 numbers" in (bad.error or "")


@pytest.mark.parametrize(
    ("text", "fmt", "clean"),
    [
        (
            "A nodule is seen in the <ref>right lung</ref><box>[[102, 106, 481, 910]]</box>. "
            "The <ref>heart</ref><box>[[589, 669, 839, 999]]</box> is normal.",
            "medrega",
            "A nodule is seen in the right lung. The heart is normal.",
        ),
        ("The <ref>liver</ref><box>(100,200),(350,599)</box> is enlarged.", "qwen_vl", "The liver is enlarged."),
        (
            "The <|object_ref_start|>liver<|object_ref_end|><|box_start|>(100,200),(350,599)<|box_end|> is enlarged.",
            "qwen2_vl",
            "The liver is enlarged.",
        ),
        (
            "胰腺体部见<ref>肿块</ref><box>[[420, 380, 609, 549]]</box>，边界不清。",
            "medrega",
            "胰腺体部见肿块，边界不清。",
        ),
        (  # MedRegA's header form: the names label the text that follows and are not part of it
            "<ref>right lung</ref><box>[[102, 106, 481, 910]]</box>, <ref>left lung</ref><box>[[535, 128, 923, 889]]"
            "</box>: A nodular opacity is seen. <ref>heart</ref><box>[[1, 2, 3, 4]]</box>: Normal heart.",
            "medrega",
            "A nodular opacity is seen. Normal heart.",
        ),
    ],
)
def test_grounded_report_text_keeps_inline_names_and_drops_headers(text: str, fmt: str, clean: str) -> None:
    assert parse_output(text, box_format=fmt).text == clean


@pytest.mark.parametrize("text", ["[]", "```json\n[]\n```", " [ ] "])
def test_an_empty_json_list_says_nothing_was_found(text: str) -> None:
    parsed = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s", width=28, height=28), expect_boxes=True)
    assert parsed.ok and parsed.refusal and parsed.objects == []
