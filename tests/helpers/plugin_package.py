"""A third-party package put on ``sys.path`` as an installer leaves it, and registries that forget it again."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from regbench.data import LOADERS
from regbench.metrics import METRICS
from regbench.models import ADAPTERS
from regbench.parsing import BOX_FORMATS

REGISTRIES = (METRICS, BOX_FORMATS, LOADERS, ADAPTERS)


def write_package(
    root: Path, *, name: str, modules: Mapping[str, str], entry_points: Mapping[str, Mapping[str, str]]
) -> Path:
    """``root/<module>.py`` for each module, and ``root/<name>-0.1.dist-info`` with METADATA and
    entry_points.txt (one ``[group]`` section per entry-point group). Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    dist = root / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
        for group, entries in entry_points.items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    return root


@contextlib.contextmanager
def installed(root: Path, *modules: str) -> Iterator[None]:
    """``root`` on ``sys.path`` and every registry reading entry points again; on exit the path,
    the modules and every registry are as before."""
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        with contextlib.ExitStack() as stack:
            for registry in REGISTRIES:
                stack.enter_context(registry.restored())
                registry.reload_entry_points()
            yield
    finally:
        sys.path.remove(str(root))
        for module in modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
