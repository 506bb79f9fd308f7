"""How a whole `regbench score` grows with the split: 100,000, 300,000 and 1,000,000 detection samples.

Each size is generated as bench_region.py's synthetic detection data (about 5 reference boxes over
2-4 named organs per sample; predictions jittered, dropped, added, some names wrong) written as a
canonical dataset JSONL whose samples share a few image files, a task YAML (`region_aligned` in
`medrega` mode) and MedRegA-format outputs as a predictions file. `python -m regbench score` then
runs on it in a fresh process, as a user runs it; the script reports its wall time, its peak
resident memory (the child's own ru_maxrss) and run.json's split of the time.

`--compare SRC` runs another checkout's `src` (e.g. a `git worktree` of main) on the same files,
alternating with this checkout, and asserts that both write byte-identical results.json and
samples.jsonl; `--compare-max N` skips the other checkout above N samples (code that holds the whole
split needs about 18 GB at 1,000,000).

Usage: python bench/bench_scale.py [--n 100000 300000 1000000] [--repeat 1] [--compare /tmp/main/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_region import NAMES

TASK = """task: scale_detection
family: detection
dataset: {path: data.jsonl}
prompt: "{{ question }}"
metrics:
  - {name: region_aligned, mode: medrega}
"""
IMAGES = 4


def make_files(root: Path, n: int, seed: int = 0) -> None:
    """bench_region.synthetic's kind of samples and outputs (3-7 reference boxes over 2-4 named organs;
    predictions jittered by 2%, 15% dropped, an extra box in 30%, 10% of names wrong), drawn with
    ``random`` and written as JSON directly: numpy calls on tiny arrays and pydantic objects would make
    the generator the slow part at a million samples."""
    rng = random.Random(seed)
    for k in range(IMAGES):
        (root / f"img{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # only its path is read when scoring
    encode = json.JSONEncoder().encode
    with (root / "data.jsonl").open("w") as data, (root / "preds.jsonl").open("w") as preds:
        for i in range(n):
            names = NAMES[:4] if rng.random() < 0.5 else NAMES[4:]
            ref: dict[str, list[list[int]]] = {}
            pred: dict[str, list[list[int]]] = {}
            for _ in range(rng.randint(3, 7)):
                x, y = rng.random() * 0.7, rng.random() * 0.7
                box = [x, y, x + 0.05 + rng.random() * 0.25, y + 0.05 + rng.random() * 0.25]
                name = rng.choice(names)
                ref.setdefault(name, []).append([round(v * 999) for v in box])
                if rng.random() > 0.15:
                    jittered = [round(min(max(v + rng.gauss(0, 0.02), 0.0), 1.0) * 999) for v in box]
                    pred.setdefault(name if rng.random() > 0.1 else "kidney", []).append(jittered)
            if rng.random() < 0.3:
                x, y = rng.random() * 0.7, rng.random() * 0.7
                pred.setdefault("spleen", []).append([round(v * 999) for v in (x, y, x + 0.1, y + 0.1)])
            output = ", ".join(f"<ref>{name}</ref><box>{boxes}</box>" for name, boxes in pred.items())
            objects = [{"name": name, "boxes": [[v / 999 for v in b] for b in boxes]} for name, boxes in ref.items()]
            question = "Please locate " + ", ".join(f"<ref>{name}</ref>" for name in ref) + "."
            row = {"id": str(i), "question": question, "objects": objects, "image": f"img{i % IMAGES}.png"}
            data.write(encode(row) + "\n")
            preds.write(encode({"id": str(i), "output": output}) + "\n")
    (root / "task.yaml").write_text(TASK)


def score_process(root: Path, src: str | None, out: Path) -> dict[str, float]:
    """One `regbench score` in a fresh interpreter: wall seconds, peak RSS, run.json's split."""
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    command = [sys.executable, "-m", "regbench", "score", "-t", str(root / "task.yaml")]
    command += ["-p", str(root / "preds.jsonl"), "--box-format", "medrega", "-o", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory (ru_maxrss, KiB)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"regbench score failed ({src or 'this checkout'}):\n{errors.decode()[-2000:]}")
    info = json.loads((out / "preds" / "scale_detection" / "run.json").read_text())
    return {
        "seconds": seconds,
        "peak_gib": usage.ru_maxrss / 2**20,
        "generation": info["seconds_generation"],
        "scoring": info["seconds_scoring"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="process runs per version; the fastest is shown")
    parser.add_argument("--compare", help="another checkout's src folder, run side by side")
    parser.add_argument("--compare-max", type=int, default=300_000, help="largest split the other checkout runs")
    parser.add_argument("--tmp", help="where the generated files go (default: the system's temporary folder)")
    parser.add_argument("--keep", help="a folder to keep each size's generated files in, and reuse them from")
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    rows = []
    for n in args.n:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            root = Path(tmp)
            made = time.perf_counter()
            kept = Path(args.keep) / str(n) if args.keep else None
            if kept is not None and (kept / "task.yaml").is_file():  # generated by an earlier run
                root = kept
            else:
                make_files(root, n)
                if kept is not None:
                    shutil.copytree(root, kept, dirs_exist_ok=True)
            size = (root / "data.jsonl").stat().st_size / 2**20
            print(f"{n} samples: {size:.0f} MiB of data, generated in {time.perf_counter() - made:.0f} s", flush=True)
            versions = {"this checkout": None}
            if args.compare and n <= args.compare_max:
                versions["--compare"] = args.compare
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
            for attempt in range(args.repeat):
                for index, (name, src) in enumerate(versions.items()):
                    runs[name].append(score_process(root, src, Path(tmp) / f"out-{index}-{attempt}"))
                    best = runs[name][-1]
                    print(f"  {name}: {best['seconds']:.1f} s, {best['peak_gib']:.2f} GiB", flush=True)
            for name in ("results.json", "samples.jsonl"):
                found = {
                    (Path(tmp) / f"out-{i}-0/preds/scale_detection/{name}").read_bytes() for i in range(len(versions))
                }
                assert len(found) == 1, f"the versions' {name} differ"
            for name, found in runs.items():
                best = min(found, key=lambda r: r["seconds"])
                rows.append((n, name, best))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print("| samples | version | wall | per sample | peak RSS | load + render + replay | parse + score + write |")
    print("|---|---|---|---|---|---|---|")
    for n, name, best in rows:
        print(
            f"| {n:,} | {name} | {best['seconds']:.1f} s | {best['seconds'] / n * 1e6:.0f} us | "
            f"{best['peak_gib']:.2f} GiB | {best['generation']:.1f} s | {best['scoring']:.1f} s |"
        )


if __name__ == "__main__":
    main()
