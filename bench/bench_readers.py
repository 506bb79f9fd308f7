"""Reading speed of a dataset reader as a user meets it: a whole `regbench data export` command.

Generates a MedRegA chat JSONL of N records (default 100,000), each with its own image file (empty
files: the reader checks that an image exists, it does not decode it) spread over 100
directories and two boxes in the answer, then times `regbench data export` of it in a fresh
process (imports, reading, validation, writing the canonical JSONL), best of ``--repeat``.

Usage: python bench/bench_readers.py [--n 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(root: Path, n: int) -> Path:
    """``root/test.jsonl`` and its images; returns the task YAML that reads them."""
    for d in range(100):
        (root / "images" / f"d{d:03d}").mkdir(parents=True)
    with (root / "test.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            image = f"images/d{i % 100:03d}/{i}.png"
            (root / image).touch()
            answer = (
                "<ref>liver</ref><box>[[100, 200, 300, 400]]</box> and <ref>kidney</ref><box>[[10, 20, 30, 40]]</box>"
            )
            record = {
                "id": i,
                "image": image,
                "width": 512,
                "height": 512,
                "conversations": [
                    {"from": "human", "value": "<image>\nPlease detect the liver and the kidney."},
                    {"from": "gpt", "value": answer},
                ],
            }
            out.write(json.dumps(record) + "\n")
    task = root / "task.yaml"
    task.write_text(
        f"task: bench_readers\nfamily: detection\ndataset: {{loader: medrega_chat, root: {root}, split: test}}\n"
        "prompt: '{{ question }}'\nmetrics: [region_aligned]\n",
        encoding="utf-8",
    )
    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        task = generate(root, args.n)
        print(f"generated {args.n} records and images in {time.perf_counter() - started:.1f} s")
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "regbench", "data", "export", str(task), "-o", str(root / "out.jsonl")],
                check=True,
                env={**os.environ},
                capture_output=True,
            )
            times.append(time.perf_counter() - started)
        lines = sum(1 for _ in (root / "out.jsonl").open(encoding="utf-8"))
        print(
            f"regbench data export, {lines} samples: best {min(times):.2f} s of {args.repeat} (all: "
            + ", ".join(f"{t:.2f}" for t in times)
            + ")"
        )


if __name__ == "__main__":
    main()
