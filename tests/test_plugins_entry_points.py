"""A third-party package adds a metric on another scale, a box format and a dataset reader through
entry points, and a task YAML uses all three: scored from the command line, shown in tables as the
metric's class says; an entry point of the wrong kind is a clear error naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from tests.helpers.plugin_package import installed, write_package

PLUGIN = '''
"""regbench plugins of a made-up lab: centre points, percent boxes, semicolon files."""
from __future__ import annotations

import csv
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from regbench.data import Loader
from regbench.metrics import Metric
from regbench.parsing import Extraction
from regbench.types import Region, Sample


class CentrePointsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    full: float = Field(100.0, gt=0)


class CentrePoints(Metric):
    """Points (0-100) for how close the first box's centre is to the reference's."""

    keys = {"centre_points": True}
    Options = CentrePointsOptions
    scale = "raw"
    bounds = (0.0, 100.0)

    def stats(self, parsed, sample):
        pred = [b for o in parsed.objects for b in o.boxes]
        ref = [b for o in sample.objects for b in o.boxes]
        if not pred or not ref:
            return {"centre_points": 0.0}
        (a, b), (c, d) = _centre(pred[0]), _centre(ref[0])
        return {"centre_points": self.options.full * max(0.0, 1.0 - abs(a - c) - abs(b - d))}


def _centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


class TinyBoxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scale: int = Field(100, gt=0)


class TinyBoxes:
    """Boxes written BOX(x1 y1 x2 y2) on an integer grid (default 0-100)."""

    Options = TinyBoxOptions
    _BOX = re.compile(r"BOX\\((\\d+) (\\d+) (\\d+) (\\d+)\\)")

    def __init__(self, scale: int = 100) -> None:
        self.scale = scale
        self.name = "tinybox"

    def configured(self, options):
        configured = TinyBoxes(options.scale)
        configured.name = f"tinybox(scale={options.scale})"
        return configured

    def extract(self, text, sample):
        boxes = [[int(v) / self.scale for v in m.groups()] for m in self._BOX.finditer(text)]
        rest = self._BOX.sub(" ", text).strip()
        return Extraction(objects=[Region(name="", boxes=boxes)] if boxes else [], text=rest, format=self.name)

    def write(self, box, sample=None):
        return "BOX(" + " ".join(str(round(v * self.scale)) for v in box) + ")"


class SemicolonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    delimiter: str = ","
    skip_ids: list[str] = []


class SemicolonReader(Loader):
    """id, question, x1, y1, x2, y2 rows of a CSV file (0-1 coordinates)."""

    Options = SemicolonOptions

    def load(self, spec, *, base):
        with (base / spec.path).open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter=self.options.delimiter):
                if row[0] in self.options.skip_ids:
                    continue
                box = [float(v) for v in row[2:6]]
                yield Sample(id=row[0], question=row[1], objects=[Region(name="", boxes=[box])])
'''

ENTRY_POINTS = {
    "regbench.metrics": {"centre_points": "labplugins:CentrePoints"},
    "regbench.box_formats": {"tinybox": "labplugins:TinyBoxes"},
    "regbench.loaders": {"semicolons": "labplugins:SemicolonReader", "not_a_loader": "labplugins:CentrePoints"},
}

TASK = """\
task: lab_centres
family: detection
dataset: {loader: semicolons, path: data.csv, options: {delimiter: ";", skip_ids: [skipped]}}
prompt: "Where is {{ question }}?"
box_format: tinybox(scale=1000)
metrics: [centre_points, region_aligned]
"""

DATA = """\
a;liver;0.1;0.1;0.3;0.3
b;spleen;0.5;0.5;0.9;0.9
skipped;heart;0;0;1;1
c;kidney;0.2;0.6;0.4;0.8
"""

# a: exact (100 points); b: centre (0.7, 0.7) vs ref (0.7, 0.7) with a smaller box (100 points, IoU 0.25);
# c: no box (0 points)
PREDICTIONS = [
    {"id": "a", "output": "It is here BOX(100 100 300 300)"},
    {"id": "b", "output": "BOX(600 600 800 800)"},
    {"id": "c", "output": "I cannot find it."},
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Path]:
    """The package installed, a task using all three of its plugins, and recorded outputs."""
    site = tmp_path / "site"
    root = write_package(site, name="lab-plugins", modules={"labplugins": PLUGIN}, entry_points=ENTRY_POINTS)
    work = tmp_path / "work"
    work.mkdir()
    (work / "task.yaml").write_text(TASK, encoding="utf-8")
    (work / "data.csv").write_text(DATA, encoding="utf-8")
    (work / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PREDICTIONS), encoding="utf-8")
    with installed(root, "labplugins"):
        yield work


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join((result.output + (result.stderr or "")).split())


def score(task: Path, output: Path) -> tuple[int, str]:
    return invoke("score", "--task", str(task), "-p", str(task.parent / "preds.jsonl"), "-o", str(output))


def test_a_task_uses_a_third_party_metric_box_format_and_reader(lab: Path) -> None:
    code, text = score(lab / "task.yaml", lab / "runs")
    assert code == 0, text
    run = lab / "runs" / "preds" / "lab_centres"
    results = json.loads((run / "results.json").read_text())
    assert results["n_samples"] == 3  # the reader's skip_ids option dropped one row
    assert results["metrics"]["centre_points"] == pytest.approx(200 / 3)  # on the metric's own 0-100 scale
    assert results["plugins"]["centre_points"] == "centre_points"
    assert results["signatures"]["centre_points"].startswith("centre_points|full:100.0|bs:1000|rs:1234|regbench:")
    assert results["config"]["run"]["box_format"] == "tinybox(scale=1000)"
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == ["a", "b", "c"]
    assert samples[0]["parsed"]["box_format"] == "tinybox(scale=1000)"
    assert samples[1]["parsed"]["objects"][0]["boxes"] == [[0.6, 0.6, 0.8, 0.8]]
    assert samples[1]["scores"]["centre_points"] == pytest.approx(100.0)
    assert samples[2]["parsed"]["refusal"] is True and samples[2]["scores"]["centre_points"] == 0.0
    assert samples[0]["prompt"][-1]["content"] == "Where is liver?"

    code, text = invoke("export", "markdown", str(lab / "runs"), "-o", str(lab / "tables.md"))
    assert code == 0, text
    row = next(line for line in (lab / "tables.md").read_text().splitlines() if line.startswith("| preds |"))
    assert "| **66.67** |" in row  # raw, as its class says: not x100 like region_f1
    region_f1 = results["metrics"]["region_f1"]
    assert f"| **{region_f1 * 100:.2f}** |" in row
    code, text = invoke("export", "latex", str(lab / "runs"), "-o", str(lab / "tables.tex"))
    assert code == 0 and r"\textbf{66.67}" in (lab / "tables.tex").read_text()


def test_the_plugins_are_listed_and_looked_up(lab: Path) -> None:
    from regbench.data import LOADERS
    from regbench.metrics import METRICS
    from regbench.parsing import BOX_FORMATS, get_box_format

    code, text = invoke("list", "formats")
    assert code == 0 and "tinybox" in text.split()
    assert "centre_points" in METRICS and "semicolons" in LOADERS
    assert get_box_format("tinybox").name == "tinybox"  # an entry point naming a class: made with no arguments
    assert get_box_format("tinybox(scale=10)").write([0.1, 0.2, 0.3, 0.4]) == "BOX(1 2 3 4)"
    assert BOX_FORMATS.get("tinybox") is BOX_FORMATS.get("tinybox")  # made once


def test_plugin_options_are_validated_with_their_names(lab: Path) -> None:
    from regbench.errors import UnknownNameError
    from regbench.parsing import get_box_format

    with pytest.raises(UnknownNameError, match=r"box format tinybox has no option 'size' \(it takes scale\)"):
        get_box_format("tinybox(size=3)")
    task = (lab / "task.yaml").read_text().replace("skip_ids: [skipped]", "skip: [skipped]")
    (lab / "typo.yaml").write_text(task)
    code, text = score(lab / "typo.yaml", lab)
    assert code == 2
    message = "unknown option of the semicolons loader (it takes delimiter, skip_ids)"
    assert f"typo.yaml: dataset.options.skip: {message}" in text


def test_an_entry_point_of_the_wrong_kind_is_named(lab: Path) -> None:
    task = (lab / "task.yaml").read_text().replace("loader: semicolons", "loader: not_a_loader")
    (lab / "wrong.yaml").write_text(task)
    code, text = score(lab / "wrong.yaml", lab)
    assert code == 2
    assert (
        "dataset loader 'not_a_loader' from entry point 'not_a_loader = labplugins:CentrePoints' "
        "(group regbench.loaders, package lab-plugins) is <class 'labplugins.CentrePoints'>, "
        "not a subclass of regbench.data.base.Loader"
    ) in text


def test_nothing_of_the_package_is_left_behind() -> None:
    from regbench.data import LOADERS
    from regbench.metrics import METRICS
    from regbench.parsing import BOX_FORMATS

    assert "centre_points" not in METRICS and "semicolons" not in LOADERS and "tinybox" not in BOX_FORMATS
