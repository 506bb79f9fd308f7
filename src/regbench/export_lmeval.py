"""``regbench export lm-eval``: regbench tasks as lm-evaluation-harness task YAMLs.

Prompts are rendered by regbench (with the chosen box format), so every template feature,
the ``box`` filter included, survives; lm-eval receives a JSONL with one ``prompt`` and one
``answer`` per sample and a task YAML that generates until the model stops and reports exact
match. Only the first turn of a multi-turn task is exported, and regbench's own metrics
(region matching, CheXbert, ...) stay in regbench: the export is for running the same prompts
through lm-eval's model backends. The export is text only (images are not passed, a system
prompt is put before the prompt), and the task YAML names its JSONL by absolute path (lm-eval
reads ``data_files`` relative to where it runs, not to the YAML).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from regbench.data import load_samples
from regbench.parsing import get_box_format
from regbench.prompts import PromptRenderer
from regbench.spec import ModelSpec, TaskSpec


def export_task(task: TaskSpec, out_dir: Path, *, box_format: str = "medrega") -> tuple[Path, Path]:
    """Write ``<task>.jsonl`` and ``<task>.yaml`` for lm-eval into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stub = ModelSpec(model="lm-eval", adapter="replay", path="-", box_format=box_format)
    renderer = PromptRenderer(task, stub, write_box=get_box_format(box_format).write)
    data = out_dir / f"{task.task}.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for sample in load_samples(task):
            messages = renderer.messages(sample, 0, [])
            prompt = "\n\n".join(m.content for m in messages)
            answer = sample.answer or ", ".join(sample.labels)
            handle.write(json.dumps({"id": sample.id, "prompt": prompt, "answer": answer}, ensure_ascii=False) + "\n")
    generation = (task.generation or stub.generation).model_dump()
    spec = {
        "task": task.task,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {
            "until": generation["stop"] or [],
            "max_gen_toks": generation["max_tokens"],
            "do_sample": generation["temperature"] > 0,
        },
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": True,
            }
        ],
        "metadata": {"version": 1.0, "exported_by": "regbench", "family": task.family, "turns_exported": 1},
    }
    path = out_dir / f"{task.task}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, data
