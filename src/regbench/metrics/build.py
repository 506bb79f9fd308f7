"""A task's metric plugins, built from its ``metrics:`` list.

Each entry names a plugin (with options) or a metric suite (a ``suite:`` YAML that lists
plugins); suites are expanded in place, every plugin's options are validated against its
``Options`` model, and two plugins may not report the same key. Errors name the task file
and the entry (``metrics[1](clinical_efficacy).metrics[0].mode``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from regbench.errors import SpecError, UnknownNameError
from regbench.metrics.base import METRICS, Metric, MetricContext
from regbench.registry import find_spec, spec_index
from regbench.spec import MetricRef, SuiteSpec, TaskSpec, load_spec, spec_error_from
from regbench.weights import build_all


def build_plugins(task: TaskSpec, *, started: Callable[[Metric], None] | None = None) -> list[Metric]:
    """Instantiate the task's metric plugins (suites expanded), options validated, keys unique;
    ``started`` is called with each plugin as soon as it is built (the runner starts its JVM then,
    before the next plugin's imports)."""
    file = str(task.source or task.task)
    context = MetricContext(
        task=task.task,
        family=task.family,
        language=task.language,
        modality=task.modality,
        labels=task.labels,
        samples_per_question=task.samples_per_question,
        source=str(task.source) if task.source is not None else None,
    )
    builders: list[Callable[[], Metric]] = []
    names: list[tuple[str, str]] = []
    for index, ref in enumerate(task.metrics):
        for field_name, member in _expand(ref, f"metrics[{index}]", file):
            try:
                plugin_type = METRICS.get(member.name)
            except UnknownNameError as exc:
                raise SpecError(file, field_name, str(exc)) from None
            try:
                options = plugin_type.Options.model_validate(member.options)
            except ValidationError as exc:
                first = exc.errors()[0]
                if first["type"] == "extra_forbidden":
                    takes = ", ".join(plugin_type.Options.model_fields) or "no options"
                    where = ".".join([field_name, *(str(p) for p in first["loc"])])
                    message = f"unknown option of the {member.name} metric (it takes {takes})"
                    raise SpecError(file, where, message) from None
                raise spec_error_from(exc, file=file, prefix=field_name) from None
            builders.append(functools.partial(_build, plugin_type, options, context, started))
            names.append((field_name, member.name))
    plugins = build_all(builders)  # every missing weight named at once
    owner: dict[str, str] = {}
    for plugin, (field_name, name) in zip(plugins, names, strict=True):
        for key in plugin.output_keys():
            if key in owner:
                raise SpecError(file, field_name, f"metric key {key!r} is produced by both {owner[key]} and {name}")
            owner[key] = name
    per_sample = {key for plugin in plugins if not plugin.joint for key in plugin.output_keys()}
    for plugin, (field_name, name) in zip(plugins, names, strict=True):
        for key in plugin.requires():
            if key not in per_sample:
                raise SpecError(
                    file,
                    field_name,
                    f"the {name} metric reads the per-sample key {key!r}, which no other metric of this task "
                    "produces (e.g. add `vqa` for token_f1)",
                )
    return plugins


def _build(
    plugin_type: type[Metric], options: Any, context: MetricContext, started: Callable[[Metric], None] | None
) -> Metric:
    plugin = plugin_type(options, context)
    if started is not None:
        started(plugin)
    return plugin


def _expand(ref: MetricRef, field_name: str, file: str) -> list[tuple[str, MetricRef]]:
    """A suite's members with their field names, or the entry itself when it names a plugin."""
    if ref.name in METRICS or ref.name not in spec_index("suite"):
        return [(field_name, ref)]  # an unknown name fails in METRICS.get with did-you-mean
    if ref.options:
        raise SpecError(file, field_name, f"{ref.name} is a metric suite; options go on its members")
    suite: SuiteSpec = load_spec(find_spec("suite", ref.name), SuiteSpec)
    return [(f"{field_name}({ref.name}).metrics[{i}]", member) for i, member in enumerate(suite.metrics)]
