"""The import structure docs/architecture.md draws: layers, and no cycles.

Every ``import`` of a regbench module, anywhere in a file (inside functions and
``TYPE_CHECKING`` blocks too: a lazy import is still a dependency), is read with ``ast``.
A module may import from its own layer or a lower one, never from a higher one; and the
module graph has no cycle, whatever the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "regbench"

# Lowest first; a module belongs to the first entry that is its name or a package above it.
LAYERS: list[tuple[str, ...]] = [
    ("regbench", "regbench.errors", "regbench.types", "regbench.collector", "regbench.signature", "regbench.accel"),
    ("regbench.spec",),
    ("regbench.registry", "regbench.weights", "regbench.redact"),
    ("regbench.data", "regbench.parsing", "regbench.resolve"),
    ("regbench.prompts", "regbench.models", "regbench.cache"),
    ("regbench.metrics",),
    ("regbench.aggregate", "regbench.results"),
    ("regbench.scoring", "regbench.stats", "regbench.merge", "regbench.gate"),
    ("regbench.runner", "regbench.judging", "regbench.executor"),
    ("regbench.report", "regbench.export_lmeval", "regbench.lmeval_hooks"),
    ("regbench.console", "regbench.cli_report", "regbench.cli_gate", "regbench.cli", "regbench.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The regbench modules ``path`` imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "regbench")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "regbench":
                continue
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            # importing only submodules of a package does not run more of it than its __init__
            found.update(submodules or {node.module})
            if len(submodules) < len(node.names):
                found.add(node.module)
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def layer_of(name: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer): the most specific entry wins
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            matches = name == prefix or name.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{name} is in no layer of tests/test_layering.py (and docs/architecture.md)")
    return best[1]


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_import_from_a_higher_layer(name: str) -> None:
    mine = layer_of(name)
    upward = sorted(dep for dep in graph()[name] if layer_of(dep) > mine and not dep.startswith(name + "."))
    assert not upward, f"{name} (layer {mine}) imports from higher layers: {upward}"


def test_no_import_cycle() -> None:
    edges = graph()
    # a package's __init__ importing its own submodules is how packages expose names, not a cycle
    edges = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The walker finds lazy imports inside functions (a checker that sees nothing passes everything)."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from regbench.runner import evaluate\n    import regbench.cli\n")
    assert imports_of(source, {"regbench.runner", "regbench.cli"}) == {"regbench.runner", "regbench.cli"}
    assert layer_of("regbench.runner") > layer_of("regbench.metrics.region")
    assert layer_of("regbench.report.tables") < layer_of("regbench.cli")


def test_the_public_api_is_importable_and_light() -> None:
    """Every name ``regbench.__all__`` promises resolves; importing the package alone loads no numpy."""
    import subprocess
    import sys

    import regbench

    for name in regbench.__all__:
        assert getattr(regbench, name) is not None, name
    code = "import sys, regbench; assert 'numpy' not in sys.modules and 'regbench.runner' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})
