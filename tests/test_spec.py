"""Spec loading: validation errors name file and field; ${VAR:-default}; include; no code from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.errors import SpecError
from regbench.spec import ModelSpec, TaskSpec, load_spec

TASK = """
task: t1
family: vqa
dataset: {path: data.jsonl}
metrics: [vqa]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_task_loads_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path / "t.yaml", TASK), TaskSpec)
    assert spec.task == "t1" and spec.language == "en" and spec.turns == ["{{ question }}"]
    assert spec.metrics[0].name == "vqa" and spec.metrics[0].options == {}
    assert spec.source == (tmp_path / "t.yaml").resolve()
    assert not spec.boxes_expected


def test_metric_options_are_kept(tmp_path: Path) -> None:
    text = TASK.replace("[vqa]", "[{name: region_aligned, mode: medrega, iou_threshold: 0.5}]")
    spec = load_spec(write(tmp_path / "t.yaml", text), TaskSpec)
    assert spec.metrics[0].options == {"mode": "medrega", "iou_threshold": 0.5}


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (TASK.replace("family: vqa", "family: vqaa"), "family", "expected one of"),
        (TASK.replace("task: t1\n", ""), "task", "required field is missing"),
        (TASK + "promt: hi\n", "promt", "unknown field"),
        (TASK.replace("metrics: [vqa]", "metrics: []"), "metrics", "at least 1"),
        (TASK.replace("{path: data.jsonl}", "{path: data.jsonl, lodaer: x}"), "dataset.lodaer", "unknown field"),
        (TASK + "generation: {max_tokens: -3}\n", "generation.max_tokens", "greater than 0"),
    ],
)
def test_validation_error_names_file_and_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SpecError) as info:
        load_spec(path, TaskSpec)
    message = str(info.value)
    assert str(path) in message
    assert info.value.field == field
    assert fragment in message


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "task: t1\nfamily: [vqa\n")
    with pytest.raises(SpecError, match=r"line \d+, column \d+: not valid YAML"):
        load_spec(path)


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    path = write(tmp_path / "evil.yaml", TASK + "description: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)
    assert not (tmp_path / "pwned").exists()


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "model: m\nadapter: openai\nbase_url: ${MY_URL:-http://127.0.0.1:1/v1}\nmodel_name: ${MY_NAME}\n"
    path = write(tmp_path / "m.yaml", text)
    monkeypatch.setenv("MY_NAME", "served-name")
    monkeypatch.delenv("MY_URL", raising=False)
    spec = load_spec(path, ModelSpec)
    assert spec.base_url == "http://127.0.0.1:1/v1" and spec.model_name == "served-name"
    monkeypatch.setenv("MY_URL", "http://example.invalid/v1")
    assert load_spec(path, ModelSpec).base_url == "http://example.invalid/v1"
    monkeypatch.delenv("MY_NAME")
    with pytest.raises(SpecError, match="MY_NAME is not set") as info:
        load_spec(path, ModelSpec)
    assert info.value.field == "model_name"


def test_env_reference_inside_a_flow_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "task: t\nfamily: vqa\ndataset: {path: '${D:-data}/f.jsonl', split: ${S:-test}}\nmetrics: [{name: vqa}]\n"
    path = write(tmp_path / "t.yaml", text.replace("'", ""))  # unquoted: the braces of ${...} are not YAML's
    monkeypatch.delenv("D", raising=False)
    monkeypatch.setenv("S", "val")
    spec = load_spec(path, TaskSpec)
    assert spec.dataset.path == "data/f.jsonl" and spec.dataset.split == "val"
    assert load_spec(write(tmp_path / "q.yaml", text), TaskSpec).dataset.path == "data/f.jsonl"


def test_a_default_with_a_leading_tilde_is_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "task: t\nfamily: vqa\nmetrics: [vqa]\n"
        "dataset: {loader: slake, root: ${REGBENCH_DATA:-~/regbench-data}/Slake1.0, path: '${P:-a/~b}', split: x~y}\n"
    )
    path = write(tmp_path / "t.yaml", text)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REGBENCH_DATA", raising=False)
    monkeypatch.delenv("P", raising=False)
    spec = load_spec(path, TaskSpec)
    assert spec.dataset.root == f"{tmp_path}/home/regbench-data/Slake1.0"
    assert spec.dataset.path == "a/~b" and spec.dataset.split == "x~y"  # only a default's leading ~
    monkeypatch.setenv("REGBENCH_DATA", "/data")
    assert load_spec(path, TaskSpec).dataset.root == "/data/Slake1.0"
    monkeypatch.setenv("REGBENCH_DATA", "~other")  # a value is taken as it is (readers expand ~ in roots)
    assert load_spec(path, TaskSpec).dataset.root == "~other/Slake1.0"


def test_env_value_cannot_inject_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INJECT", "x\nadapter: replay")
    spec = load_spec(write(tmp_path / "m.yaml", "model: m\nadapter: openai\nmodel_name: ${INJECT}\n"), ModelSpec)
    assert spec.adapter == "openai" and spec.model_name == "x\nadapter: replay"


def test_include_merges_base_under_task(tmp_path: Path) -> None:
    write(
        tmp_path / "base.yaml",
        "family: vqa\nlanguage: zh\ndataset: {path: base.jsonl}\ngeneration: {max_tokens: 9}\nmetrics: [vqa]\n",
    )
    path = write(
        tmp_path / "t.yaml",
        "include: base.yaml\ntask: child\ndataset: {path: child.jsonl}\ngeneration: {temperature: 0.5}\n",
    )
    spec = load_spec(path, TaskSpec)
    assert spec.language == "zh" and spec.dataset.path == "child.jsonl"
    assert spec.generation is not None
    assert (spec.generation.max_tokens, spec.generation.temperature) == (9, 0.5)


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "include: b.yaml\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(SpecError, match="include cycle"):
        load_spec(tmp_path / "a.yaml")


def test_wrong_kind_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "t.yaml", TASK)
    with pytest.raises(SpecError, match="expected a model YAML"):
        load_spec(path, ModelSpec)


def test_every_bundled_spec_validates() -> None:
    from regbench.registry import spec_index

    for kind in ("task", "group", "model", "suite"):
        for path in spec_index(kind).values():
            load_spec(path)


def test_every_bundled_task_builds_its_metric_plugins() -> None:
    """Suites expand, options validate and keys are unique for every bundled task; the only plugins left
    unbuilt are those whose weights are not on this machine (build_plugins validates every option first)."""
    from regbench.errors import WeightsMissingError
    from regbench.metrics import build_plugins
    from regbench.registry import spec_index

    tasks = [load_spec(path, TaskSpec) for path in spec_index("task").values()]
    assert len(tasks) > 50
    for task in tasks:
        try:
            build_plugins(task)
            continue
        except WeightsMissingError:
            pass
        owner: dict[str, str] = {}
        for ref in task.metrics:
            try:
                plugins = build_plugins(task.model_copy(update={"metrics": [ref]}))
            except WeightsMissingError:
                continue
            for key in (k for plugin in plugins for k in plugin.output_keys()):
                assert key not in owner, f"{task.task}: {key} from both {owner[key]} and {ref.name}"
                owner[key] = ref.name


def test_the_nlg_zh_suite_expands_to_jieba_nlg_without_meteor() -> None:
    from regbench.metrics import build_plugins

    task = TaskSpec.model_validate(
        {"task": "t", "family": "report", "language": "zh", "dataset": {"path": "x.jsonl"}, "metrics": ["nlg_zh"]}
    )
    (plugin,) = build_plugins(task)
    assert plugin.name == "nlg" and plugin.options.tokenizer == "jieba"
    assert "meteor" not in plugin.output_keys() and "cider" in plugin.output_keys()
