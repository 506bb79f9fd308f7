"""Name → object lookup for metric plugins, adapters, loaders, box formats and YAML specs.

Python objects are built-ins listed as lazy ``"module:Class"`` references, objects registered
with a decorator (``@register_metric("region_aligned")``), or entry points of installed
packages, one group per kind: ``regbench.metrics``, ``regbench.box_formats``,
``regbench.loaders``, ``regbench.adapters`` (``name = "package.module:Object"``).

YAML specs are found by the name they declare (``task: grounded_rg``) in the spec
directories: ``$REGBENCH_PATH`` (directories separated by ``os.pathsep``, each holding
``tasks/``, ``models/``, ``metrics/``), then the specs bundled with regbench. Unknown names
fail at once with suggestions and the choices.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import os
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel

from regbench.errors import RegbenchError, SpecError, UnknownNameError
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
    """A named collection of one kind of object: metric plugins, box formats, loaders, adapters.

    Entries come from three places: objects added in code (``add`` or the ``register``
    decorator), lazy ``"package.module:attr"`` references (the built-ins, imported on first
    use so that ``regbench --help`` stays light), and the entry points of installed packages
    in ``entry_point_group`` (read on the first lookup). Every object is checked when it is
    added or first resolved: a subclass of ``base`` (or, with ``instances``, an instance of
    it; a class found there is instantiated without arguments), so a third-party entry of the
    wrong kind is an error naming its entry point, not a crash later. In a ``named`` registry
    objects carry the name they are registered under (``name``): one that declares none gets
    it, one that declares another is an error.

    Tests change a registry inside ``with REGISTRY.restored():``, which puts every entry back
    on exit; ``reload_entry_points()`` reads the entry points again (after a test put a
    package on ``sys.path``).
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_point_group: str | None = None,
        base: type | None = None,
        instances: bool = False,
        named: bool = False,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.base = base
        self.instances = instances
        self.named = named
        self._items: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}
        """Where a lazy or entry-point entry came from, for error messages."""
        self._from_entry_points: set[str] = set()
        self._conflicts: dict[str, list[str]] = {}
        """Names declared twice with different targets (built-in and entry point, or two entry points)."""
        self._entry_points_loaded = entry_point_group is None
        self._revision = 0

    @property
    def revision(self) -> int:
        """A number that changes whenever an entry changes (a key for caches of looked-up objects)."""
        return self._revision

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")``."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T | str) -> None:
        """Add an object, or a lazy ``"package.module:attr"`` reference to one (imported on first use)."""
        existing = self._items.get(name)
        if existing is not None and existing is not obj and not isinstance(existing, str):
            raise ValueError(f"{self.kind} {name!r} is registered twice: {existing!r} and {obj!r}")
        if isinstance(obj, str):
            self._origins[name] = repr(obj)
        else:
            obj = self._checked(name, obj, self._origins.get(name, "code"))
        self._items[name] = obj
        self._revision += 1

    def get(self, name: str) -> T:
        """The object registered as ``name``; unknown names fail with suggestions and the choices."""
        self._load_entry_points()
        if name not in self._items:
            raise UnknownNameError(did_you_mean(self.kind, name, list(self._items)))
        if name in self._conflicts:
            targets = " and ".join(self._conflicts[name])
            raise RegbenchError(f"{self.kind} {name!r} is declared twice: {targets}; uninstall one of the packages")
        item = self._items[name]
        if isinstance(item, str):
            origin = self._origins.get(name, repr(item))
            resolved = self._checked(name, _import_object(item, origin), origin)
            if isinstance(self._items[name], str):  # else importing the module registered it (a decorator)
                self._items[name] = resolved
                self._revision += 1
            item = self._items[name]
        return item  # type: ignore[return-value]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items

    @contextlib.contextmanager
    def restored(self) -> Iterator[Registry[T]]:
        """Changes made inside the block (added entries, reloaded entry points) are undone on exit."""
        saved = (
            dict(self._items),
            dict(self._origins),
            set(self._from_entry_points),
            {k: list(v) for k, v in self._conflicts.items()},
            self._entry_points_loaded,
        )
        try:
            yield self
        finally:
            items, origins, from_entry_points, conflicts, loaded = saved
            self._items, self._origins, self._from_entry_points = items, origins, from_entry_points
            self._conflicts, self._entry_points_loaded = conflicts, loaded
            self._revision += 1

    def reload_entry_points(self) -> None:
        """Forget the entries read from entry points and read them again (packages installed since)."""
        for name in self._from_entry_points:
            self._items.pop(name, None)
            self._origins.pop(name, None)
        self._from_entry_points.clear()
        self._conflicts.clear()
        self._entry_points_loaded = self.entry_point_group is None
        self._revision += 1

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group or ""):
            package = ep.dist.name if ep.dist is not None else "an unknown package"
            origin = f"entry point '{ep.name} = {ep.value}' (group {self.entry_point_group}, package {package})"
            existing = self._items.get(ep.name)
            if existing is None:
                self._items[ep.name] = ep.value
                self._origins[ep.name] = origin
                self._from_entry_points.add(ep.name)
            elif existing != ep.value:
                # a name is one object: a package may not silently shadow a built-in or another package
                first = self._origins.get(ep.name, repr(existing))
                self._conflicts.setdefault(ep.name, [first]).append(origin)
        self._revision += 1

    def _checked(self, name: str, obj: Any, origin: str) -> Any:
        """``obj`` if it is of this registry's kind (an instance made from a class, for ``instances``)."""
        if self.base is None:
            return obj
        if self.instances and isinstance(obj, type):
            obj = obj()
        ok = isinstance(obj, self.base) if self.instances else isinstance(obj, type) and issubclass(obj, self.base)
        if not ok:
            wanted = "an instance" if self.instances else "a subclass"
            base = f"{self.base.__module__}.{self.base.__qualname__}"
            raise RegbenchError(f"{self.kind} {name!r} from {origin} is {obj!r}, not {wanted} of {base}")
        if self.named:
            # a class's own name only: a subclass of a registered plugin inherits another one
            declared = obj.__dict__.get("name") if isinstance(obj, type) else getattr(obj, "name", None)
            if declared is None:
                obj.name = name
            elif declared != name:
                raise RegbenchError(f"{self.kind} {name!r} from {origin} calls itself {declared!r}")
        return obj


def _import_object(reference: str, origin: str) -> Any:
    """The object a ``"package.module:attr.attr"`` reference names (a module without ``:attr``)."""
    module_name, _, attrs = reference.partition(":")
    module = importlib.import_module(module_name.strip())  # an ImportError stays one: a missing extra
    obj: Any = module
    for attr in filter(None, attrs.split("[")[0].strip().split(".")):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise RegbenchError(f"{origin}: {module_name.strip()} has no {attrs.strip()!r}") from None
    return obj


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


@dataclass(frozen=True)
class OptionInfo:
    """One option of a plugin's ``Options`` model, as ``regbench list`` shows it."""

    name: str
    type: str
    """The accepted values: ``float (0 < x <= 1)``, ``standard | medrega``, ``int | null``."""
    default: str
    """The value used when the option is left out, written as in YAML (``required`` when there is none)."""
    description: str


def describe_options(model: type[BaseModel]) -> list[OptionInfo]:
    """Every option of an ``Options`` model: name, accepted type, default, and its docstring."""
    rows = []
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else _yaml_value(field.get_default(call_default_factory=True))
        bounds = [_bound_text(item) for item in field.metadata]
        kind = _type_text(field.annotation) + (f" ({', '.join(b for b in bounds if b)})" if any(bounds) else "")
        description = " ".join((field.description or "").split()).replace("``", "`")
        rows.append(OptionInfo(name, kind, default, description))
    return rows


def _type_text(annotation: Any) -> str:
    """A type as a user writes its values: Literal choices joined with ``|``, ``None`` as ``null``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return " | ".join(str(arg) for arg in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_text(arg) for arg in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_text(arg) for arg in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _bound_text(constraint: Any) -> str:
    """``x > 0`` for an ``annotated_types`` bound of a pydantic ``Field`` (``gt=0``); '' for anything else."""
    for attribute, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        value = getattr(constraint, attribute, None)
        if value is not None:
            return f"x {sign} {value}"
    return ""


def _yaml_value(value: Any) -> str:
    """A default as it would be written in a task YAML (flow style: ``{}``, ``null``, ``true``)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False)
