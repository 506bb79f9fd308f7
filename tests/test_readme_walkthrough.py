"""README "Your model on your data" runs as written: its files, its commands, a loopback server.

The files are read from the README itself (each block after a line naming `my-eval/...`), and
the command block is run by bash as it stands, with `regbench` on PATH being this checkout and
`MY_QWEN_URL` pointing at tests/servers/openai_server.py serving the model name the YAML gives.
The server answers in Qwen2.5-VL's pixel JSON, so the scores also check the width/height rule.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from regbench.parsing.boxes import qwen25_input_size
from tests.conftest import REPO
from tests.servers import RunningServer, start_openai_server

README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Your model on your data") :]
SECTION = SECTION[: SECTION.index("\n## ", 1)]


def files() -> dict[str, str]:
    """Each file the walkthrough shows: its path (named just before the block) -> its text."""
    found = dict(re.findall(r"`(my-eval/[\w./-]+)`:\n\n```\w*\n(.*?)```", SECTION, flags=re.S))
    assert set(found) == {"my-eval/data/lungs.jsonl", "my-eval/lungs.yaml", "my-eval/my-qwen.yaml"}
    return found


def commands() -> str:
    (block,) = re.findall(r"```bash\n(cd my-eval\n.*?)```", SECTION, flags=re.S)
    return block


def pixel_reply(name: str, box: list[float], width: int, height: int) -> str:
    """What Qwen2.5-VL writes: JSON boxes in pixels of the image as its processor resized it."""
    w, h = qwen25_input_size(width, height)
    pixels = [round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)]
    return "```json\n" + json.dumps([{"bbox_2d": pixels, "label": name}]) + "\n```"


@pytest.fixture
def walkthrough(tmp_path: Path) -> Iterator[tuple[Path, RunningServer, dict[str, str]]]:
    from PIL import Image

    for path, text in files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    samples = [json.loads(line) for line in files()["my-eval/data/lungs.jsonl"].splitlines()]
    for sample in samples:
        image = tmp_path / "my-eval" / "data" / sample["image"]
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (sample["width"], sample["height"]), 90).save(image)
    left = samples[0]
    served = yaml.safe_load(files()["my-eval/my-qwen.yaml"])["model_name"]
    script = [
        # p1: the reference box itself; p2: a box on the other side of the image (IoU 0)
        {"match": "left lung", "reply": pixel_reply("left lung", left["objects"][0]["boxes"][0], 640, 512)},
        {"match": "right lung", "reply": pixel_reply("right lung", left["objects"][0]["boxes"][0], 640, 512)},
    ]
    server = start_openai_server(tmp_path, script=script, served=[served])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "regbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m regbench "$@"\n')
    (bin_dir / "regbench").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MY_QWEN_URL": server.url,
        "COLUMNS": "200",
    }
    try:
        yield tmp_path, server, env
    finally:
        server.stop()


def sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def results(run: Path) -> dict[str, Any]:
    return json.loads((run / "results.json").read_text())


def test_the_commands_are_only_regbench_commands() -> None:
    lines = [line for line in commands().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "cd my-eval"
    assert all(line.startswith("regbench ") for line in lines[1:]), lines


def test_the_walkthrough_runs_as_written(walkthrough: tuple[Path, RunningServer, dict[str, str]]) -> None:
    root, server, env = walkthrough
    done = sh(commands(), root, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lungs: 2 samples, ok, skipped 0 records" in done.stdout
    assert "iou_threshold" in done.stdout and "float | null" in done.stdout  # list metrics region_aligned
    run = root / "my-eval" / "runs" / "my-qwen" / "lungs"
    found = results(run)
    assert found["n_samples"] == 2 and found["n_errors"] == 0 and found["n_parse_failures"] == 0
    # p1 found (pixels of the resized 644 x 504 image read back through width / height), p2 missed
    assert found["metrics"]["region_f1"] == pytest.approx(0.5)
    assert found["metrics"]["iou"] == pytest.approx(0.5, abs=0.01)
    assert "iou:0.5" in found["signatures"]["region_f1"]
    asked = [r for r in server.requests() if r.get("images")]
    assert len(asked) == 2 and all(r["images"] == 1 for r in asked)
    lines = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert lines[0]["parsed"]["objects"][0]["boxes"][0] == pytest.approx([0.55, 0.15, 0.90, 0.85], abs=0.002)

    rerun = commands().splitlines()[0] + " && " + commands().strip().splitlines()[-1]
    again = sh(rerun, root, env)  # "Rerunning the same command asks nothing again"
    assert again.returncode == 0
    assert len([r for r in server.requests() if r.get("images")]) == 2


def test_without_width_and_height_pixel_boxes_are_parse_failures_that_say_so(
    walkthrough: tuple[Path, RunningServer, dict[str, str]],
) -> None:
    root, _, env = walkthrough
    data = root / "my-eval" / "data" / "lungs.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    data.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k not in ("width", "height")}) + "\n" for r in rows)
    )
    done = sh("cd my-eval && regbench run --model my-qwen.yaml --task lungs.yaml --output runs", root, env)
    assert done.returncode == 0, done.stdout + done.stderr
    run = root / "my-eval" / "runs" / "my-qwen" / "lungs"
    assert results(run)["n_parse_failures"] == 2 and results(run)["metrics"]["region_f1"] == 0
    first = json.loads((run / "samples.jsonl").read_text().splitlines()[0])
    assert "needs `width` and `height`" in first["parsed"]["error"]


def test_a_box_in_pixels_is_listed_by_data_check_and_refused_by_run(
    walkthrough: tuple[Path, RunningServer, dict[str, str]],
) -> None:
    root, server, env = walkthrough
    data = root / "my-eval" / "data" / "lungs.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[1]["objects"][0]["boxes"] = [[64, 77, 288, 435]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    check = sh("cd my-eval && regbench data check lungs.yaml", root, env)
    assert check.returncode == 1
    assert "sample 'p2'" in check.stdout and "is not in 0–1" in check.stdout
    run = sh("cd my-eval && regbench run --model my-qwen.yaml --task lungs.yaml --output runs", root, env)
    assert run.returncode == 2
    assert "lungs.jsonl:2" in run.stderr and "Traceback" not in run.stderr
    assert not [r for r in server.requests() if r.get("images")]


def test_the_fields_table_names_what_each_family_is_checked_for() -> None:
    from regbench.data.check import reference_problems
    from regbench.spec import FAMILIES
    from regbench.types import Sample

    rows = {}
    for line in SECTION.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 5 and cells[0].strip("`") in FAMILIES:
            rows[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    assert set(rows) == set(FAMILIES)
    for family, named in rows.items():
        needed = {field for field, _ in reference_problems(family, Sample(id="empty"))}
        assert needed and needed <= named, (family, needed, named)
