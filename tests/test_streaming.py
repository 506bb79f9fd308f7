"""A run goes through its split in chunks (``RunOptions.chunk_size``): whatever the chunk size, results.json
and samples.jsonl are the bytes of a run in one chunk; errors in a later chunk stop the run with nothing
written; the bootstrap reads columns and blocks of any size to the same intervals."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regbench.aggregate import bootstrap_ci
from regbench.errors import DataError, SpecError
from regbench.metrics import Metric, build_plugins
from regbench.metrics.base import StatsColumns
from regbench.models import build_adapter
from regbench.runner import RunOptions, evaluate
from regbench.spec import ModelSpec, TaskSpec, load_spec
from regbench.types import Parsed, Sample
from tests.conftest import write_jsonl

ORGANS = ["liver", "spleen", "left kidney", "right kidney", "heart"]
WORDS = "the heart is normal small left effusion no pneumothorax enlarged mild opacity base".split()


def _box(rng: random.Random) -> list[float]:
    x, y = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
    return [round(x, 3), round(y, 3), round(x + rng.uniform(0.05, 0.3), 3), round(y + rng.uniform(0.05, 0.3), 3)]


def _grid(box: list[float]) -> str:
    return "[" + ", ".join(str(round(v * 999)) for v in box) + "]"


def detection_split(root: Path, n: int, seed: int = 0) -> tuple[TaskSpec, ModelSpec]:
    """``n`` detection samples (1-3 named boxes) with MedRegA-format outputs: jittered, dropped, extra,
    unparseable and missing ones."""
    rng = random.Random(seed)
    rows, preds = [], []
    for i in range(n):
        objects = [{"name": rng.choice(ORGANS), "boxes": [_box(rng)]} for _ in range(rng.randint(1, 3))]
        rows.append({"id": f"d{i}", "question": "Locate the organs.", "objects": objects})
        kept = [o for o in objects if rng.random() > 0.2] + ([{"name": "heart", "boxes": [_box(rng)]}] * (i % 4 == 0))
        output = " ".join(f"<ref>{o['name']}</ref><box>[{_grid(o['boxes'][0])}]</box>" for o in kept)
        if i % 7 == 3:
            output = "I cannot see it."
        if i % 11 != 5:  # some samples have no recorded output: errors
            preds.append({"id": f"d{i}", "output": output})
    write_jsonl(root / "data.jsonl", rows)
    write_jsonl(root / "pred.jsonl", preds)
    (root / "task.yaml").write_text(
        "task: det\nfamily: detection\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics: [{name: region_aligned, mode: medrega}, grounding]\n"
    )
    model = ModelSpec(model="rec", adapter="replay", path=str(root / "pred.jsonl"), box_format="medrega")
    return load_spec(root / "task.yaml", TaskSpec), model


def report_split(root: Path, n: int, seed: int = 1) -> tuple[TaskSpec, ModelSpec]:
    """``n`` short reports scored by nlg (corpus BLEU, CIDEr-D whose per-sample values need the whole split)."""
    rng = random.Random(seed)
    rows, preds = [], []
    for i in range(n):
        answer = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
        rows.append({"id": f"r{i}", "question": "Describe.", "answer": answer})
        preds.append({"id": f"r{i}", "output": " ".join(rng.sample(answer.split(), k=len(answer.split())))})
    write_jsonl(root / "data.jsonl", rows)
    write_jsonl(root / "pred.jsonl", preds)
    (root / "task.yaml").write_text(
        "task: rep\nfamily: report\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics: [{name: nlg, meteor: false, tokenizer: whitespace}]\n"
    )
    model = ModelSpec(model="rec", adapter="replay", path=str(root / "pred.jsonl"))
    return load_spec(root / "task.yaml", TaskSpec), model


def outputs(task: TaskSpec, model: ModelSpec, out: Path, **options: object) -> tuple[bytes, bytes]:
    """results.json and samples.jsonl of one run."""
    run = RunOptions(output=out, bootstrap_trials=40, **options)  # type: ignore[arg-type]
    directory = asyncio.run(evaluate(task, model, build_adapter(model), run)).directory
    return (directory / "results.json").read_bytes(), (directory / "samples.jsonl").read_bytes()


@pytest.mark.parametrize("split", [detection_split, report_split])
def test_any_chunk_size_writes_the_bytes_of_one_chunk(tmp_path: Path, split: object) -> None:
    task, model = split(tmp_path, 37)  # type: ignore[operator]
    whole = outputs(task, model, tmp_path / "whole")
    assert json.loads(whole[0])["n_samples"] == 37
    for size in (1, 5, 36):
        assert outputs(task, model, tmp_path / f"chunks-{size}", chunk_size=size) == whole, size


def test_per_sample_cider_of_a_chunked_run_is_the_whole_split_s(tmp_path: Path) -> None:
    """A chunk's own CIDEr-D differs from the split's: the chunked run writes the split's."""
    task, model = report_split(tmp_path, 12)
    whole = outputs(task, model, tmp_path / "whole")[1].decode().splitlines()
    alone = outputs(task, model.model_copy(), tmp_path / "alone", limit=3)[1].decode().splitlines()
    assert [json.loads(x)["scores"]["cider"] for x in alone] != [json.loads(x)["scores"]["cider"] for x in whole[:3]]
    assert outputs(task, model, tmp_path / "chunked", chunk_size=3)[1].decode().splitlines() == whole


@pytest.mark.parametrize(("shard", "limit"), [((1, 3), None), ((0, 2), 17), (None, 17)])
def test_shards_and_limits_in_chunks(tmp_path: Path, shard: tuple[int, int] | None, limit: int | None) -> None:
    task, model = detection_split(tmp_path, 40)
    whole = outputs(task, model, tmp_path / "whole", shard=shard, limit=limit)
    for size in (1, 4, 7):
        assert outputs(task, model, tmp_path / f"c{size}", shard=shard, limit=limit, chunk_size=size) == whole


def test_progress_counts_every_sample_once_in_order(tmp_path: Path) -> None:
    task, model = detection_split(tmp_path, 10)
    seen: list[tuple[int, int]] = []
    options = RunOptions(output=tmp_path / "out", bootstrap_trials=0, chunk_size=3)
    asyncio.run(evaluate(task, model, build_adapter(model), options, progress=lambda d, t: seen.append((d, t))))
    assert [done for done, _ in seen] == list(range(1, 11))
    assert all(done <= total <= 10 for done, total in seen)
    assert seen[-1] == (10, 10)


def _rewrite(path: Path, change: dict[int, dict[str, object]]) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for number, fields in change.items():
        rows[number].update(fields)
    write_jsonl(path, rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({8: {"id": "d1"}}, "sample id 'd1' appears twice (samples 2 and 9"),
        ({8: {"objects": [{"name": "liver", "boxes": [[0.5, 0.5, 0.1, 0.1]]}]}}, "data.jsonl:9: field objects"),
    ],
)
def test_a_bad_record_in_a_later_chunk_stops_the_run_with_nothing_written(
    tmp_path: Path, change: dict[int, dict[str, object]], message: str
) -> None:
    task, model = detection_split(tmp_path, 12)
    out = tmp_path / "out"
    before = outputs(task, model, out, chunk_size=4)
    _rewrite(tmp_path / "data.jsonl", change)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("'", "'")):
        outputs(task, model, out, chunk_size=4)
    directory = out / "rec" / "det"
    assert ((directory / "results.json").read_bytes(), (directory / "samples.jsonl").read_bytes()) == before
    assert sorted(p.name for p in directory.iterdir()) == ["results.json", "run.json", "samples.jsonl"]


def test_predictions_of_another_task_are_refused_after_the_last_chunk_before_any_file(tmp_path: Path) -> None:
    task, model = detection_split(tmp_path, 9)
    write_jsonl(tmp_path / "pred.jsonl", [{"id": f"other{i}", "output": "x"} for i in range(9)])
    with pytest.raises(DataError, match="none of its 9 ids is a sample of task det"):
        outputs(task, model, tmp_path / "out", chunk_size=2)
    assert not (tmp_path / "out" / "rec" / "det").exists() or not any((tmp_path / "out" / "rec" / "det").iterdir())


def test_an_empty_dataset_is_an_error_in_chunks_too(tmp_path: Path) -> None:
    task, model = detection_split(tmp_path, 3)
    (tmp_path / "data.jsonl").write_text("")
    with pytest.raises(DataError, match="the dataset has no samples"):
        outputs(task, model, tmp_path / "out", chunk_size=2)


def test_chunk_size_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBENCH_CHUNK_SIZE", "7")
    assert RunOptions().chunk_size == 7
    for bad in ("0", "-3", "many", "1.5"):
        monkeypatch.setenv("REGBENCH_CHUNK_SIZE", bad)
        with pytest.raises(SpecError, match="REGBENCH_CHUNK_SIZE"):
            RunOptions()
    detection_split(tmp_path, 4)
    (tmp_path / "model.yaml").write_text(f"model: rec\nadapter: replay\npath: {tmp_path / 'pred.jsonl'}\n")
    command = [sys.executable, "-m", "regbench", "run", "-m", str(tmp_path / "model.yaml")]
    command += ["-t", str(tmp_path / "task.yaml"), "-o", str(tmp_path / "out")]
    env = {"REGBENCH_CHUNK_SIZE": "zero", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "REGBENCH_CHUNK_SIZE" in done.stderr and "Traceback" not in done.stderr


def test_stats_columns_of_chunks_concatenate_to_the_split_s() -> None:
    task = TaskSpec.model_validate(
        {
            "task": "t",
            "family": "detection",
            "dataset": {"path": "data.jsonl"},
            "prompt": "x",
            "metrics": [{"name": "region_aligned", "mode": "medrega"}],
        }
    )
    (plugin,) = build_plugins(task)
    rng = random.Random(3)
    items = []
    for i in range(30):
        objects = [{"name": rng.choice(ORGANS), "boxes": [_box(rng)]} for _ in range(rng.randint(1, 3))]
        sample = Sample.model_validate({"id": f"s{i}", "objects": objects})
        text = " ".join(f"<ref>{o['name']}</ref><box>[{_grid(_box(rng))}]</box>" for o in objects[: i % 3 + 1])
        items.append((text, sample))
    from regbench.parsing.readings import read_outputs

    readings = read_outputs(
        [t for t, _ in items], [s for _, s in items], box_format="medrega", expect_boxes=True, reads={plugin.reads}
    )
    whole = plugin.stats_batch(readings.items(plugin.reads))
    parts = [plugin.stats_batch(readings.items(plugin.reads)[a:b]) for a, b in ((0, 7), (7, 8), (8, 30))]
    joined = StatsColumns.concat(parts)
    assert isinstance(whole, StatsColumns) and joined.records() == whole.records()
    assert plugin.finalize(joined) == plugin.finalize(whole)


class _Mean(Metric):
    name = "test_stream_mean"
    keys = {"a": True, "b": True}

    def stats(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        return {}


def test_bootstrap_of_columns_equals_bootstrap_of_records() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(500)
    b_present = rng.random(500) > 0.3
    columns = StatsColumns({"a": a, "b": rng.random(500), "other": np.zeros(500)}, present={"b": b_present})
    records = list(columns.records())
    plugin = _Mean()
    expected = bootstrap_ci(plugin, records, trials=150, seed=9)
    assert set(expected) == {"a", "b"}
    assert bootstrap_ci(plugin, columns, trials=150, seed=9) == expected
