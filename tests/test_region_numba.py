"""The optional numba kernels give exactly what the numpy path (and scipy) give: parser, assignment, counts.

Skipped without numba; the numpy path itself is covered by the other region tests either way.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from regbench import accel
from regbench.metrics.matching import assign_padded
from regbench.metrics.region import BoxColumns, RegionAligned, released_counts
from regbench.parsing import BOX_FORMATS
from regbench.parsing.medrega_released import released_boxes
from regbench.parsing.readings import ParsedColumns, ReadItems
from regbench.types import Region, Sample

RELEASED = BOX_FORMATS.get("medrega_released")

needs_numba = pytest.mark.skipif(not accel.available(), reason="numba is not installed (pip install 'regbench[fast]')")


@pytest.fixture(autouse=True)
def kernels_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels serve large batches only; here every batch takes them, to compare with numpy."""
    monkeypatch.setattr(accel, "MIN_SIZE", 0)


def test_small_batches_take_the_numpy_path() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accel, "MIN_SIZE", 25_000)
        assert not accel.enabled(24_999)
        assert accel.enabled(25_000) == accel.available()


box_list = st.lists(
    st.lists(st.integers(0, 1200), min_size=4, max_size=4).map(lambda v: "[" + ", ".join(map(str, v)) + "]"),
    min_size=1,
    max_size=3,
).map(lambda boxes: "[" + ",".join(boxes) + "]")
pieces = [
    "[[", "]]", "[", "]", ", ", ",", " ", "\t", "\x1c", "\x85", "\xa0", "\u3000", "<ref>", "</ref>", "<box>",
    "Liver", "LIVER", "肝脏", "İ", "3", "999", "１", "٣", "99999999999999999999", "9007199254740993", "0.5",
]  # fmt: skip
medrega_text = st.lists(
    st.one_of(box_list, st.sampled_from(pieces), st.integers(0, 2000).map(str), st.text(max_size=3)), max_size=40
).map("".join)


def columns_equal(a: BoxColumns | ParsedColumns, b: BoxColumns | ParsedColumns) -> None:
    assert a.counts.tolist() == b.counts.tolist()
    assert a.boxes.tolist() == b.boxes.tolist()
    assert a.names == b.names
    for c in (a, b):
        ids = c.ids if isinstance(c, BoxColumns) else c.name_ids
        if ids is not None and c.vocabulary is not None:
            assert [c.vocabulary[i] for i in ids.tolist()] == c.names


@needs_numba
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(medrega_text, max_size=8))
def test_compiled_medrega_parser_equals_the_numpy_one_and_the_released_one(raws: list[str]) -> None:
    compiled = RELEASED.read_batch(raws)
    with accel.numba_disabled():
        columns_equal(compiled, RELEASED.read_batch(raws))
    one_by_one = [released_boxes(raw) for raw in raws]
    assert compiled.names == [name for _, names in one_by_one for name in names]
    assert compiled.boxes.tolist() == [box for boxes, _ in one_by_one for box in boxes]


@needs_numba
def test_compiled_medrega_parser_edge_cases() -> None:
    raws = [
        "",
        "<ref>肝脏</ref><box>[[1, 2, 3, 4]]</box> and <ref>Spleen</ref><box>[[5,6,7,8], [9,10,11,12]]</box>",
        "[[1,\u30002,3,4]]",  # an ideographic space is \s to the regex
        "[[١,2,3,4]] [[1,2,3,4]]",  # so is an Arabic-Indic digit \d
        "[[9007199254740993, 0, 1, 1]]",  # above 2**53: Python's int / 999 rounds differently
        "[[[1,2,3,4]]",
        "x]]y[[1,2,3,4]]",
        "[[1,2,3,4],[5,6,7,8]",
        "[[1,2,3,4],  [5,6,7,8]]tail",
    ]
    compiled = RELEASED.read_batch(raws)
    with accel.numba_disabled():
        columns_equal(compiled, RELEASED.read_batch(raws))
    assert compiled.counts.tolist() == [0, 3, 1, 2, 1, 1, 1, 0, 2]


tie_values = st.sampled_from([0.0, 0.0, 0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0, 0.3333333333333333])


@needs_numba
@settings(max_examples=300, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(0, 7), st.integers(0, 7)),
    maximize=st.booleans(),
    data=st.data(),
)
def test_compiled_assignment_returns_scipys_pairs_ties_included(shape, maximize, data) -> None:  # type: ignore[no-untyped-def]
    batch, size_n, size_m = shape
    values = data.draw(st.lists(tie_values, min_size=batch * size_n * size_m, max_size=batch * size_n * size_m))
    cost = np.array(values, dtype=np.float64).reshape(shape)
    n = np.array(data.draw(st.lists(st.integers(0, size_n), min_size=batch, max_size=batch)), dtype=np.intp)
    m = np.array(data.draw(st.lists(st.integers(0, size_m), min_size=batch, max_size=batch)), dtype=np.intp)
    mask = assign_padded(cost, n, m, maximize=maximize)
    with accel.numba_disabled():
        assert np.array_equal(mask, assign_padded(cost, n, m, maximize=maximize))
    for b in range(batch):
        rows, cols = linear_sum_assignment(cost[b, : n[b], : m[b]], maximize=maximize)
        expected = np.zeros((size_n, size_m), dtype=bool)
        expected[rows, cols] = True
        assert np.array_equal(mask[b], expected)


@needs_numba
@pytest.mark.parametrize("size", [3, 17, 40])
def test_compiled_assignment_on_random_and_large_matrices(size: int) -> None:
    rng = np.random.default_rng(size)
    cost = np.where(rng.random((30, size, size)) < 0.5, 1.0, rng.random((30, size, size)))
    n, m = rng.integers(0, size + 1, 30), rng.integers(0, size + 1, 30)
    mask = assign_padded(cost, n, m)
    for b in range(30):
        rows, cols = linear_sum_assignment(cost[b, : n[b], : m[b]])
        assert sorted(zip(*np.nonzero(mask[b]), strict=True)) == sorted(zip(rows.tolist(), cols.tolist(), strict=True))


grid = st.integers(0, 6).map(lambda v: v / 6)  # coarse: equal IoUs, zero IoUs and touching boxes are common


@st.composite
def boxes_of_sample(draw: st.DrawFn, max_size: int) -> list[tuple[str, list[float]]]:
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        x1, x2 = sorted([draw(grid), draw(grid)])
        y1, y2 = sorted([draw(grid), draw(grid)])
        out.append((draw(st.sampled_from(["liver", "left kidney", "kidney", "", "spleen"])), [x1, y1, x2, y2]))
    return out


def as_columns(samples: list[list[tuple[str, list[float]]]]) -> BoxColumns:
    return BoxColumns.from_lists([[b for _, b in s] for s in samples], [[n for n, _ in s] for s in samples], 4)


@needs_numba
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    samples=st.lists(st.tuples(boxes_of_sample(7), boxes_of_sample(7)), max_size=12),
    thresholds=st.sampled_from([0.5, 0.75, 1.0]),
)
def test_compiled_medrega_counts_equal_the_numpy_ones(samples, thresholds) -> None:  # type: ignore[no-untyped-def]
    pred, ref = as_columns([p for p, _ in samples]), as_columns([r for _, r in samples])
    limits = np.full(len(samples), thresholds)
    compiled = released_counts(pred, ref, limits)
    with accel.numba_disabled():
        expected = released_counts(pred, ref, limits)
    assert compiled.keys() == expected.keys()
    for key in expected:
        assert compiled[key].tolist() == expected[key].tolist(), key  # bit for bit, the IoU sum included


@needs_numba
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.lists(st.tuples(boxes_of_sample(5), boxes_of_sample(5)), min_size=1, max_size=10))
def test_compiled_plugin_records_and_aggregates_equal_the_numpy_ones(samples) -> None:  # type: ignore[no-untyped-def]
    raws, references = [], []
    for pred, ref in samples:
        raws.append(
            " ".join(f"<ref>{n}</ref><box>[[{', '.join(str(round(v * 999)) for v in b)}]]</box>" for n, b in pred)
        )
        objects = [Region(name=n, boxes=[[round(v * 999) / 999 for v in b]]) for n, b in ref]
        references.append(Sample(id="s", objects=objects))
    for subtask in (None, "multi_object_multi_region"):
        plugin = RegionAligned(RegionAligned.Options(mode="medrega", subtask=subtask))
        compiled = plugin.stats_batch(ReadItems(RELEASED.read_batch(raws), references))
        with accel.numba_disabled():
            expected = plugin.stats_batch(ReadItems(RELEASED.read_batch(raws), references))
        assert compiled == expected
        assert plugin.finalize(compiled) == plugin.finalize(expected)


def test_reference_columns_skip_boxes_of_the_other_dimension_like_before() -> None:
    samples = [
        [Region(name="Liver", boxes=[[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.1, 0.5, 0.5, 0.5]])],
        [],
        [Region(name="a", boxes=[]), Region(name="B", boxes=[[0.0, 0.0, 1.0, 1.0]])],
    ]
    for dims, expected in ((4, [1, 0, 1]), (6, [1, 0, 0])):
        columns = BoxColumns.from_regions(samples, dims, str.lower)
        assert columns.counts.tolist() == expected
        filtered = BoxColumns._from_regions_filtered(samples, dims, str.lower)
        columns_equal(columns, filtered)
    plain = BoxColumns.from_regions([samples[2]], 4, str.lower)
    assert plain.names == ["b"] and plain.vocabulary == ["a", "b"] and plain.ids is not None
