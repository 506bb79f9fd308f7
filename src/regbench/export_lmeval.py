"""``regbench export lm-eval``: regbench tasks as an lm-evaluation-harness include directory, scored by regbench.

``OUT_DIR/<task>/`` holds, per task:

- ``<task>.jsonl``: one document per sample: the prompt rendered by regbench with the chosen box
  format (``prompt``; ``prompt_images`` with an image placeholder per image, for lm-eval's local
  multimodal models), the system prompt (``system``, which lm-eval's ``description`` puts in a
  system message under ``--apply_chat_template``), the image paths (absolute: the images stay
  where they are), the reference answer, and the whole sample (``sample``, JSON);
- ``<task>.yaml``: the lm-eval task: the documents through ``custom_dataset`` (read from the
  directory, wherever it is moved; nothing goes to the datasets cache), ``generate_until`` with
  the task's generation settings, ``doc_to_image`` when the samples have images, one metric per
  regbench key with regbench's direction, and in ``metadata`` regbench's version, the box format
  and every key's signature; ``<task>_text.yaml``, the same task without images, for text-only
  backends (lm-eval refuses a task with images on a model that takes none);
- ``utils.py``: the hooks, which call :mod:`regbench.lmeval_hooks`: regbench's parser and metric
  plugins for the samples' statistics (in a filter that sees every answer of the task, so the split is
  scored in one batch; ``process_results`` hands lm-eval each sample's), the plugins' ``finalize`` in
  the aggregations;
- ``regbench.json``: the manifest: regbench's version, the task with its metric suites expanded
  and options resolved, the box format, the signatures.

``OUT_DIR/regbench_<family>.yaml`` (and ``regbench_<family>_text.yaml``) group every task of a
family exported into the directory. A multi-turn task is not exported (``generate_until`` is one
turn; the ``lm-eval`` model adapter runs it), nor a metric that cannot be computed one sample at a
time (BERTScore with IDF weights fitted on the split).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from regbench import __version__
from regbench.data import load_split
from regbench.data.export import canonical_record
from regbench.errors import DataError, RegbenchError
from regbench.lmeval_hooks import MANIFEST
from regbench.metrics import Metric, build_plugins
from regbench.metrics.judged import JudgedMetric
from regbench.models.images import count_images
from regbench.models.lmeval import IMAGE_PLACEHOLDER, gen_kwargs
from regbench.parsing import get_box_format
from regbench.prompts import PromptRenderer
from regbench.spec import FAMILIES, GenerationSpec, ModelSpec, TaskSpec
from regbench.types import Sample

GROUP_PREFIX = "regbench_"


@dataclass
class Export:
    """What an export wrote (task and group YAMLs) and the tasks it left out, with why."""

    written: list[Path] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Function(str):
    """A YAML scalar written as lm-eval's ``!function utils.NAME``."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def export_tasks(
    tasks: Sequence[TaskSpec],
    out_dir: Path,
    *,
    box_format: str = "medrega",
    image_placeholder: str = IMAGE_PLACEHOLDER,
) -> Export:
    """Write every one-turn task of ``tasks`` into ``out_dir``, then the family groups of the directory."""
    result = Export()
    for task in tasks:
        if len(task.turns) > 1:
            result.skipped.append(
                f"{task.task}: {len(task.turns)} turns; lm-eval's generate_until asks one (run it with regbench, "
                "or through lm-eval's models with `adapter: lm-eval`)"
            )
            continue
        if (task.samples_per_question or 1) > 1:
            result.skipped.append(
                f"{task.task}: samples_per_question {task.samples_per_question}; lm-eval asks each question once "
                "(run it with regbench, or through lm-eval's models with `adapter: lm-eval`)"
            )
            continue
        try:
            result.written += export_task(task, out_dir, box_format=box_format, image_placeholder=image_placeholder)
        except _NotExportable as exc:
            result.skipped.append(str(exc))
    if not result.written:
        raise RegbenchError("nothing to export: " + "; ".join(result.skipped))
    result.groups = write_groups(out_dir)
    return result


def export_task(
    task: TaskSpec, out_dir: Path, *, box_format: str = "medrega", image_placeholder: str = IMAGE_PLACEHOLDER
) -> list[Path]:
    """Write one task's directory (documents, task YAMLs, utils.py, manifest); returns the task YAMLs."""
    plugins = _plugins(task)
    spec = _resolved_spec(task, plugins)
    samples = load_split(task, validate=True).samples
    stub = ModelSpec(model="lm-eval", adapter="replay", path="-", box_format=box_format)
    renderer = PromptRenderer(task, stub, write_box=get_box_format(box_format).write)
    rows = [_document(task, renderer, sample, image_placeholder) for sample in samples]
    has_images = any(row["images"] for row in rows)

    name = task.task
    directory = out_dir / _safe(name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write {directory}: {exc.strerror or exc}") from None
    data = directory / f"{_safe(name)}.jsonl"
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")

    keys = {key: higher for plugin in plugins for key, higher in plugin.output_keys().items()}
    functions = _function_names(keys)
    signatures = {key: plugin.signature(key).format() for plugin in plugins for key in plugin.output_keys()}
    (directory / "utils.py").write_text(_utils(name, functions), encoding="utf-8")

    generation = GenerationSpec().merged(task.generation)
    metadata = {
        "version": 1.0,
        "regbench_version": __version__,
        "regbench_task": name,
        "family": task.family,
        "box_format": box_format,
        "signatures": signatures,
    }
    variants = {name: has_images, f"{name}_text": False} if has_images else {name: False}
    written = []
    for variant, images in variants.items():
        config: dict[str, Any] = {
            "task": variant,
            "custom_dataset": _Function("utils.load_docs"),
            "test_split": "test",
            "output_type": "generate_until",
            "description": "system",
            "doc_to_text": "prompt_images" if images else "prompt",
            "doc_to_target": "answer",
        }
        if images:
            config["doc_to_image"] = _Function("utils.doc_to_image")
        config |= {
            "generation_kwargs": gen_kwargs(generation),
            # "none", lm-eval's default filter name, so the metrics keep their usual `key,none` names
            "filter_list": [
                {
                    "name": "none",
                    "filter": [
                        {"function": "take_first"},
                        {"function": "custom", "filter_fn": _Function("utils.score_all")},
                    ],
                }
            ],
            "process_results": _Function("utils.process_results"),
            "metric_list": [
                {"metric": key, "aggregation": _Function(f"utils.{functions[key]}"), "higher_is_better": higher}
                for key, higher in keys.items()
            ],
            "metadata": metadata,
        }
        path = directory / f"{_safe(variant)}.yaml"
        text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
        path.write_text(f"# Written by regbench {__version__} (regbench export lm-eval); scored by regbench.\n{text}")
        written.append(path)
    if not has_images:
        (directory / f"{_safe(name)}_text.yaml").unlink(missing_ok=True)  # left by an export with images

    manifest = {
        "regbench_version": __version__,
        "task": spec,
        "family": task.family,
        "box_format": box_format,
        "image_placeholder": image_placeholder,
        "data": data.name,
        "n_samples": len(rows),
        "lm_eval_task": name,
        "lm_eval_text_task": f"{name}_text" if has_images else name,
        "signatures": signatures,
        "higher_is_better": keys,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


def write_groups(out_dir: Path) -> list[str]:
    """``regbench_<family>.yaml`` and ``regbench_<family>_text.yaml`` over every task exported into ``out_dir``."""
    members: dict[str, list[dict[str, Any]]] = {}
    for manifest_path in sorted(out_dir.glob(f"*/{MANIFEST}")):
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            members.setdefault(manifest["family"], []).append(manifest)
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue  # not one of ours: lm-eval will say what it makes of it
    groups = []
    for family in FAMILIES:
        if family not in members:
            continue
        for suffix, key in (("", "lm_eval_task"), ("_text", "lm_eval_text_task")):
            group = f"{GROUP_PREFIX}{family}{suffix}"
            config = {
                "group": group,
                "task": [manifest[key] for manifest in members[family]],
                "metadata": {"version": 1.0, "regbench_version": __version__},
            }
            text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
            (out_dir / f"{group}.yaml").write_text(f"# The {family} tasks exported here (regbench).\n{text}")
            groups.append(group)
    return groups


class _NotExportable(RegbenchError):
    """A task whose metrics lm-eval's one-answer-per-document scoring cannot compute (skipped, with why)."""


def _plugins(task: TaskSpec) -> list[Metric]:
    """The task's plugins; one whose statistics need the whole split at once cannot be exported."""
    plugins = build_plugins(task)
    try:
        for plugin in plugins:
            # inside lm-eval nobody asks a judge and no plugin sees the others' values: such a key would
            # score 0 (judge) or nothing (joint) while looking like a result
            if isinstance(plugin, JudgedMetric) or plugin.joint:
                why = "asks a judge model" if isinstance(plugin, JudgedMetric) else "reads the other metrics' values"
                raise _NotExportable(
                    f"{task.task}: metric {plugin.name} {why}, which lm-eval's scoring cannot do (run it with "
                    "regbench, or through lm-eval's models with `adapter: lm-eval`)"
                )
            try:  # stats from one sample at a time must rejoin into the split's (Metric.rejoin)
                plugin.rejoin([])
            except DataError as exc:
                raise RegbenchError(
                    f"task {task.task}: metric {plugin.name} cannot be scored inside lm-eval, which hands regbench "
                    f"one sample at a time: {exc}"
                ) from None
    finally:
        for plugin in plugins:
            plugin.close()
    return plugins


def _resolved_spec(task: TaskSpec, plugins: Sequence[Metric]) -> dict[str, Any]:
    """The task as the manifest records it: metric suites expanded, every option resolved. Built back, it
    must give the same signatures (else a number in lm-eval would not be the one regbench computes)."""
    spec = task.model_dump(mode="json")
    spec["metrics"] = [{"name": plugin.name, **plugin.options.model_dump(mode="json")} for plugin in plugins]
    rebuilt = build_plugins(TaskSpec.model_validate(spec))
    try:
        before = [plugin.signature(key).format() for plugin in plugins for key in plugin.output_keys()]
        after = [plugin.signature(key).format() for plugin in rebuilt for key in plugin.output_keys()]
    finally:
        for plugin in rebuilt:
            plugin.close()
    if before != after:
        raise RegbenchError(f"task {task.task}: its metric options do not survive the export ({before} vs {after})")
    return spec


def _document(task: TaskSpec, renderer: PromptRenderer, sample: Sample, placeholder: str) -> dict[str, Any]:
    """One sample as an lm-eval document."""
    messages = renderer.messages(sample, 0, [])
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    prompt = "\n\n".join(m.content for m in messages if m.role != "system")
    for image in sample.image:
        if not Path(image).is_file():
            data = f" (dataset.path: {task.dataset.path})" if task.dataset.path else ""
            raise DataError(
                f"task {task.task}: sample {sample.id!r}: image not found: {image}{data}; lm-eval's multimodal "
                f"models are handed each sample's images (`regbench data check {task.task}` lists them all)"
            )
    images = sum(count_images(image, {}) for image in sample.image)
    return {
        "id": sample.id,
        "system": system,
        "prompt": prompt,
        "prompt_images": placeholder * images + prompt,
        "answer": sample.answer or ", ".join(sample.labels),
        "images": list(sample.image),
        "sample": json.dumps(canonical_record(sample), ensure_ascii=False),
    }


def _function_names(keys: dict[str, bool]) -> dict[str, str]:
    """A Python name for each key's aggregation function in utils.py (``aggregate_<key>``)."""
    names: dict[str, str] = {}
    for key in keys:
        base = "aggregate_" + re.sub(r"\W", "_", key)
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base}_{n}"
        names[key] = name
    return names


def _utils(task: str, functions: dict[str, str]) -> str:
    aggregations = "\n\n".join(
        f"def {function}(items: list) -> float:\n    return exported(HERE).aggregate({key!r}, items)\n"
        for key, function in functions.items()
    )
    return f'''"""lm-eval hooks of the regbench task {task!r}, written by regbench {__version__}.

`regbench export lm-eval` wrote this file. Scoring is regbench's own: its parser and metric plugins
(regbench.lmeval_hooks). Install regbench where lm-eval runs: pip install 'regbench[lm-eval]'.
Export the task again rather than edit this file.
"""

from pathlib import Path

try:
    from regbench.lmeval_hooks import exported
except ImportError as exc:
    raise ImportError(
        f"this task is scored by regbench, which is not importable here ({{exc}}): pip install 'regbench[lm-eval]'"
    ) from exc

HERE = Path(__file__).resolve().parent  # plain functions below: lm-eval deep-copies what a task config holds


def load_docs(**metadata):
    return exported(HERE).load_docs(**metadata)


def doc_to_image(doc: dict) -> list:
    return exported(HERE).doc_to_image(doc)


def score_all(responses: list, docs: list) -> list:
    return exported(HERE).score_all(responses, docs)


def process_results(doc: dict, results: list) -> dict:
    return exported(HERE).process_results(doc, results)


{aggregations}'''


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
