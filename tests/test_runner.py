"""The runner end to end on replayed outputs, with a small exact-match plugin defined here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from regbench.errors import DataError, SpecError
from regbench.metrics import METRICS, Metric, build_plugins, register_metric
from regbench.models import build_adapter
from regbench.models.base import Request
from regbench.runner import RunOptions, evaluate
from regbench.spec import ModelSpec, TaskSpec, load_spec
from regbench.types import Parsed, Response, Sample
from tests.conftest import write_jsonl

if "test_exact" not in METRICS:

    @register_metric("test_exact")
    class ExactMatch(Metric):
        """Exact match of the cleaned output with the reference answer; boxes counted."""

        keys = {"exact": True, "n_boxes": True}

        def stats(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
            return {
                "exact": float(parsed.text.strip().lower() == sample.answer.lower()),
                "n_boxes": float(sum(len(o.boxes) for o in parsed.objects)),
            }


def make_task(tmp_path: Path, family: str = "vqa", prompt: str = '"{{ question }}"', rows: int = 4) -> TaskSpec:
    # each row is a valid reference for every family (run and score stop on one that is not)
    box = {"name": "a", "boxes": [[0.1, 0.1, 0.5, 0.5]]}
    rows_ = [{"id": f"s{i}", "question": f"q{i}", "answer": f"a{i}", "objects": [box]} for i in range(rows)]
    write_jsonl(tmp_path / "data.jsonl", rows_)
    (tmp_path / "task.yaml").write_text(
        f"task: t\nfamily: {family}\ndataset: {{path: data.jsonl}}\nprompt: {prompt}\nmetrics: [test_exact]\n"
    )
    return load_spec(tmp_path / "task.yaml", TaskSpec)


def replay(tmp_path: Path, outputs: dict[str, object]) -> ModelSpec:
    write_jsonl(tmp_path / "pred.jsonl", [{"id": k, "output": v} for k, v in outputs.items()])
    return ModelSpec(model="rec", adapter="replay", path=str(tmp_path / "pred.jsonl"), box_format="medrega")


def run(task: TaskSpec, model: ModelSpec, out: Path) -> dict:
    asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=out, bootstrap_trials=50)))
    return json.loads((out / model.model / task.task / "results.json").read_text())


def test_scores_counts_and_per_sample_records(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    model = replay(tmp_path, {"s0": "a0", "s1": "A1", "s2": "wrong <ref>x</ref><box>[[1, 2, 3, 4]]</box>", "s3": ""})
    results = run(task, model, tmp_path / "out")
    assert results["n_samples"] == 4 and results["n_errors"] == 0
    assert results["n_parse_failures"] == 1  # the empty output
    assert results["metrics"] == {"exact": 0.5, "n_boxes": 0.25}
    assert results["higher_is_better"]["exact"] is True
    assert results["signatures"]["exact"].startswith("exact|plugin:test_exact|bs:50|rs:1234|regbench:")
    assert set(results["ci95"]) == {"exact", "n_boxes"}
    assert results["config"]["task"]["task"] == "t" and results["config"]["model"]["adapter"] == "replay"
    records = [json.loads(line) for line in (tmp_path / "out/rec/t/samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["s0", "s1", "s2", "s3"]
    assert records[2]["parsed"]["text"] == "wrong" and records[2]["parsed"]["objects"][0]["name"] == "x"
    assert records[2]["scores"] == {"exact": 0.0, "n_boxes": 1.0}
    assert records[0]["prompt"][-1]["content"] == "q0"
    assert records[3]["parsed"]["ok"] is False and records[3]["parsed"]["error"] == "empty output"


def test_no_box_where_boxes_expected_is_a_parse_failure(tmp_path: Path) -> None:
    task = make_task(tmp_path, family="detection")
    model = replay(
        tmp_path,
        {
            "s0": "<ref>a</ref><box>[[1, 2, 3, 4]]</box>",
            "s1": "garbage ]][[ 12,",
            "s2": "Not present.",
            "s3": "[[1, 2, 3]]",
        },
    )
    results = run(task, model, tmp_path / "out")
    assert results["n_parse_failures"] == 2  # garbage and the 3-number box; a refusal is an answer


def test_missing_recorded_output_is_an_error_and_the_run_goes_on(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    results = run(task, replay(tmp_path, {"s0": "a0", "s1": "a1"}), tmp_path / "out")
    assert results["n_errors"] == 2 and results["n_parse_failures"] == 0
    assert results["metrics"]["exact"] == 0.5


def test_multi_turn_scores_the_last_turn(tmp_path: Path) -> None:
    task = make_task(tmp_path, prompt='["Look: {{ question }}", "Now answer, you said {{ history[0] }}"]', rows=2)
    model = replay(tmp_path, {"s0": ["thinking", "a0"], "s1": ["a1", "nope"]})
    results = run(task, model, tmp_path / "out")
    assert results["metrics"]["exact"] == 0.5
    record = json.loads((tmp_path / "out/rec/t/samples.jsonl").read_text().splitlines()[0])
    assert record["outputs"] == ["thinking", "a0"]
    assert [m["role"] for m in record["prompt"]] == ["user", "assistant", "user"]
    assert record["prompt"][-1]["content"] == "Now answer, you said thinking"


def test_rerun_writes_identical_results(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    model = replay(tmp_path, {"s0": "a0", "s1": "x", "s2": "a2", "s3": "y"})
    first = (run(task, model, tmp_path / "out"), (tmp_path / "out/rec/t/samples.jsonl").read_text())
    second = (run(task, model, tmp_path / "out"), (tmp_path / "out/rec/t/samples.jsonl").read_text())
    assert first == second


def test_each_turn_is_rendered_once_and_template_errors_come_before_any_model_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regbench.models.replay import ReplayAdapter
    from regbench.prompts import PromptRenderer

    rendered: list[tuple[str, int]] = []
    original = PromptRenderer.messages

    def counting(self: PromptRenderer, sample: Sample, turn: int, *args: object, **kwargs: object) -> object:
        rendered.append((sample.id, turn))
        return original(self, sample, turn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PromptRenderer, "messages", counting)
    task = make_task(tmp_path, prompt='["Look: {{ question }}", "Now answer, you said {{ history[0] }}"]', rows=3)
    run(task, replay(tmp_path, {f"s{i}": ["x", f"a{i}"] for i in range(3)}), tmp_path / "out")
    assert sorted(rendered) == [(f"s{i}", turn) for i in range(3) for turn in (0, 1)]

    asked = []
    monkeypatch.setattr(ReplayAdapter, "generate", lambda self, request: asked.append(request))
    task = make_task(tmp_path / "organ", prompt='"{{ question }} in the {{ meta.organ }}"', rows=0)
    rows = '{"id": "s0", "answer": "a", "organ": "lung"}\n{"id": "s1", "answer": "b"}\n'  # s1: no organ
    (tmp_path / "organ/data.jsonl").write_text(rows)
    with pytest.raises(SpecError, match="'s1'"):
        run(task, replay(tmp_path / "organ", {"s0": "a", "s1": "b"}), tmp_path / "out2")
    assert asked == []


@pytest.mark.parametrize(
    "prompt", ['"{{ question }}"', '["Look: {{ question }}", "Now answer, you said {{ history[0] }}"]']
)
def test_an_immediate_adapter_gives_what_a_task_per_sample_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompt: str
) -> None:
    from regbench.models.replay import ReplayAdapter

    task = make_task(tmp_path, prompt=prompt, rows=6)
    outputs = {"s0": ["x", "a0"], "s1": "a1", "s2": ["a2"], "s4": ["y", "z", "extra"], "s5": ["w", "a5"]}
    model = replay(tmp_path, outputs)
    found = {}
    for immediate in (True, False):
        monkeypatch.setattr(ReplayAdapter, "immediate", immediate)
        progress: list[tuple[int, int]] = []
        out = tmp_path / f"out-{immediate}"
        options = RunOptions(output=out, bootstrap_trials=50)
        asyncio.run(
            evaluate(
                task, model, build_adapter(model), options, progress=lambda d, t, seen=progress: seen.append((d, t))
            )
        )
        written = [(out / "rec/t" / name).read_text() for name in ("results.json", "samples.jsonl")]
        found[immediate] = (written, progress)
    assert found[True] == found[False]
    assert found[True][1] == [(i, 6) for i in range(1, 7)]


def test_metric_options_are_validated_against_the_plugin(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    bad = TaskSpec.model_validate({**task.model_dump(), "metrics": [{"name": "test_exact", "mode": "x"}]})
    with pytest.raises(SpecError, match=r"metrics\[0\]\.mode: unknown option of the test_exact metric \(it takes "):
        build_plugins(bad)


def test_unknown_metric_name_suggests(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    bad = TaskSpec.model_validate({**task.model_dump(), "metrics": ["test_exakt"]})
    with pytest.raises(SpecError, match="Did you mean: test_exact") as info:
        build_plugins(bad)
    assert info.value.field == "metrics[0]"


def test_duplicate_metric_keys_are_rejected(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    bad = TaskSpec.model_validate({**task.model_dump(), "metrics": ["test_exact", "test_exact"]})
    with pytest.raises(SpecError, match="produced by both"):
        build_plugins(bad)


def test_shards_merge_to_the_unsharded_result(tmp_path: Path) -> None:
    from regbench.merge import merge_shards

    task = make_task(tmp_path, rows=9)
    model = replay(tmp_path, {f"s{i}": (f"a{i}" if i % 3 else "no") for i in range(9)})
    whole = run(task, model, tmp_path / "whole")
    shard_dirs = []
    for index in range(3):
        options = RunOptions(output=tmp_path / "sharded", bootstrap_trials=50, shard=(index, 3))
        result = asyncio.run(evaluate(task, model, build_adapter(model), options))
        assert result.results.n_samples == 3
        shard_dirs.append(result.directory)
    merged = merge_shards(shard_dirs[::-1], tmp_path / "merged")
    assert merged.model_dump(mode="json") == whole
    assert (tmp_path / "merged/samples.jsonl").read_text() == (tmp_path / "whole/rec/t/samples.jsonl").read_text()
    with pytest.raises(Exception, match="more than one shard"):
        merge_shards([*shard_dirs, shard_dirs[0]], tmp_path / "again")


def test_merge_refuses_an_incomplete_set_of_shards(tmp_path: Path) -> None:
    from regbench.merge import merge_shards

    task = make_task(tmp_path, rows=6)
    model = replay(tmp_path, {f"s{i}": f"a{i}" for i in range(6)})
    dirs = []
    for index in (0, 2):
        options = RunOptions(output=tmp_path / "out", bootstrap_trials=20, shard=(index, 3))
        dirs.append(asyncio.run(evaluate(task, model, build_adapter(model), options)).directory)
    with pytest.raises(DataError, match=r"shard\(s\) 1/3 missing"):
        merge_shards(dirs, tmp_path / "merged")
    whole = asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=tmp_path / "w"))).directory
    with pytest.raises(DataError, match="not a shard"):
        merge_shards([*dirs, whole], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_merged_shards_recompute_per_sample_cider_over_the_whole_split(tmp_path: Path) -> None:
    """CIDEr-D's document frequencies come from the split: a shard's per-sample values differ from the
    whole run's, and merge recomputes them (results.json and samples.jsonl equal the unsharded run)."""
    from regbench.merge import merge_shards

    reports = ["the heart is normal", "small left effusion", "no pneumothorax", "the heart is enlarged"]
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"s{i}", "question": "q", "answer": r} for i, r in enumerate(reports)])
    (tmp_path / "task.yaml").write_text(
        "task: t\nfamily: report\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics: [{name: nlg, meteor: false, tokenizer: whitespace}]\n"
    )
    task = load_spec(tmp_path / "task.yaml", TaskSpec)
    model = replay(tmp_path, {f"s{i}": r.replace("normal", "fine") for i, r in enumerate(reports)})
    run(task, model, tmp_path / "whole")
    dirs = []
    for index in range(2):
        options = RunOptions(output=tmp_path / "sharded", bootstrap_trials=50, shard=(index, 2))
        dirs.append(asyncio.run(evaluate(task, model, build_adapter(model), options)).directory)
    shard_cider = [json.loads(x)["scores"]["cider"] for x in (dirs[0] / "samples.jsonl").read_text().splitlines()]
    merge_shards(dirs, tmp_path / "merged")
    whole = (tmp_path / "whole/rec/t/samples.jsonl").read_text()
    merged = (tmp_path / "merged/samples.jsonl").read_text()
    assert shard_cider != [json.loads(x)["scores"]["cider"] for x in whole.splitlines()][::2]
    assert merged == whole
    assert json.loads((tmp_path / "merged/results.json").read_text()) == json.loads(
        (tmp_path / "whole/rec/t/results.json").read_text()
    )


def test_run_tasks_starts_the_adapter_once_and_reports_progress_per_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from regbench.models.replay import ReplayAdapter
    from regbench.runner import run_tasks

    events: list[object] = []
    for method in ("start", "close"):

        async def record(self: ReplayAdapter, method: str = method) -> None:
            events.append(method)

        monkeypatch.setattr(ReplayAdapter, method, record)

    @contextmanager
    def progress() -> Iterator[Callable[[TaskSpec], Callable[[int, int], None]]]:
        events.append("progress")
        yield lambda task: lambda done, total: events.append((task.task, done, total))
        events.append("progress done")

    first = make_task(tmp_path / "a", rows=2)
    (tmp_path / "a/u.yaml").write_text((tmp_path / "a/task.yaml").read_text().replace("task: t", "task: u"))
    second = load_spec(tmp_path / "a/u.yaml", TaskSpec)
    model = replay(tmp_path, {"s0": "a0", "s1": "x"})
    results = run_tasks(
        model, [first, second], RunOptions(output=tmp_path / "out", bootstrap_trials=0), progress=progress()
    )
    assert [r.results.task for r in results] == ["t", "u"] and results[1].results.metrics["exact"] == 0.5
    assert events == ["start", "progress", ("t", 1, 2), ("t", 2, 2), ("u", 1, 2), ("u", 2, 2), "progress done", "close"]


def test_merge_command_defaults_to_the_shards_parent(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    task = make_task(tmp_path, rows=4)
    model = replay(tmp_path, {f"s{i}": f"a{i}" for i in range(4)})
    dirs = []
    for index in range(2):
        options = RunOptions(output=tmp_path / "out", bootstrap_trials=20, shard=(index, 2))
        dirs.append(asyncio.run(evaluate(task, model, build_adapter(model), options)).directory)
    result = CliRunner().invoke(app, ["merge", *map(str, dirs)])
    assert result.exit_code == 0, result.output
    merged = json.loads((tmp_path / "out/rec/t/results.json").read_text())
    assert merged["n_samples"] == 4 and merged["metrics"]["exact"] == 1.0


def test_an_api_key_expanded_into_the_model_yaml_is_masked_in_results() -> None:
    from regbench.redact import without_secret

    config = {
        "base_url": "http://tok:sk-9x@host/v1",
        "options": {"extra_body": {"api_key": "sk-9x"}, "n": [1, "sk-9x"]},
    }
    masked = without_secret(config, "sk-9x")
    assert "sk-9x" not in str(masked) and masked["base_url"] == "http://tok:***@host/v1"
    assert without_secret(config, None) is config


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("http://user:pw-from-OTHER_VAR@host:8000/v1", "http://***@host:8000/v1"),
        (["http://a@h1/v1", "https://u:p@ss@h2/v1"], ["http://***@h1/v1", "https://***@h2/v1"]),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ],
)
def test_credentials_in_base_url_are_hidden_in_results(tmp_path: Path, base_url: object, shown: object) -> None:
    from regbench.redact import model_config

    model = ModelSpec(model="m", adapter="openai", base_url=base_url)  # type: ignore[arg-type]
    assert model_config(model)["base_url"] == shown


def test_an_adapter_exception_is_recorded_without_the_api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.models.replay import ReplayAdapter

    class Leaky(ReplayAdapter):
        async def generate(self, request: Request) -> Response:
            raise RuntimeError("header Authorization: Bearer sk-leak-42 refused")

    monkeypatch.setenv("LEAKY_KEY", "sk-leak-42")
    task = make_task(tmp_path, rows=2)
    model = replay(tmp_path, {"s0": "a0", "s1": "a1"}).model_copy(update={"api_key_env": "LEAKY_KEY"})
    asyncio.run(evaluate(task, model, Leaky(model), RunOptions(output=tmp_path / "out", bootstrap_trials=0)))
    written = (tmp_path / "out/rec/t/samples.jsonl").read_text()
    assert "sk-leak-42" not in written and written.count("RuntimeError: header Authorization: Bearer ***") == 2


def test_a_later_turn_that_cannot_be_rendered_costs_its_sample_only(tmp_path: Path) -> None:
    # Turn 2 names the first object found in turn 1: a sample whose turn-1 answer has no box cannot go on.
    task = make_task(tmp_path, prompt='["Find: {{ question }}", "Describe {{ previous_objects[0].name }}"]', rows=2)
    model = replay(tmp_path, {"s0": ["<ref>liver</ref><box>[[1, 2, 30, 40]]</box>", "a0"], "s1": ["nothing", "x"]})
    results = run(task, model, tmp_path / "out")
    assert results["n_samples"] == 2 and results["n_errors"] == 1 and results["metrics"]["exact"] == 0.5
    first, second = map(json.loads, (tmp_path / "out/rec/t/samples.jsonl").read_text().splitlines())
    assert first["error"] is None and first["prompt"][-1]["content"] == "Describe liver"
    assert second["error"].startswith("turn 1: ") and "template variable missing for sample 's1'" in second["error"]
    assert second["outputs"] == ["nothing"]


def test_gc_paused_restores_the_collector_state() -> None:
    import gc

    from regbench.collector import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # an application's own choice stands
    finally:
        gc.enable()
