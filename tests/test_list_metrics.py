"""`regbench list metrics` shows each plugin's options with their defaults; `list metrics NAME` one in full."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from regbench.cli import app
from regbench.metrics.base import METRICS, Metric, Stats, register_metric
from regbench.types import Parsed, Sample

cli = CliRunner()
WIDE = {"COLUMNS": "400"}  # one table row per line, no wrapping inside cells


def lines_of(*args: str) -> tuple[int, list[str]]:
    result = cli.invoke(app, ["list", "metrics", *args], env=WIDE)
    return result.exit_code, [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]


def row(lines: list[str], first: str) -> str:
    (found,) = [line for line in lines if line.split(" ")[0] == first]
    return found


def test_the_overview_lists_every_option_of_every_plugin_with_its_default() -> None:
    code, lines = lines_of()
    assert code == 0
    text = "\n".join(lines)
    # Defaults as written in a task YAML, read from the plugins' own Options models.
    for expected in (
        "mode=standard",
        "iou_threshold=null",
        "synonyms={}",
        "closed_threshold=0.8",
        "open_threshold=0.75",
        "agg=corpus",
        "meteor=true",
        "uncertain_as=negative",
        "match=substring",
        "bertscore_model=distilroberta-base",
    ):
        assert expected in text, expected
    for name in METRICS.names():
        for option in METRICS.get(name).Options.model_fields:
            assert f"{option}=" in text, (name, option)
    assert "box_regression" in text and "list metrics NAME" in text


def test_one_plugin_in_full_types_bounds_defaults_and_meanings() -> None:
    code, lines = lines_of("region_aligned")
    assert code == 0
    assert row(lines, "mode") == (
        "mode standard | medrega | m3d standard `medrega`: MedRegA's released evaluator; `m3d`: M3D's 3D rules "
        "(docs/region-metrics.md has each)."
    )
    assert row(lines, "iou_threshold").startswith("iou_threshold float | null (x > 0, x <= 1) null Hit threshold;")
    assert row(lines, "subtask").startswith("subtask single_object_single_region | single_object_multi_region |")
    assert row(lines, "synonyms").startswith("synonyms dict[str, str] {} Predicted name -> reference name")
    assert row(lines, "region_f1") == "region_f1 higher is better fraction (x100 in tables) 0 to 1"

    code, lines = lines_of("radcliq")
    assert code == 0
    assert row(lines, "radcliq_v1") == "radcliq_v1 lower is better raw -inf to inf"


def test_a_plugin_of_another_package_shows_its_own_options() -> None:
    class ToyOptions(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
        needed: int
        """Must be given."""
        weight: float = Field(0.25, ge=0, lt=2)
        """How much it counts."""
        kind: Literal["a", "b"] = "b"
        names: list[str] = Field(default_factory=lambda: ["x"])

    with METRICS.restored():

        @register_metric("toy_metric")
        class Toy(Metric):
            """A toy plugin."""

            keys = {"toy": False}
            Options = ToyOptions

            def stats(self, parsed: Parsed, sample: Sample) -> Stats:
                return {"toy": 0.0}

        code, lines = lines_of("toy_metric")
        assert code == 0
        assert row(lines, "needed") == "needed int required Must be given."
        assert row(lines, "weight") == "weight float (x >= 0, x < 2) 0.25 How much it counts."
        assert row(lines, "kind") == "kind a | b b"
        assert row(lines, "names") == 'names list[str] ["x"]'
        assert row(lines, "toy") == "toy lower is better fraction (x100 in tables) 0 to 1"
        code, lines = lines_of()
        assert row(lines, "toy_metric") == "toy_metric toy ↓ needed=required A toy plugin."
        assert {"weight=0.25", "kind=b", 'names=["x"]'} <= set(lines)


def test_a_plugin_without_options_says_so() -> None:
    code, lines = lines_of("box_regression")
    assert code == 0
    assert "box_regression takes no options." in lines


def test_a_suite_shows_its_members_with_their_options() -> None:
    code, lines = lines_of("medrega_detection")
    assert code == 0
    text = "\n".join(lines)
    assert text.startswith("suite medrega_detection (")
    assert "- region_aligned {'mode': 'medrega'}" in text
    assert "region_aligned: options" in text and row(lines, "iou_threshold")


def test_a_key_or_an_unknown_name_is_an_input_error() -> None:
    result = cli.invoke(app, ["list", "metrics", "bleu4"], env=WIDE)
    assert result.exit_code == 2
    assert "'bleu4' is a metric key, not a plugin: it is reported by nlg" in result.output
    result = cli.invoke(app, ["list", "metrics", "region_alinged"], env=WIDE)
    assert result.exit_code == 2
    assert "Did you mean: region_aligned," in result.output
    assert "Traceback" not in result.output
