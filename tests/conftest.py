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


def assert_weighted_equals_finalize(plugin: Any, stats: list[Any], trials: int, seed: int) -> None:
    """``finalize_weighted`` on bootstrap draw counts equals ``finalize`` on each materialised resample."""
    import numpy as np

    from regbench.aggregate import resample_indices, weight_blocks

    indices = resample_indices(len(stats), trials=trials, seed=seed)
    weighted = {}
    for block, weights in weight_blocks(indices):
        found = plugin.finalize_weighted(stats, weights)
        assert found is not None
        for key, values in found.items():
            weighted.setdefault(key, np.full(trials, np.nan))[block] = values
    for t, row in enumerate(indices):
        expected = plugin.finalize([stats[i] for i in row])
        assert {k for k, v in weighted.items() if np.isfinite(v[t])} == set(expected)
        for key, value in expected.items():
            assert weighted[key][t] == pytest.approx(value, abs=1e-12), (t, key)
