"""Shared fixtures: a scratch spec root with its own tasks/ and models/, and the CLI runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regbench import registry

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def spec_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory searched before the bundled specs (REGBENCH_PATH)."""
    root = tmp_path / "specs"
    for sub in ("tasks", "models", "metrics"):
        (root / sub).mkdir(parents=True)
    monkeypatch.setenv("REGBENCH_PATH", str(root))
    registry.clear_caches()
    yield root
    registry.clear_caches()
