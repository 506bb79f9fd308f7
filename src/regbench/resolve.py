"""What the names given to a command stand for: task, group and model names or YAML paths → specs.

Names are looked up in the spec index of :mod:`regbench.registry` (``REGBENCH_PATH``, then the
bundled specs); a path ending in ``.yaml`` is loaded as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from regbench.errors import RegbenchError
from regbench.registry import find_spec, spec_index
from regbench.spec import GroupSpec, ModelSpec, TaskSpec, load_spec


def resolve_tasks(names: Iterable[str]) -> list[TaskSpec]:
    """The tasks ``names`` stand for, in order: each name may hold several, comma-separated, and a
    group stands for its tasks. Raises when no task is left."""
    tasks: list[TaskSpec] = []
    for name in (n.strip() for chunk in names for n in chunk.split(",")):
        if not name:
            continue
        if not name.endswith((".yaml", ".yml")) and name in spec_index("group"):
            group: GroupSpec = load_spec(find_spec("group", name), GroupSpec)
            tasks.extend(resolve_tasks(group.tasks))
        else:
            tasks.append(load_spec(find_spec("task", name), TaskSpec))
    if not tasks:
        raise RegbenchError("no task given: use --task NAME (see `regbench list tasks`)")
    return tasks


def resolve_model(name: str) -> ModelSpec:
    """The model a name or a model YAML path stands for."""
    return load_spec(find_spec("model", name), ModelSpec)
