"""The docs stand on their own: no file outside tests/ points at notes a user's clone does not have,
every relative link of README.md and docs/ resolves, and docs/formats.md and docs/metrics.md list
every field, key and option the code has (the option tables are exactly what `list metrics` prints)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from regbench.metrics import METRICS
from regbench.registry import describe_options
from regbench.results import Results, SampleRecord
from regbench.spec import DatasetSpec, GenerationSpec, ModelSpec, TaskSpec
from regbench.types import Region, Sample
from tests.conftest import REPO

# The project's design and research notes, and the papers' text files, live outside the repository.
OUTSIDE = re.compile(r"\.\./shared|\bDESIGN\.md|\bMETRICS\.md|\bDATASETS\.md|\bresearch/|\bseeds/00\d")
SKIPPED_DIRS = {".git", ".venv", "tests", "runs", "build", "dist", "__pycache__", "node_modules"}
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".sh", ".json", ".jsonl", ".html", ".cfg", ""}


def repository_files() -> list[Path]:
    """Tracked files (git), or every file of the checkout when it is not a git repository."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True, timeout=60
        ).stdout.decode()
        files = [REPO / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in REPO.rglob("*") if p.is_file()]
    return [
        path
        for path in files
        if path.is_file()
        and not SKIPPED_DIRS & set(path.relative_to(REPO).parts[:-1])
        and path.relative_to(REPO).parts[0] != "tests"
        and path.suffix in TEXT_SUFFIXES
    ]


def test_no_file_outside_tests_points_at_notes_that_are_not_in_the_repository() -> None:
    files = repository_files()
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".py" for p in files)
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (
        "see ../shared/DESIGN.md",
        "(METRICS.md)",
        "DATASETS.md rules",
        "research/seeds-002-003.md",
        "seeds/004",
    ):
        assert OUTSIDE.search(line), line
    for line in ("docs/metrics.md", "docs/datasets.md", "tasks/seeds/medrega.yaml", "researchers"):
        assert not OUTSIDE.search(line), line


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Backticked mentions of a page or file: `docs/ci.md`, `tasks/seeds/medrega.yaml`, `region-metrics.md`.
MENTION = re.compile(r"`([\w./-]+\.(?:md|yaml|sh))`")
OUR_DIRS = {"docs", "tasks", "models", "metrics", "leaderboards", "scripts", "bench", "src"}  # not runs/, ci/


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.name)
def test_every_relative_link_and_page_mention_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:|#", target):
            continue  # a URL or an anchor on the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(f"link ({target})")
    for target in MENTION.findall(text):
        ours = target.split("/")[0] in OUR_DIRS if "/" in target else target.endswith(".md")
        if ours and not any((base / target).exists() for base in (page.parent, REPO, REPO / "docs")):
            broken.append(f"`{target}`")
    assert broken == []


def bundled_plugins() -> list[str]:
    """regbench's own plugins (other tests register plugins of their own in the same process)."""
    return [name for name in METRICS.names() if METRICS.get(name).__module__.startswith("regbench.")]


def options_block(name: str) -> str:
    """A plugin's options as docs/metrics.md shows them: the rows `regbench list metrics NAME` prints."""
    rows = describe_options(METRICS.get(name).Options)
    if not rows:
        return "No options."
    lines = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for option in rows:
        kind = option.type.replace("|", "\\|")
        lines.append(f"| `{option.name}` | `{kind}` | `{option.default}` | {option.description} |")
    return "\n".join(lines)


def test_the_metric_catalogue_has_every_key_and_every_option_as_the_code_defines_them() -> None:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    catalogue = text[text.index("## Keys") : text.index("## Suites")]
    for name in bundled_plugins():
        plugin = METRICS.get(name)
        for key in plugin.keys:
            per_condition = key.startswith("chexbert_f1_") and f"`{key.removeprefix('chexbert_f1_')}`" in catalogue
            assert f"`{key}`" in catalogue or per_condition, (name, key)
            if not plugin.keys[key]:
                assert re.search(rf"`{key}`[^\n]*\| lower", catalogue), f"{key} is lower-is-better"
        assert f"### `{name}`\n\n{options_block(name)}\n" in text + "\n", f"docs/metrics.md options of {name}"
    for suite in (REPO / "metrics").glob("*.yaml"):
        assert f"| `{suite.stem}` |" in text, suite


def table_fields(text: str, heading: str) -> set[str]:
    """The backticked names in the first column of the table after ``heading``."""
    section = text[text.index(heading) :]
    section = section[: section.index("\n\n", section.index("|---"))]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`(\w+)`", line.split(" | ")[0]))
    return names


def test_the_formats_page_lists_every_field_of_every_file() -> None:
    text = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    assert set(Sample.model_fields) <= table_fields(text, "## Canonical dataset JSONL")
    assert set(Region.model_fields) <= set(re.findall(r"`(\w+)`", text[: text.index("## Predictions JSONL")]))
    assert set(TaskSpec.model_fields) <= table_fields(text, "## Task YAML")
    dataset = text[text.index("`dataset` fields:") : text.index("Prompt templates")]
    assert all(f"`{name}`" in dataset for name in DatasetSpec.model_fields)
    assert all(f"`{name}`" in text for name in GenerationSpec.model_fields)
    assert set(ModelSpec.model_fields) <= table_fields(text, "## Model YAML")
    assert set(Results.model_fields) <= table_fields(text, "### results.json")
    record = {f.name for f in dataclasses.fields(SampleRecord)}
    assert record <= table_fields(text, "### samples.jsonl")
