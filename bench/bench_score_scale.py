"""A whole `regbench score` of a large region-detection split, as a user runs it.

100,000 samples (default) of bench_region.py's synthetic detection data (about 5 boxes over
2-4 named organs per sample) are written as a canonical dataset JSONL with a task YAML
(`region_aligned` in `medrega` mode) and MedRegA-format outputs as a predictions file. The
script then runs `python -m regbench score` in a fresh process and reports its wall time,
peak memory and run.json's split (load + render + replay, then parse + score + bootstrap +
write), and times the two steps whose cost grows with the data in-process: loading the
samples and parsing the outputs.

`--compare SRC` runs the same process with `PYTHONPATH=SRC` as well (a checkout's `src`
folder, e.g. a `git worktree` of an older commit), on the same files, alternating, so two
versions are compared side by side; the script asserts their results.json and samples.jsonl are identical.

Usage: python bench/bench_score_scale.py [--n 100000] [--repeat 2] [--compare /tmp/old/src]
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

sys.path.insert(0, str(Path(__file__).parent))
from bench_region import synthetic

TASK = """task: scale_detection
family: detection
dataset: {path: data.jsonl}
prompt: "{{ question }}"
metrics:
  - {name: region_aligned, mode: medrega}
"""


def make_files(root: Path, n: int) -> None:
    with (root / "data.jsonl").open("w") as data, (root / "preds.jsonl").open("w") as preds:
        for parsed, sample in synthetic(n, seed=0):
            names = ", ".join(f"<ref>{o.name}</ref>" for o in sample.objects)
            objects = [o.model_dump(exclude_none=True) for o in sample.objects]
            data.write(json.dumps({"id": sample.id, "question": f"Please locate {names}.", "objects": objects}) + "\n")
            preds.write(json.dumps({"id": sample.id, "output": parsed.raw}) + "\n")
    (root / "task.yaml").write_text(TASK)


def score_process(root: Path, src: str | None, out: Path) -> dict[str, float]:
    """One `regbench score` in a fresh interpreter: wall seconds, peak RSS, run.json's split."""
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    command = [sys.executable, "-m", "regbench", "score", "-t", str(root / "task.yaml")]
    command += ["-p", str(root / "preds.jsonl"), "--box-format", "medrega", "-o", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory (ru_maxrss, KiB)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    info = json.loads((out / "preds" / "scale_detection" / "run.json").read_text())
    return {
        "seconds": seconds,
        "peak_gib": usage.ru_maxrss / 2**20,
        "generation": info["seconds_generation"],
        "scoring": info["seconds_scoring"],
    }


def steps_in_process(root: Path) -> dict[str, float]:
    """Loading the samples and parsing the outputs, timed in this process (this checkout's regbench), with
    automatic garbage collection paused as the runner pauses it."""
    from regbench.collector import gc_paused
    from regbench.data import load_samples
    from regbench.parsing import parse_output
    from regbench.spec import TaskSpec, load_spec

    task = load_spec(root / "task.yaml", TaskSpec)
    outputs = [json.loads(line)["output"] for line in (root / "preds.jsonl").open()]
    with gc_paused():
        start = time.perf_counter()
        samples = load_samples(task)
        loaded = time.perf_counter()
        for output, sample in zip(outputs, samples, strict=True):
            parse_output(output, box_format="medrega", sample=sample, expect_boxes=True)
        return {"load": loaded - start, "parse": time.perf_counter() - loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="process runs per version; the fastest is shown")
    parser.add_argument("--compare", help="another checkout's src folder, run side by side")
    args = parser.parse_args()
    versions = {"this checkout": None} | ({f"--compare {args.compare}": args.compare} if args.compare else {})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_files(root, args.n)
        print(f"{args.n} samples, {(root / 'data.jsonl').stat().st_size / 2**20:.0f} MiB of data; {os.uname().machine}")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for attempt in range(args.repeat):
            for index, (name, src) in enumerate(versions.items()):
                runs[name].append(score_process(root, src, root / f"out-{index}-{attempt}"))
        for name in ("results.json", "samples.jsonl"):
            found = {(root / f"out-{i}-0/preds/scale_detection/{name}").read_bytes() for i in range(len(versions))}
            assert len(found) == 1, f"the versions' {name} differ"
        for name, found in runs.items():
            best = min(found, key=lambda r: r["seconds"])
            print(
                f"{name:>30}: {best['seconds']:6.1f} s wall ({best['seconds'] / args.n * 1e6:.0f} us/sample), "
                f"peak {best['peak_gib']:.2f} GiB; load+render+replay {best['generation']:.1f} s, "
                f"parse+score+bootstrap+write {best['scoring']:.1f} s"
            )
        steps = steps_in_process(root)
        print(f"{'in this process':>30}: loading the samples {steps['load']:.1f} s, parsing {steps['parse']:.1f} s")


if __name__ == "__main__":
    main()
