"""The reference index (reference boxes read in ``prepare``) and column-held records give exactly what the
per-call path gives: any subset or order of the prepared samples, 2D and 3D, every mode, derived subtasks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regbench.metrics.base import StatsColumns
from regbench.metrics.region import ReferenceIndex, RegionAligned, derive_subtask
from regbench.parsing import BOX_FORMATS
from regbench.types import Parsed, Region, Sample

grid = st.integers(0, 6).map(lambda v: v / 6)
# names that normalise alike ("Liver." and "liver") and a medrega substring pair ("kidney", "left kidney")
names = st.sampled_from(["liver", "Liver.", "left kidney", "kidney", "", "spleen "])


@st.composite
def box(draw: st.DrawFn, dims: int) -> list[float]:
    low, high = zip(*(sorted([draw(grid), draw(grid)]) for _ in range(dims // 2)), strict=True)
    return [*low, *high]


def regions(dims: int) -> st.SearchStrategy[list[Region]]:
    region = st.builds(lambda n, bs: Region(name=n, boxes=bs), names, st.lists(box(dims), max_size=3))
    return st.lists(region, max_size=4)


def raw_of(objects: list[Region]) -> str:
    """The objects as a MedRegA output (what medrega mode reads)."""
    return " ".join(
        f"<ref>{r.name}</ref><box>[{', '.join(str([round(v * 999) for v in b[:4]]) for b in r.boxes)}]</box>"
        for r in objects
        if r.boxes
    )


def item(predicted: list[Region], reference: list[Region], i: int) -> tuple[Parsed, Sample]:
    return Parsed(raw=raw_of(predicted), objects=predicted), Sample(id=str(i), objects=reference)


def as_read_by(plugin: RegionAligned, items: list[tuple[Parsed, Sample]]) -> list[tuple[Parsed, Sample]]:
    """The items with the outputs read the way ``plugin`` reads them (``Metric.reads``)."""
    if plugin.reads is None:
        return items
    read = BOX_FORMATS.get(plugin.reads).read
    return [(read(parsed.raw), sample) for parsed, sample in items]


def batch(dims: int) -> st.SearchStrategy[list[tuple[Parsed, Sample]]]:
    pairs = st.lists(st.tuples(regions(dims), regions(dims)), min_size=1, max_size=10)
    return pairs.map(lambda ps: [item(p, r, i) for i, (p, r) in enumerate(ps)])


def plugin(mode: str, subtask: str | None = None) -> RegionAligned:
    return RegionAligned(RegionAligned.Options(mode=mode, subtask=subtask))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.one_of(batch(4), batch(6)),
    mode=st.sampled_from(["standard", "m3d", "medrega"]),
    subtask=st.sampled_from([None, None, "multi_object_multi_region", "single_object_single_region"]),
    seed=st.integers(0, 1000),
)
def test_prepared_plugin_equals_the_unprepared_one_on_any_subset_in_any_order(items, mode, subtask, seed) -> None:  # type: ignore[no-untyped-def]
    prepared = plugin(mode, subtask)
    items = as_read_by(prepared, items)
    prepared.prepare([s for _, s in items])
    chosen = random.Random(seed).sample(items, random.Random(seed + 1).randint(0, len(items)))
    for part in (items, chosen):
        got, expected = prepared.stats_batch(part), plugin(mode, subtask).stats_batch(part)
        assert got == expected
        assert json.dumps(list(got)) == json.dumps(list(expected))  # the same records in samples.jsonl, ints as ints
        assert prepared.finalize(got) == plugin(mode, subtask).finalize(expected)


@settings(max_examples=150, deadline=None)
@given(references=st.lists(st.one_of(regions(4), regions(6)), max_size=12))
def test_index_subtasks_equal_derive_subtask_and_mixed_dimensions_are_not_indexed(references) -> None:  # type: ignore[no-untyped-def]
    samples = [Sample(id=str(i), objects=r) for i, r in enumerate(references)]
    dims = {len(b) for s in samples for r in s.objects for b in r.boxes}
    index = ReferenceIndex.build(samples)
    if len(dims) > 1:
        assert index is None
        return
    assert index is not None
    assert index.subtasks.tolist() == [derive_subtask(s.objects) for s in samples]


def test_mixed_dimensions_and_unknown_samples_take_the_per_call_path() -> None:
    flat = Region(name="liver", boxes=[[0.1, 0.1, 0.5, 0.5]])
    cube = Region(name="liver", boxes=[[0.1, 0.1, 0.1, 0.5, 0.5, 0.5]])
    items = [item([flat], [flat], 0), item([cube], [cube], 1), item([], [], 2)]
    mixed = plugin("standard")
    mixed.prepare([s for _, s in items])
    assert mixed._index is None
    assert mixed.stats_batch(items) == plugin("standard").stats_batch(items)
    prepared = plugin("standard")
    prepared.prepare([items[0][1]])
    stranger = [item([flat], [flat], 0)]  # equal to the prepared sample, but another object
    assert prepared._index is not None and prepared._index.rows([stranger[0][1]]) is None
    assert prepared._index.rows([items[0][1]]).tolist() == [0]
    assert prepared.stats_batch(stranger) == plugin("standard").stats_batch(stranger)
    prepared.close()
    assert prepared._index is None


def test_stats_columns_are_records_built_once_with_absent_keys_left_out() -> None:
    stats = StatsColumns(
        {"subtask": ["a", "b"], "n": np.array([1, 2]), "x": np.array([0.5, 1.5])},
        present={"x": np.array([False, True])},
    )
    assert len(stats) == 2
    assert stats[0] == {"subtask": "a", "n": 1} and stats[1] == {"subtask": "b", "n": 2, "x": 1.5}
    assert isinstance(stats[0]["n"], int)
    assert stats[0] is stats[0]  # built once
    assert stats[-1:] == [stats[1]] and list(stats) == [stats[0], stats[1]]
    assert stats == [{"subtask": "a", "n": 1}, {"subtask": "b", "n": 2, "x": 1.5}]
    assert stats != [{"subtask": "a", "n": 1}]
    assert np.isnan(stats.column("x")[0]) and stats.column("x")[1] == 1.5
    assert stats.column("n").tolist() == [1.0, 2.0]


@pytest.mark.parametrize("task", ["demo_detection", "demo_detection_medrega", "grounded_rg_zh"])
def test_the_runner_scores_region_tasks_through_the_index(task: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from regbench.cli import app

    looked_up: list[bool] = []
    rows = ReferenceIndex.rows

    def spy(self: ReferenceIndex, samples):  # type: ignore[no-untyped-def]
        found = rows(self, samples)
        looked_up.append(found is not None)
        return found

    monkeypatch.setattr(ReferenceIndex, "rows", spy)
    predictions = Path(__file__).resolve().parents[1] / "models/recorded/medrega" / f"{task}.jsonl"
    command = ["score", "--task", task, "--predictions", str(predictions), "--output", str(tmp_path)]
    result = CliRunner().invoke(app, [*command, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert looked_up and all(looked_up)
