"""The lm-eval bridge both ways, with lm-eval 0.4.13 itself and a real loopback server.

- ``regbench export lm-eval``: bundled tasks of three families run by ``lm_eval`` (a subprocess, offline,
  ``local-chat-completions`` against tests/servers/openai_server.py answering the recorded demo outputs),
  then ``regbench score`` of the samples lm-eval logged: every metric equal.
- ``adapter: lm-eval``: a bundled task through lm-eval's ``local-chat-completions`` and through the native
  ``openai`` adapter against the same server: the same results, and a rerun asks nothing.
- Bad inputs: exit 2 with one clear paragraph.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from regbench.cli import app
from regbench.signature import Signature
from tests.conftest import REPO
from tests.servers import RunningServer, start_openai_server

TASKS = ("grounded_rg", "demo_vqa_en", "demo_classification")  # grounded report (region + NLG), VQA, classification
RECORDED = REPO / "models" / "recorded" / "medrega"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def recorded_replies(export: Path) -> list[dict[str, str]]:
    """Server rules: each exported prompt answered with the demo's recorded output of that sample."""
    rules = []
    for task in TASKS:
        docs = {row["id"]: row for row in map(json.loads, (export / task / f"{task}.jsonl").read_text().splitlines())}
        for line in (RECORDED / f"{task}.jsonl").read_text().splitlines():
            record = json.loads(line)
            rules.append({"match": docs[record["id"]]["prompt"], "reply": record["output"]})
    return sorted(rules, key=lambda rule: -len(rule["match"]))  # a prompt inside a longer one matches last


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lm_tasks")
    code, text = invoke("export", "lm-eval", str(out), "--image-placeholder", "", *(f"--task={t}" for t in TASKS))
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def server(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_openai_server(tmp_path_factory.mktemp("server"), script=recorded_replies(exported))
    yield running
    running.stop()


def lm_eval_metrics(results: dict, task: str) -> dict[str, float]:
    """A task's metrics in lm-eval's results JSON (``key,none``), NaN (no value) left out."""
    values = {
        name.split(",")[0]: value
        for name, value in results["results"][task].items()
        if name.endswith(",none") and "_stderr" not in name
    }
    return {key: value for key, value in values.items() if not math.isnan(value)}


# ---------------------------------------------------------------- export -> lm_eval -> score


def test_the_export_is_an_include_directory_scored_by_regbench(exported: Path) -> None:
    from lm_eval.tasks._yaml_loader import load_yaml

    # the prompt is rendered by regbench, the box filter in the export's format; the system prompt goes apart
    docs = [json.loads(line) for line in (exported / "grounded_rg" / "grounded_rg.jsonl").read_text().splitlines()]
    assert len(docs) == 6 and docs[0]["system"].startswith("You are a helpful medical assistant.")
    region = json.loads((exported / "grounded_rg" / "regbench.json").read_text())
    assert region["task"]["metrics"][1]["name"] == "region_aligned"  # suites expanded, options resolved
    assert region["regbench_version"] and region["box_format"] == "medrega" and region["n_samples"] == 6

    config = load_yaml(exported / "grounded_rg" / "grounded_rg.yaml", resolve_func=True)
    assert callable(config["doc_to_image"]) and callable(config["process_results"])
    assert config["doc_to_text"] == "prompt_images" and config["description"] == "system"
    assert [m["metric"] for m in config["metric_list"]] == list(region["higher_is_better"])
    assert config["metadata"]["signatures"] == region["signatures"]
    assert config["generation_kwargs"] == {"until": [], "max_gen_toks": 400, "do_sample": False, "temperature": 0.0}
    text_only = load_yaml(exported / "grounded_rg" / "grounded_rg_text.yaml", resolve_func=True)
    assert "doc_to_image" not in text_only and text_only["doc_to_text"] == "prompt"
    # each family is a group, with and without images
    assert yaml.safe_load((exported / "regbench_vqa.yaml").read_text())["task"] == ["demo_vqa_en"]
    assert yaml.safe_load((exported / "regbench_grounded_report_text.yaml").read_text())["task"] == ["grounded_rg_text"]


def test_the_image_placeholder_and_the_box_format_of_the_prompts(tmp_path: Path) -> None:
    code, text = invoke("export", "lm-eval", str(tmp_path), "--task", "demo_region_identification")
    assert code == 0, text
    data = tmp_path / "demo_region_identification" / "demo_region_identification.jsonl"
    row = json.loads(data.read_text().splitlines()[0])
    assert "<box>[[102, 106, 481, 910]]</box>" in row["prompt"]
    assert row["prompt_images"] == "<image>" + row["prompt"] and row["answer"] == "right lung"


def test_lm_eval_scores_exported_tasks_as_regbench_score_does(
    exported: Path, server: RunningServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-m", "lm_eval",
        "--model", "local-chat-completions",
        "--model_args", f"base_url={server.url}/chat/completions,model=test-model",
        "--tasks", "regbench_grounded_report,regbench_vqa,regbench_classification",
        "--include_path", str(exported),
        "--apply_chat_template", "--log_samples", "--output_path", str(tmp_path / "lm"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next((tmp_path / "lm").glob("*/results_*.json")).read_text())
    # lm-eval sent regbench's system prompt as a system message and every image
    asked = server.requests()
    assert len(asked) == 18 and all(r["system"] and r["images"] == 1 for r in asked)

    for task in TASKS:
        logged = next((tmp_path / "lm").glob(f"*/samples_{task}_*.jsonl"))
        code, text = invoke(
            "score", "--task", task, "--predictions", str(logged), "--box-format", "medrega",
            "-o", str(tmp_path / "runs"), "--name", "lm", "--bootstrap", "0",
        )  # fmt: skip
        assert code == 0, text
        regbench = json.loads((tmp_path / "runs" / "lm" / task / "results.json").read_text())
        from_lm_eval = lm_eval_metrics(results, task)
        assert set(from_lm_eval) == set(regbench["metrics"]), task
        for key, value in regbench["metrics"].items():
            assert from_lm_eval[key] == pytest.approx(value, abs=1e-9), (task, key)
        # the signatures lm-eval's output records are regbench's, bootstrap aside
        recorded = results["configs"][task]["metadata"]["signatures"]
        for key, signature in regbench["signatures"].items():
            assert Signature.parse(recorded[key]).comparable() == Signature.parse(signature).comparable()

    grounded = lm_eval_metrics(results, "grounded_rg")
    assert grounded["region_f1"] > 0.5 and grounded["cider"] > 1.0 and grounded["meteor"] > 0.2
    # corpus BLEU-4, not the mean of per-sample values lm-eval would take by default
    logged = [json.loads(line) for line in next((tmp_path / "lm").glob("*/samples_grounded_rg_*.jsonl")).open()]
    per_sample = sum(row["bleu4"]["bleu4"] for row in logged) / len(logged)
    assert abs(grounded["bleu4"] - per_sample) > 0.01


# ---------------------------------------------------------------- adapter: lm-eval


def model_yaml(path: Path, **spec: object) -> Path:
    path.write_text(json.dumps({"box_format": "medrega", **spec}), encoding="utf-8")
    return path


def test_the_lm_eval_adapter_equals_the_openai_adapter_and_a_rerun_asks_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    lm = model_yaml(
        tmp_path / "lm.yaml",
        model="via-lm-eval",
        adapter="lm-eval",
        lm_eval_model="local-chat-completions",
        model_args={"base_url": f"{server.url}/chat/completions", "model": "test-model", "num_concurrent": 2},
    )
    native = model_yaml(
        tmp_path / "openai.yaml", model="native", adapter="openai", base_url=server.url, model_name="test-model"
    )
    runs = tmp_path / "runs"
    before = len(server.requests())
    code, text = invoke("run", "--model", str(lm), "--task", "grounded_rg", "-o", str(runs), "--bootstrap", "200")
    assert code == 0, text
    via_lm_eval = server.requests()[before:]
    code, text = invoke("run", "--model", str(native), "--task", "grounded_rg", "-o", str(runs), "--bootstrap", "200")
    assert code == 0, text
    via_openai = server.requests()[before + len(via_lm_eval) :]

    def asked(requests: list[dict]) -> list[tuple]:
        return sorted((r["text"], r["system"], r["images"], r["max_tokens"], r["temperature"]) for r in requests)

    assert len(via_lm_eval) == 6 and asked(via_lm_eval) == asked(via_openai)
    first = json.loads((runs / "via-lm-eval" / "grounded_rg" / "results.json").read_text())
    other = json.loads((runs / "native" / "grounded_rg" / "results.json").read_text())
    assert first["metrics"] == other["metrics"] and first["ci95"] == other["ci95"]
    assert first["metrics"]["region_f1"] > 0.5 and first["n_errors"] == 0
    assert first["config"]["model"]["lm_eval_model"] == "local-chat-completions"

    written = (runs / "via-lm-eval" / "grounded_rg" / "results.json").read_bytes()
    code, text = invoke("run", "--model", str(lm), "--task", "grounded_rg", "-o", str(runs), "--bootstrap", "200")
    assert code == 0, text
    assert len(server.requests()) == before + 12  # the rerun asked nothing
    assert json.loads((runs / "via-lm-eval" / "grounded_rg" / "run.json").read_text())["cache_hits"] == 6
    assert (runs / "via-lm-eval" / "grounded_rg" / "results.json").read_bytes() == written


def test_a_text_only_lm_eval_model_gets_plain_text(tmp_path: Path) -> None:
    """lm-eval's ``dummy`` model answers "lol" to anything, takes no images and has no chat template."""
    dummy = model_yaml(tmp_path / "dummy.yaml", model="dummy", adapter="lm-eval", lm_eval_model="dummy")
    code, text = invoke("run", "--model", str(dummy), "--task", "demo_vqa_en", "-o", str(tmp_path / "runs"))
    assert code == 2 and "options.apply_chat_template" in text and "apply_chat_template: false" in text

    model_yaml(dummy, model="dummy", adapter="lm-eval", lm_eval_model="dummy", options={"apply_chat_template": False})
    code, text = invoke("run", "--model", str(dummy), "--task", "demo_vqa_en", "-o", str(tmp_path / "runs"))
    assert code == 0, text
    assert "takes text only" in text
    samples = [json.loads(line) for line in (tmp_path / "runs" / "dummy" / "demo_vqa_en" / "samples.jsonl").open()]
    assert [s["output"] for s in samples] == ["lol"] * 6


# ---------------------------------------------------------------- bad inputs


def test_export_of_an_unknown_or_a_multi_turn_task_is_exit_2(tmp_path: Path) -> None:
    code, text = invoke("export", "lm-eval", str(tmp_path), "--task", "grounded_gr")
    assert code == 2 and "Unknown task 'grounded_gr'" in text and "Traceback" not in text
    code, text = invoke("export", "lm-eval", str(tmp_path), "--task", "regional_cot")
    assert code == 2 and "nothing to export" in text and "2 turns" in text


def test_the_lm_eval_adapter_without_lm_eval_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "lm_eval" or n.startswith("lm_eval.")] + ["lm_eval"]:
        monkeypatch.setitem(sys.modules, name, None)  # an import of lm-eval fails, as when it is not installed
    spec = model_yaml(tmp_path / "m.yaml", model="m", adapter="lm-eval", lm_eval_model="hf")
    code, text = invoke("run", "--model", str(spec), "--task", "demo_vqa_en", "-o", str(tmp_path))
    assert code == 2 and "Traceback" not in text
    assert "adapter: lm-eval is not installed; to install it: pip install 'regbench[lm-eval]'" in text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lm_eval_model": "local-chat-complete"}, "lm_eval_model: Unknown lm-eval model 'local-chat-complete'"),
        ({}, "lm_eval_model: the lm-eval adapter needs lm_eval_model"),
        (
            {"lm_eval_model": "local-chat-completions", "model_args": {"base_url": "http://x/v1", "max_gen_toks": "a"}},
            "model_args: lm-eval model 'local-chat-completions' rejects them: ValueError",
        ),
        ({"lm_eval_model": "dummy", "options": {"batch_size": 0}}, "options.batch_size"),
    ],
)
def test_lm_eval_model_yaml_mistakes_are_exit_2(tmp_path: Path, spec: dict, message: str) -> None:
    path = model_yaml(tmp_path / "m.yaml", model="m", adapter="lm-eval", **spec)
    code, text = invoke("run", "--model", str(path), "--task", "demo_vqa_en", "-o", str(tmp_path))
    assert code == 2 and message in text and "Traceback" not in text, text


def test_lm_eval_fields_on_another_adapter_are_exit_2(tmp_path: Path) -> None:
    path = model_yaml(tmp_path / "m.yaml", model="m", adapter="openai", base_url="http://127.0.0.1:9/v1", model_args={})
    code, text = invoke("run", "--model", str(path), "--task", "demo_vqa_en", "-o", str(tmp_path))
    assert code == 2 and "model_args: only `adapter: lm-eval` reads it" in text


def test_scoring_lm_eval_samples_of_another_task_is_exit_2(tmp_path: Path) -> None:
    logged = tmp_path / "samples_arc.jsonl"
    logged.write_text(json.dumps({"doc_id": 0, "doc": {"question": "?"}, "filtered_resps": ["A"]}) + "\n")
    code, text = invoke("score", "--task", "demo_vqa_en", "--predictions", str(logged), "-o", str(tmp_path))
    assert code == 2 and "samples_arc.jsonl:1: an lm-eval sample whose document has no regbench id" in text


def test_the_filter_scores_the_split_in_one_batch_and_process_results_hands_out_its_stats(exported: Path) -> None:
    """lm-eval runs the custom filter over every answer first; process_results then only looks up."""
    from regbench.lmeval_hooks import ExportedTask

    task = ExportedTask(exported / "demo_vqa_en")
    docs = task.rows()
    answers = [["yes"], ["no"], ["lungs"], ["CT"], ["right lung"], ["no"]]  # lm-eval's resps: one list per doc
    assert task.score_all([a[0] for a in answers], docs) == [a[0] for a in answers]
    batch = [task.process_results(doc, answer) for doc, answer in zip(docs, answers, strict=True)]
    alone = [task.process_results(doc, answer) for doc, answer in zip(docs, answers, strict=True)]  # not kept
    assert batch == alone and set(batch[0]) == set(
        json.loads((exported / "demo_vqa_en" / "regbench.json").read_text())["higher_is_better"]
    )
    assert task.aggregate("closed_accuracy", [row["closed_accuracy"] for row in batch]) == pytest.approx(2 / 3)


class _Recorded:
    """What the test VLM below was handed: one list of request arguments per generate_until call."""

    calls: list[list[tuple]] = []


def _register_test_vlm() -> str:
    """A small multimodal lm-eval model registered for the tests, as a user's own @register_model class is:
    local (not an API model), with a chat template (the messages as JSON), answering "lung"."""
    from lm_eval.api.model import LM
    from lm_eval.api.registry import model_registry, register_model

    name = "regbench-test-vlm"
    if name in model_registry:
        return name

    class RecordingVLM(LM):
        MULTIMODAL = True

        def __init__(self, answer: str = "lung") -> None:
            super().__init__()
            self.answer = answer

        def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
            return json.dumps(chat_history)

        def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
            _Recorded.calls.append([request.args for request in requests])
            return [self.answer for _ in requests]

        def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError

        def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError

    register_model(name)(RecordingVLM)
    return name


def test_a_local_multimodal_lm_eval_model_gets_placeholders_images_and_batches(tmp_path: Path) -> None:
    name = _register_test_vlm()
    _Recorded.calls.clear()
    spec = model_yaml(tmp_path / "vlm.yaml", model="vlm", adapter="lm-eval", lm_eval_model=name, model_args={})
    code, text = invoke("run", "--model", str(spec), "--task", "demo_vqa_en", "-o", str(tmp_path / "runs"))
    assert code == 0, text
    requests = [args for call in _Recorded.calls for args in call]
    assert len(requests) == 6 and len(_Recorded.calls) < 6  # waiting requests went to lm-eval together
    context, generation, _ = requests[0]
    chat = json.loads(context)
    assert [m["role"] for m in chat] == ["system", "user"] and chat[1]["content"].startswith("<image>")
    assert generation == {"until": [], "max_gen_toks": 32, "do_sample": False, "temperature": 0.0}
    for _, _, extra in requests:  # each sample's one image, as a PIL image
        assert [(image.size, image.mode) for image in extra["visual"]] == [((128, 128), "RGB")]
    results = json.loads((tmp_path / "runs" / "vlm" / "demo_vqa_en" / "results.json").read_text())
    assert results["n_samples"] == 6 and results["n_errors"] == 0

    rejected = model_yaml(tmp_path / "bad.yaml", model="bad", adapter="lm-eval", lm_eval_model=name,
                          model_args={"answr": "x"})  # fmt: skip
    code, text = invoke("run", "--model", str(rejected), "--task", "demo_vqa_en", "-o", str(tmp_path / "runs"))
    assert code == 2 and f"model_args: lm-eval model '{name}' rejects them: TypeError" in text and "answr" in text
