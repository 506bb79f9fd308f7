"""Run every bundled task with two commits of regbench and diff what they write.

    python scripts/compare_outputs.py BEFORE [AFTER]     # AFTER defaults to the work tree

Each side is a ``git worktree`` of its commit (a copy of the work tree's files for ``AFTER``
omitted), laid at the same temporary path in turn (outputs hold absolute paths) and run in a
fresh process with ``PYTHONPATH`` pointing at its ``src/`` and ``REGBENCH_PATH`` unset, so the
same interpreter and packages score both. What is run:

- ``regbench run --model medrega-demo --task demo`` (the README's first command: 13 tasks);
- ``regbench score`` of the recorded M4CXR and VividMed outputs, and of the demo recordings
  read with the ``auto`` box format;
- the two multi-turn tasks (``regional_cot``, ``m4cxr_two_turn_cot``) scored from two-turn
  predictions built here from the demo recordings.

Every ``results.json`` and ``samples.jsonl`` must be byte-identical (``run.json`` holds
timings and is not compared). Exit 0 when all are, 1 otherwise, listing the files that differ
and their first differing line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPARED = ("results.json", "samples.jsonl")


def _two_turn(source: Path, out: Path) -> Path:
    """A predictions file whose outputs are lists of two answers (both turns), from a one-turn recording."""
    lines = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.write_text(
        "".join(json.dumps({"id": r["id"], "output": [r["output"], r["output"]]}) + "\n" for r in lines),
        encoding="utf-8",
    )
    return out


def _commands(root: Path, work: Path) -> list[list[str]]:
    recorded = root / "models" / "recorded"
    demo = recorded / "medrega"
    cot = _two_turn(demo / "grounded_rg.jsonl", work / "regional_cot.jsonl")
    two_turn = _two_turn(demo / "demo_report_en.jsonl", work / "m4cxr_two_turn_cot.jsonl")
    commands = [
        ["run", "--model", "medrega-demo", "--task", "demo"],
        ["score", "--task", "phrase_grounding_m4cxr", "-p", str(recorded / "m4cxr" / "phrase_grounding_m4cxr.jsonl")],
        [
            "score",
            "--task",
            "grounded_phrases_vividmed",
            "-p",
            str(recorded / "vividmed" / "grounded_phrases_vividmed.jsonl"),
        ],
        ["score", "--task", "regional_cot", "-p", str(cot)],
        ["score", "--task", "m4cxr_two_turn_cot", "-p", str(two_turn)],
    ]
    for task in ("grounded_rg", "grounded_rg_zh", "demo_detection", "demo_detection_3d", "demo_region_identification"):
        commands.append(
            ["score", "--task", task, "-p", str(demo / f"{task}.jsonl"), "--name", "auto", "--box-format", "auto"]
        )
    return commands


def run_side(root: Path, work: Path, out: Path) -> list[str]:
    """Run every command with the regbench of ``root``; returns one line per command (its exit code)."""
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_PATH"}
    env["PYTHONPATH"] = str(root / "src")
    log = []
    work.mkdir(parents=True, exist_ok=True)
    for args in _commands(root, work):
        full = [sys.executable, "-m", "regbench", *args, "--output", str(out)]
        done = subprocess.run(full, cwd=root, env=env, capture_output=True, text=True, check=False)
        log.append(f"rc={done.returncode} {' '.join(args[:4])}")
        if done.returncode not in (0, 1):
            log.append("  " + (done.stderr.strip().splitlines() or ["(no stderr)"])[-1])
    return log


def _line(lines: list[bytes], index: int) -> str:
    return lines[index][:200].decode("utf-8", "replace") if index < len(lines) else "(end)"


def diff_trees(a: Path, b: Path) -> tuple[int, list[str]]:
    """(files compared, problems) over every compared file in either tree."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.name in COMPARED}
    names |= {p.relative_to(b) for p in b.rglob("*") if p.name in COMPARED}
    problems = []
    for name in sorted(names):
        fa, fb = a / name, b / name
        if not fa.is_file() or not fb.is_file():
            problems.append(f"{name}: only in {'after' if not fa.is_file() else 'before'}")
            continue
        la, lb = fa.read_bytes().splitlines(), fb.read_bytes().splitlines()
        if la == lb and fa.read_bytes() == fb.read_bytes():
            continue
        first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
        problems.append(f"{name}: line {first + 1} differs\n  before: {_line(la, first)}\n  after:  {_line(lb, first)}")
    return len(names), problems


def _checkout(rev: str | None, tree: Path) -> None:
    """The files of ``rev`` at ``tree``: a worktree of the commit, or a copy of the work tree's files."""
    if rev is not None:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        return
    listed = (
        subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)


def _remove(rev: str | None, tree: Path) -> None:
    if rev is not None:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    else:
        shutil.rmtree(tree, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="commit (or ref) to compare against")
    parser.add_argument("after", nargs="?", help="commit to compare; default: the work tree as it is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regbench-compare-") as tmp:
        tmp_path = Path(tmp)
        # both sides run from the same paths (results.json and samples.jsonl hold absolute paths)
        tree, work = tmp_path / "tree", tmp_path / "work"
        logs = {}
        for side, rev in (("before", args.before), ("after", args.after)):
            _checkout(rev, tree)
            try:
                logs[side] = run_side(tree, work, tmp_path / side)
            finally:
                _remove(rev, tree)
        count, problems = diff_trees(tmp_path / "before", tmp_path / "after")
    for side in ("before", "after"):
        print(f"{side}: {args.before if side == 'before' else args.after or 'work tree'}")
        print("\n".join("  " + line for line in logs[side]))
    if logs["before"] != logs["after"]:
        problems.append("the commands' exit codes differ")
    print(f"{count} files compared (results.json, samples.jsonl), {len(problems)} differ")
    print("\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
