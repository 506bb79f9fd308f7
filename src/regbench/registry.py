"""Name → object lookup for metric plugins, adapters, loaders, box formats and YAML specs.

Python objects register with a decorator (``@register_metric("region_aligned")``) or
through the ``regbench.metrics`` entry-point group. YAML specs are found by the name they
declare (``task: grounded_rg``) in the spec directories: ``$REGBENCH_PATH`` (directories
separated by ``os.pathsep``, each holding ``tasks/``, ``models/``, ``metrics/``), then the
specs bundled with regbench. Unknown names fail at once with suggestions and the choices.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from regbench.errors import SpecError, UnknownNameError
from regbench.spec import parse_yaml

T = TypeVar("T")


def did_you_mean(kind: str, name: str, choices: list[str]) -> str:
    """``Unknown metric 'bleu5'. Did you mean: bleu4? Available: ...``."""
    message = f"Unknown {kind} {name!r}."
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        message += f" Did you mean: {', '.join(close)}?"
    shown = ", ".join(sorted(choices)[:40]) + (" ..." if len(choices) > 40 else "")
    return f"{message} Available: {shown or '(none)'}"


class Registry(Generic[T]):
    """A named collection of objects, with lazy ``"module:attr"`` entries and entry points."""

    def __init__(self, kind: str, *, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T | str] = {}
        self._entry_point_group = entry_point_group
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")``."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T | str) -> None:
        """Add an object, or a lazy ``"package.module:attr"`` reference to one."""
        existing = self._items.get(name)
        if existing is not None and existing is not obj and not isinstance(existing, str):
            raise ValueError(f"{self.kind} {name!r} is registered twice: {existing!r} and {obj!r}")
        self._items[name] = obj

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._items:
            raise UnknownNameError(did_you_mean(self.kind, name, list(self._items)))
        item = self._items[name]
        if isinstance(item, str):
            module, _, attr = item.partition(":")
            item = getattr(importlib.import_module(module), attr)
            self._items[name] = item
        return item  # type: ignore[return-value]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self._entry_point_group or ""):
            self._items.setdefault(ep.name, ep.value)


# ---------------------------------------------------------------- YAML specs

_KIND_DIRS = {"task": "tasks", "group": "tasks", "model": "models", "suite": "metrics"}


def spec_roots() -> list[Path]:
    """Directories searched for tasks/, models/ and metrics/, in priority order."""
    roots = [Path(p) for p in os.environ.get("REGBENCH_PATH", "").split(os.pathsep) if p]
    bundled = Path(__file__).parent / "_bundled"
    if bundled.is_dir():  # installed from a wheel
        roots.append(bundled)
    else:  # an editable install or a source checkout: the repository root
        roots.append(Path(__file__).resolve().parents[2])
    return roots


def _yaml_files(roots: list[Path], kind: str) -> Iterator[Path]:
    for root in roots:
        directory = root / _KIND_DIRS[kind]
        if directory.is_dir():
            yield from sorted(directory.rglob("*.yaml"))


@cache
def _index(roots: tuple[Path, ...], kind: str) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in _yaml_files(list(roots), kind):
        try:
            data = parse_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue  # reported with file and line when the spec is actually loaded by path
        if not isinstance(data, dict):
            continue
        name = data.get(kind)
        if not isinstance(name, str) or name in index:
            continue  # earlier roots win, so a user's REGBENCH_PATH overrides bundled specs
        index[name] = path
    return index


def spec_index(kind: str) -> dict[str, Path]:
    """Every spec of one kind (``task``, ``group``, ``model``, ``suite``) by declared name."""
    return dict(_index(tuple(spec_roots()), kind))


def find_spec(kind: str, name_or_path: str) -> Path:
    """The YAML file for a name, or the path itself when it names an existing file."""
    as_path = Path(name_or_path)
    if as_path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if as_path.is_file():
            return as_path
        raise SpecError(name_or_path, "", f"{kind} file not found")
    index = spec_index(kind)
    if name_or_path in index:
        return index[name_or_path]
    raise UnknownNameError(did_you_mean(kind, name_or_path, list(index)))


def clear_caches() -> None:
    """Forget indexed spec directories (tests and long-lived processes that add files)."""
    _index.cache_clear()


def describe(obj: Any) -> str:
    """First line of an object's docstring, for ``regbench list``."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
