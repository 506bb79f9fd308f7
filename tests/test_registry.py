"""Name lookup: did-you-mean, bundled and user spec directories, lazy plugins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib

from regbench.errors import RegbenchError, SpecError, UnknownNameError
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
    assert METRICS.entry_point_group == "regbench.metrics"


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


class Base:
    name = "base"


class Child(Base):
    pass


def test_objects_of_the_wrong_kind_are_refused_when_added_or_resolved() -> None:
    reg: Registry[type] = Registry("thing", base=Base)
    reg.add("child", Child)
    with pytest.raises(RegbenchError, match=r"thing 'path' from code is <class 'pathlib.Path'>, not a subclass of"):
        reg.add("path", Path)
    reg.add("lazy", "pathlib:PurePath")
    with pytest.raises(RegbenchError, match=r"thing 'lazy' from 'pathlib:PurePath' is .*not a subclass of tests\."):
        reg.get("lazy")
    reg.add("missing", "pathlib:Nope")
    with pytest.raises(RegbenchError, match=r"'pathlib:Nope': pathlib has no 'Nope'"):
        reg.get("missing")


def test_an_instance_registry_makes_an_instance_of_a_class_and_names_it() -> None:
    reg: Registry[Base] = Registry("thing", base=Base, instances=True, named=True)
    reg.add("base", Base)
    assert isinstance(reg.get("base"), Base)
    reg.add("child", "tests.test_registry:Child")
    with pytest.raises(RegbenchError, match=r"thing 'child' from 'tests\.test_registry:Child' calls itself 'base'"):
        reg.get("child")
    named: Registry[type] = Registry("thing", base=Base, named=True)
    named.add("child", Child)  # a class's own name only: Child inherits "base", so it is given "child"
    assert Child.name == "child" and Base.name == "base"


def test_restored_undoes_changes_and_caches_see_them() -> None:
    from regbench.parsing import BOX_FORMATS, get_box_format

    medrega = get_box_format("medrega")
    with BOX_FORMATS.restored():
        BOX_FORMATS.add("unit", type(medrega)("unit", 1))
        assert get_box_format("unit").scale == 1  # type: ignore[attr-defined]
    with pytest.raises(UnknownNameError, match="Unknown box format 'unit'"):
        get_box_format("unit")  # not from get_box_format's cache either
    assert get_box_format("medrega") is medrega


def third_party(tmp_path: Path, entry_points: str) -> Path:
    package = tmp_path / "thirdparty_kinds.py"
    package.write_text(
        "from regbench.metrics import Metric\n"
        "class Echo(Metric):\n"
        "    keys = {'echo': True}\n"
        "    def stats(self, parsed, sample):\n"
        "        return {'echo': 1.0}\n"
        "class NotAMetric:\n"
        "    pass\n"
    )
    dist = tmp_path / "thirdparty_kinds-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-kinds\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return tmp_path


def test_entry_points_are_checked_named_and_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    third_party(
        tmp_path,
        "[regbench.metrics]\necho = thirdparty_kinds:Echo\nwrong = thirdparty_kinds:NotAMetric\n"
        "nlg = thirdparty_kinds:Echo\n",
    )
    with METRICS.restored(), monkeypatch.context() as patch:
        patch.syspath_prepend(str(tmp_path))  # the package is installed inside the block only
        METRICS.reload_entry_points()
        assert METRICS.get("echo").name == "echo"  # given the name it is registered under
        with pytest.raises(RegbenchError) as wrong:
            METRICS.get("wrong")
        assert str(wrong.value) == (
            "metric 'wrong' from entry point 'wrong = thirdparty_kinds:NotAMetric' (group regbench.metrics, "
            "package thirdparty-kinds) is <class 'thirdparty_kinds.NotAMetric'>, not a subclass of "
            "regbench.metrics.base.Metric"
        )
        with pytest.raises(RegbenchError, match=r"metric 'nlg' is declared twice: 'regbench.metrics.nlg:NLG' and"):
            METRICS.get("nlg")
    sys.modules.pop("thirdparty_kinds", None)
    assert "echo" not in METRICS and "wrong" not in METRICS
    assert METRICS.get("nlg").__module__ == "regbench.metrics.nlg"


def test_every_kind_has_its_entry_point_group() -> None:
    from regbench.data import LOADERS
    from regbench.models import ADAPTERS
    from regbench.parsing import BOX_FORMATS

    groups = {r.kind: r.entry_point_group for r in (METRICS, BOX_FORMATS, LOADERS, ADAPTERS)}
    assert groups == {
        "metric": "regbench.metrics",
        "box format": "regbench.box_formats",
        "dataset loader": "regbench.loaders",
        "model adapter": "regbench.adapters",
    }
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared) == set(groups.values())


def test_box_format_options_are_validated_by_their_model() -> None:
    from regbench.parsing import get_box_format

    with pytest.raises(RegbenchError) as low:
        get_box_format("qwen25_vl(min_pixels=0)")
    assert str(low.value) == (
        "box format qwen25_vl: option min_pixels: input should be greater than 0, got 0 "
        "(it takes min_pixels, max_pixels)"
    )
    assert get_box_format("qwen25_vl(min_pixels=100)").name == "qwen25_vl(min_pixels=100,max_pixels=12845056)"


def test_dataset_loader_and_options_errors_name_the_field(tmp_path: Path) -> None:
    from regbench.data import load_samples
    from regbench.spec import TaskSpec, load_spec

    (tmp_path / "d.jsonl").write_text('{"id": "a"}\n')
    for dataset, message in [
        ("{path: d.jsonl, loader: jsnl}", "t.yaml: dataset.loader: Unknown dataset loader 'jsnl'. Did you mean: jsonl"),
        (
            "{path: d.jsonl, options: {split: test}}",
            "t.yaml: dataset.options.split: unknown option of the jsonl loader (it takes no options)",
        ),
    ]:
        (tmp_path / "t.yaml").write_text(f"task: t\nfamily: vqa\ndataset: {dataset}\nmetrics: [vqa]\n")
        with pytest.raises(SpecError) as error:
            load_samples(load_spec(tmp_path / "t.yaml", TaskSpec))
        assert message in str(error.value)
