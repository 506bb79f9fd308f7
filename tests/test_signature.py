"""Signatures: named fields, today's strings exactly, a parse that reads back every string, the comparable identity."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from regbench import __version__
from regbench.metrics import Metric
from regbench.models import build_adapter
from regbench.registry import find_spec
from regbench.runner import RunOptions, evaluate
from regbench.signature import Signature
from regbench.spec import GroupSpec, ModelSpec, TaskSpec, load_spec
from regbench.types import Parsed, Sample
from tests.conftest import REPO

MEDREGA = (
    "region_f1|plugin:region_aligned|mode:medrega|iou:0.5,sm:0.75,ss:>0.5|subtask:derived|match:iou-max|pr:swapped"
    "|names:substring|parse:double-bracket|scale:999|iou_agg:pooled|bs:1000|rs:1234|regbench:0.1.0"
)


def test_fields_of_a_written_signature() -> None:
    text = "bleu4|n:4|plugin:nlg|tok:ptb|agg:corpus|impl:pycocoevalcap-1.2|bs:1000|rs:1234|regbench:0.1.0"
    bleu = Signature.parse(text)
    assert bleu == Signature(
        key="bleu4",
        qualifiers=(("n", "4"),),
        plugin="nlg",
        parts=(("tok", "ptb"), ("agg", "corpus"), ("impl", "pycocoevalcap-1.2")),
        bs=1000,
        rs=1234,
        version="0.1.0",
    )
    region = Signature.parse(MEDREGA)
    assert region.plugin == "region_aligned" and ("iou", "0.5,sm:0.75,ss:>0.5") in region.parts
    assert region.format() == MEDREGA
    rouge = Signature.parse("rouge1|tok:jieba|agg:sample|regbench:0.1.0")
    assert rouge.plugin is None and rouge.parts == (("tok", "jieba"), ("agg", "sample")) and rouge.bs is None
    assert Signature.parse("x|flag|empty:|regbench:1").parts == (("flag", None), ("empty", ""))


def test_for_plugin_leaves_out_the_plugin_named_like_its_key() -> None:
    assert Signature.for_plugin("rouge1", "rouge1", [("tok", "ws")]).format() == f"rouge1|tok:ws|regbench:{__version__}"
    assert Signature.for_plugin("rouge1", None, []).format() == f"rouge1|regbench:{__version__}"
    assert (
        Signature.for_plugin("nlg", "bleu2", [("tok", "ptb")], qualifiers=[("n", "2")]).format()
        == f"bleu2|n:2|plugin:nlg|tok:ptb|regbench:{__version__}"
    )


def test_the_default_signature_is_built_from_the_resolved_options() -> None:
    from pydantic import BaseModel, ConfigDict

    class PluginOptions(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        threshold: float = 0.5
        labels: list[str] = ["a", "b"]
        weights: dict[str, int] = {"x": 1}
        mode: str | None = None

    class Plugin(Metric):
        name = "plug"
        keys = {"score": True}
        Options = PluginOptions

        def stats(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
            return {}

    signature = Plugin().signature("score")
    options = "threshold:0.5|labels:a,b|weights:x=1|mode:None"
    assert signature.format() == f"score|plugin:plug|{options}|regbench:{__version__}"
    assert Plugin(PluginOptions(threshold=0.75)).signature("score") != signature  # any option changes it
    assert Plugin().signature("plug").format().startswith("plug|threshold:0.5|")


def test_comparable_leaves_out_the_interval_and_optionally_the_patch_version() -> None:
    a = Signature.parse("k|plugin:p|o:1|bs:1000|rs:1|regbench:0.1.0")
    b = Signature.parse("k|plugin:p|o:1|bs:50|rs:7|regbench:0.1.0")
    assert a != b and a.comparable() == b.comparable()
    assert a.comparable().format() == "k|plugin:p|o:1|regbench:0.1.0"
    newer = Signature.parse("k|plugin:p|o:1|bs:1000|rs:1|regbench:0.1.3")
    assert newer.comparable() != a.comparable()
    assert newer.comparable(patch=False) == a.comparable(patch=False)
    assert a.comparable(patch=False).format() == "k|plugin:p|o:1|regbench:0.1"
    assert Signature.parse("k|plugin:p|o:2|regbench:0.1.0").comparable(patch=False) != a.comparable(patch=False)
    assert Signature.parse("").comparable().format() == ""  # a key with no signature in results.json


def test_with_bootstrap_goes_before_the_version() -> None:
    signature = Signature.for_plugin("p", "k", [("o", "1")], version="0.1.0").with_bootstrap(200, 3)
    assert signature.format() == "k|plugin:p|o:1|bs:200|rs:3|regbench:0.1.0"


@pytest.mark.parametrize(
    "fields",
    [
        {"key": "a|b"},
        {"key": "k", "parts": [("x|y", "1")]},
        {"key": "k", "parts": [("x", "1|2")]},
        {"key": "k", "parts": [("x:y", "1")]},
        {"key": "k", "parts": [("plugin", "p")]},  # would read back as the plugin
        {"key": "k", "parts": [("regbench", "1")]},  # would read back as the version
        {"key": "k", "parts": [("bs", "10")], "version": "1"},  # would read back as the trials
        {"key": "k", "qualifiers": [("n", "4")]},  # qualifiers are only told apart by the plugin after them
    ],
)
def test_signatures_that_would_not_read_back_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError, match=r"cannot hold|would not read back"):
        Signature(**fields)


_TEXT = st.text(st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), max_size=12)
_NAME = st.text(st.characters(blacklist_characters="|:", blacklist_categories=("Cs",)), max_size=8)
_PARTS = st.lists(st.tuples(_NAME, st.none() | _TEXT), max_size=5).map(tuple)


@st.composite
def signatures(draw: st.DrawFn) -> Signature:
    plugin = draw(st.none() | _TEXT)
    fields = {
        "key": draw(_TEXT),
        "plugin": plugin,
        "qualifiers": draw(_PARTS) if plugin is not None else (),
        "parts": draw(_PARTS),
        "bs": draw(st.none() | st.integers(0, 10**6)),
        "rs": draw(st.none() | st.integers(-(2**63), 2**63)),
        "version": draw(st.none() | _TEXT),
    }
    try:
        return Signature(**fields)
    except ValueError:  # a part that reads back as a field (a part named bs at the end, ...)
        assume(False)
        raise


@given(signatures())
def test_parse_inverts_format(signature: Signature) -> None:
    assert Signature.parse(signature.format()) == signature
    assert Signature.parse(signature.comparable().format()) == signature.comparable()


@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_every_string_reads_back_as_itself(text: str) -> None:
    assert Signature.parse(text).format() == text


@pytest.fixture(scope="module")
def bundled_results(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """results.json of every demo task, and of the recorded M4CXR and VividMed outputs."""
    out = tmp_path_factory.mktemp("signature-runs")
    group = load_spec(find_spec("group", "demo"), GroupSpec)
    recorded = REPO / "models" / "recorded"
    runs = [(name, recorded / "medrega" / "{task}.jsonl") for name in group.tasks]
    runs += [
        ("phrase_grounding_m4cxr", recorded / "m4cxr" / "{task}.jsonl"),
        ("grounded_phrases_vividmed", recorded / "vividmed" / "{task}.jsonl"),
    ]
    for name, path in runs:
        task = load_spec(find_spec("task", name), TaskSpec)
        model = ModelSpec(model="recorded", adapter="replay", path=str(path), box_format="auto")
        asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=out, bootstrap_trials=20)))
    return sorted(out.rglob("results.json"))


def test_every_bundled_signature_reads_back(bundled_results: list[Path]) -> None:
    assert len(bundled_results) == 15
    seen = 0
    for path in bundled_results:
        results = json.loads(path.read_text())
        assert set(results["signatures"]) == set(results["metrics"])
        for key, text in results["signatures"].items():
            signature = Signature.parse(text)
            assert signature.format() == text
            assert Signature.parse(signature.format()) == signature
            assert signature.key == key and signature.version == __version__
            assert signature.bs == 20 and signature.rs == 1234
            assert (signature.plugin or key) == results["plugins"][key]
            assert signature.comparable().format() == text.replace("|bs:20|rs:1234", "")
            seen += 1
    assert seen > 100
