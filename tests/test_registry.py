"""Name lookup: did-you-mean, bundled and user spec directories, lazy plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.errors import UnknownNameError
from regbench.metrics import METRICS
from regbench.registry import Registry, did_you_mean, find_spec, spec_index


def test_did_you_mean_suggests_close_names() -> None:
    message = did_you_mean("metric", "bleu5", ["bleu4", "rouge_l", "cider"])
    assert "Unknown metric 'bleu5'." in message and "Did you mean: bleu4?" in message
    assert "Available: bleu4, cider, rouge_l" in message


def test_registry_get_unknown_raises_with_suggestions() -> None:
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1)
    assert reg.get("alpha") == 1
    with pytest.raises(UnknownNameError, match="Did you mean: alpha"):
        reg.get("alpah")


def test_registry_lazy_reference_is_imported_once() -> None:
    reg: Registry[object] = Registry("thing")
    reg.add("path", "pathlib:Path")
    assert reg.get("path") is Path


def test_registry_rejects_two_objects_under_one_name() -> None:
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 2)


def test_bundled_demo_specs_are_found() -> None:
    assert "grounded_rg" in spec_index("task")
    assert "demo" in spec_index("group")
    assert {"medrega", "medrega-demo"} <= set(spec_index("model"))


def test_unknown_task_name_suggests(spec_root: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: grounded_rg"):
        find_spec("task", "grounded_gr")


def test_user_spec_dir_overrides_bundled(spec_root: Path) -> None:
    (spec_root / "tasks" / "mine.yaml").write_text(
        "task: grounded_rg\nfamily: vqa\ndataset: {path: x.jsonl}\nmetrics: [vqa]\n"
    )
    assert find_spec("task", "grounded_rg") == spec_root / "tasks" / "mine.yaml"


def test_a_task_with_a_variable_in_a_flow_mapping_is_found_by_name(spec_root: Path) -> None:
    (spec_root / "tasks" / "strict.yaml").write_text(
        "task: strict_det\nfamily: detection\ndataset: {path: x.jsonl}\n"
        "metrics:\n  - {name: region_aligned, iou_threshold: ${THR:-0.75}}\n"
    )
    assert find_spec("task", "strict_det") == spec_root / "tasks" / "strict.yaml"


def test_metric_entry_point_group_is_declared() -> None:
    assert METRICS._entry_point_group == "regbench.metrics"


def test_entry_point_plugins_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package that declares `regbench.metrics` entry points adds plugins by installing."""
    package = tmp_path / "thirdparty_metrics"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from regbench.metrics import Metric\n"
        "class Echo(Metric):\n"
        "    '''Third-party plugin.'''\n"
        "    name = 'echo'\n"
        "    keys = {'echo': True}\n"
        "    def stats(self, parsed, sample):\n"
        "        return {'echo': 1.0}\n"
    )
    dist = tmp_path / "thirdparty_metrics-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-metrics\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[regbench.metrics]\necho = thirdparty_metrics:Echo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh: Registry[type] = Registry("metric", entry_point_group="regbench.metrics")
    assert "echo" in fresh.names()
    assert fresh.get("echo").__doc__ == "Third-party plugin."
