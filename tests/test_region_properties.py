"""Property tests: any string parses; region metrics stay in [0, 1], ignore box order, score 1 when perfect,
and give the same numbers batched or one by one, with finalize equal to the mean of the per-sample values."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regbench.metrics import METRICS, MetricContext
from regbench.metrics.base import mean_of_sample_scores
from regbench.parsing import BOX_FORMATS, boxes, parse_output
from regbench.types import Parsed, Region, Sample

FORMATS = BOX_FORMATS.names()
box_text = st.sampled_from(
    [
        "[[",
        "]]",
        "[",
        "]",
        "<ref>",
        "</ref>",
        "<box>",
        "</box>",
        "<p>",
        "</p>",
        "(",
        ")",
        ",",
        " ",
        "0",
        "999",
        "0.5",
        "-3",
        "1e9",
        "bbox_2d",
        '{"bbox_2d": [',
        "肺",
        "\n",
    ]
)
tricky = st.lists(st.one_of(box_text, st.text(max_size=5)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), tricky), fmt=st.sampled_from(FORMATS), expect=st.booleans())
def test_any_string_parses_without_an_exception(text: str, fmt: str, expect: bool) -> None:
    parsed = parse_output(text, box_format=fmt, sample=Sample(id="s", width=100, height=80), expect_boxes=expect)
    assert parsed.ok or parsed.error
    for region in parsed.objects:
        for box in region.boxes:
            if fmt == "medrega_released":  # the released parser neither clips nor reorders: k / 999 as written
                assert len(box) == 4 and all(v >= 0.0 for v in box)
                continue
            assert len(box) in (4, 6) and all(0.0 <= v <= 1.0 for v in box)
            half = len(box) // 2
            assert all(box[i] <= box[i + half] for i in range(half))


separators = st.lists(st.sampled_from([" ", ":", "：", ",", "，", ";", "；", "\n"]), max_size=3).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.one_of(box_text, separators, st.text(max_size=3)), max_size=40).map("".join))
def test_box_groups_read_in_one_pass_are_the_groups_and_their_separators(text: str) -> None:
    """BracketBoxes reads groups and cuts them out of the text in one pass with the separator pattern:
    that pass must find exactly the groups of the plain pattern (a separator never holds the "<" or "["
    a group starts with), and leave the text a substitution leaves."""
    with_separator = list(boxes._GRID_WITH_SEPARATOR.finditer(text))
    assert [m.span() for m in boxes._GRID.finditer(text)] == [(m.start(), m.start("sep")) for m in with_separator]
    cut = boxes._GRID_WITH_SEPARATOR.sub(lambda m: boxes._unboxed(text, m), text)
    assert BOX_FORMATS.get("medrega").extract(text, None).text == boxes.clean_text(cut)


number = st.one_of(st.floats(), st.integers(-2000, 2000).map(float))


@given(
    values=st.lists(number, min_size=3, max_size=7),
    scale=st.sampled_from([1.0, 100.0, 999.0]),
    y=st.none() | st.just(80.0),
)
def test_unit_boxes_are_scaled_clipped_and_ordered(values: list[float], scale: float, y: float | None) -> None:
    box = boxes.to_unit_box(values, scale, y)
    if len(values) not in (4, 6) or any(v != v for v in values):
        assert box is None
        return
    half = len(values) // 2
    scales = [scale, scale if y is None else y, scale][:half]
    unit = [min(max(v / scales[i % half], 0.0), 1.0) for i, v in enumerate(values)]
    assert box == [min(unit[i], unit[i + half]) for i in range(half)] + [
        max(unit[i], unit[i + half]) for i in range(half)
    ]


coordinate = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def box(draw: st.DrawFn) -> list[float]:
    x1, x2 = sorted([draw(coordinate), draw(coordinate)])
    y1, y2 = sorted([draw(coordinate), draw(coordinate)])
    return [x1, y1, x2, y2]


names = st.sampled_from(["liver", "kidney", "lung", "heart"])
regions = st.lists(st.tuples(names, st.lists(box(), min_size=1, max_size=3)), max_size=3)
modes = st.sampled_from(["standard", "m3d", "medrega"])


def metric(mode: str):  # type: ignore[no-untyped-def]
    cls = METRICS.get("region_aligned")
    return cls(cls.Options(mode=mode), MetricContext(task="t"))


def as_parsed(objects: list[tuple[str, list[list[float]]]], mode: str) -> Parsed:
    """The objects as the plugin of ``mode`` reads them (medrega: the released parser on a MedRegA output)."""
    raw = " ".join(
        f"<ref>{n}</ref><box>["
        + ", ".join("[" + ", ".join(str(round(v * 999)) for v in b) + "]" for b in bs)
        + "]</box>"
        for n, bs in objects
    )
    if mode == "medrega":
        return BOX_FORMATS.get("medrega_released").read(raw)  # type: ignore[no-any-return]
    return Parsed(raw=raw, objects=[Region(name=n, boxes=bs) for n, bs in objects])


def as_sample(objects: list[tuple[str, list[list[float]]]]) -> Sample:
    return Sample(id="s", objects=[Region(name=n, boxes=bs) for n, bs in objects])


@settings(max_examples=200, deadline=None)
@given(predicted=regions, reference=regions, mode=modes)
def test_metrics_stay_in_the_unit_interval(predicted, reference, mode) -> None:  # type: ignore[no-untyped-def]
    plugin = metric(mode)
    stats = plugin.stats(as_parsed(predicted, mode), as_sample(reference))
    for key, value in plugin.sample_scores(stats).items():
        assert value is None or 0.0 <= value <= 1.0 + 1e-9, (key, value)


@settings(max_examples=200, deadline=None)
@given(predicted=regions, reference=regions, seed=st.integers(0, 1000), mode=st.sampled_from(["standard", "m3d"]))
def test_box_order_does_not_matter(predicted, reference, seed, mode) -> None:  # type: ignore[no-untyped-def]
    # (medrega mode is order-sensitive on purpose: scipy's choice among tied pairs depends on order)
    plugin = metric(mode)
    shuffled = [(n, random.Random(seed).sample(bs, len(bs))) for n, bs in predicted]
    random.Random(seed + 1).shuffle(shuffled)
    first = plugin.sample_scores(plugin.stats(as_parsed(predicted, mode), as_sample(reference)))
    second = plugin.sample_scores(plugin.stats(as_parsed(shuffled, mode), as_sample(reference)))
    for key in plugin.keys:
        assert (first.get(key) is None and second.get(key) is None) or abs(first[key] - second[key]) < 1e-9, key


@settings(max_examples=200, deadline=None)
@given(reference=regions.filter(lambda r: r), mode=modes)
def test_a_perfect_prediction_scores_one(reference, mode) -> None:  # type: ignore[no-untyped-def]
    # Degenerate boxes have IoU 0 by definition; give every reference box some area (on the 999 grid,
    # which is all medrega mode reads).
    reference = [
        (n, [[round(v * 999) / 999 for v in (b[0], b[1], b[0] + 0.1, b[1] + 0.1)] for b in bs]) for n, bs in reference
    ]
    # Duplicate names across objects would make a name's boxes differ per object; keep names unique.
    reference = list({n: (n, bs) for n, bs in reference}.values())
    plugin = metric(mode)
    stats = plugin.stats(as_parsed(reference, mode), as_sample(reference))
    scores = plugin.sample_scores(stats)
    for key in ("region_f1", "object_f1", "alignment_f1", "accuracy"):
        assert scores[key] in (None, 1.0), key
    assert scores["iou"] > 0.99


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(st.tuples(regions, regions), min_size=1, max_size=8), mode=modes, data=st.data())
def test_batched_equals_one_by_one_and_finalize_is_the_mean(batch, mode, data) -> None:  # type: ignore[no-untyped-def]
    plugin = metric(mode)
    items = [(as_parsed(p, mode), as_sample(r)) for p, r in batch]
    stats = plugin.stats_batch(items)
    assert stats == [plugin.stats(p, s) for p, s in items]
    # bootstrap resamples: any multiset of records
    resampled = data.draw(st.lists(st.sampled_from(stats), min_size=1, max_size=12))
    got = plugin.finalize(resampled)
    expected = mean_of_sample_scores([plugin.sample_scores(s) for s in resampled])
    if mode == "medrega":
        expected.pop("iou", None), got.pop("iou", None)  # pooled there, not a mean
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9, key
