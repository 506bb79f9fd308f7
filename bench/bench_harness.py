"""Harness overhead per sample and CLI cold start.

What it measures (all on replayed outputs, so the model costs nothing):
  1. regbench: `evaluate()` on N samples (default 10,000) of a VQA-style task scored by an
     exact-match plugin: load → render → replay → parse → score → bootstrap → write.
     Reported per sample, with the generation/scoring split from run.json.
  2. Reference, side by side on the same data and outputs: lm-evaluation-harness's
     `simple_evaluate` with a replaying LM and its `exact_match` metric, when a Python with
     lm-eval installed is given (`--lm-eval-python`; lm-eval conflicts with our transformers
     pin, so it lives in its own virtualenv).
  3. `regbench --help` cold start (median of 5 subprocess runs), and `import regbench.cli`.

Usage: python bench/bench_harness.py [--n 10000] [--lm-eval-python /tmp/lmeval/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from regbench.metrics import METRICS, Metric, register_metric
from regbench.models import build_adapter
from regbench.runner import RunOptions, evaluate
from regbench.spec import ModelSpec, TaskSpec, load_spec
from regbench.types import Parsed, Sample

if "bench_exact" not in METRICS:

    @register_metric("bench_exact")
    class BenchExact(Metric):
        """Exact match (lower-cased), a near-free metric so the harness itself is measured."""

        keys = {"exact_match": True}

        def stats(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
            return {"exact_match": float(parsed.text.strip().lower() == sample.answer.lower())}


def make_data(root: Path, n: int) -> tuple[Path, Path]:
    data = root / "data.jsonl"
    preds = root / "preds.jsonl"
    with data.open("w") as d, preds.open("w") as p:
        for i in range(n):
            answer = ["yes", "no", "left lung", "right upper lobe"][i % 4]
            d.write(
                json.dumps({"id": f"s{i}", "question": f"Question {i}: is there a nodule?", "answer": answer}) + "\n"
            )
            p.write(json.dumps({"id": f"s{i}", "output": answer if i % 3 else "maybe"}) + "\n")
    (root / "task.yaml").write_text(
        "task: bench\nfamily: vqa\ndataset: {path: data.jsonl}\n"
        'prompt: "{{ question }} Answer with a word or phrase."\nmetrics: [bench_exact]\n'
    )
    return data, preds


def bench_regbench(root: Path, preds: Path, n: int) -> dict[str, float]:
    """In-process timing of evaluate(), and the whole process (imports included) as lm-eval is timed."""
    task = load_spec(root / "task.yaml", TaskSpec)
    model = ModelSpec(model="replay", adapter="replay", path=str(preds), box_format="medrega")
    start = time.perf_counter()
    result = asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=root / "out")))
    seconds = time.perf_counter() - start
    info = json.loads((result.directory / "run.json").read_text())
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--inner", str(root)], check=True)
    process_seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "process_seconds": process_seconds,
        "us_per_sample": seconds / n * 1e6,
        "generation_s": info["seconds_generation"],
        "scoring_s": info["seconds_scoring"],
        "exact_match": result.results.metrics["exact_match"],
    }


def inner(root: Path) -> None:
    """The subprocess side: one evaluate() from a cold interpreter."""
    task = load_spec(root / "task.yaml", TaskSpec)
    model = ModelSpec(model="replay", adapter="replay", path=str(root / "preds.jsonl"), box_format="medrega")
    asyncio.run(evaluate(task, model, build_adapter(model), RunOptions(output=root / "out-process")))


LM_EVAL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    root = sys.argv[1]
    start = time.perf_counter()
    import lm_eval
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
    from lm_eval.tasks import TaskManager
    outputs = {}
    for line in open(root + "/preds.jsonl"):
        r = json.loads(line); outputs["Question " + r["id"][1:] + ":"] = r["output"]

    @register_model("replay-bench")
    class Replay(LM):
        def generate_until(self, requests, disable_tqdm=True):
            return [outputs[r.args[0].split(" is there")[0]] for r in requests]
        def loglikelihood(self, requests, disable_tqdm=True): return [(-1.0, True) for _ in requests]
        def loglikelihood_rolling(self, requests, disable_tqdm=True): return [-1.0 for _ in requests]

    tm = TaskManager(include_path=root + "/lmeval_tasks", include_defaults=False)
    res = lm_eval.simple_evaluate(model="replay-bench", tasks=["bench"], task_manager=tm,
                                  log_samples=True, bootstrap_iters=1000)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "exact_match": res["results"]["bench"]["exact_match,none"]}))
    """
)


def bench_lm_eval(root: Path, python: str, n: int) -> dict[str, float]:
    tasks = root / "lmeval_tasks"
    tasks.mkdir()
    (tasks / "bench.yaml").write_text(
        textwrap.dedent(f"""
        task: bench
        dataset_path: json
        dataset_name: null
        dataset_kwargs: {{data_files: {{test: {root / "data.jsonl"}}}}}
        test_split: test
        output_type: generate_until
        doc_to_text: "{{{{question}}}} Answer with a word or phrase."
        doc_to_target: "{{{{answer}}}}"
        generation_kwargs: {{until: ["\\n"], do_sample: false}}
        metric_list:
          - {{metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true}}
        metadata: {{version: 1.0}}
        """)
    )
    env = {
        "HF_DATASETS_CACHE": str(root / "hfds"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [python, "-c", LM_EVAL_SCRIPT, str(root)], capture_output=True, text=True, env=env, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["us_per_sample"] = result["seconds"] / n * 1e6
    return result


def cold_start() -> dict[str, float]:
    def median_of(cmd: list[str]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return {
        "help_s": median_of([sys.executable, "-m", "regbench", "--help"]),
        "python_startup_s": median_of([sys.executable, "-c", "pass"]),
        "import_cli_s": median_of([sys.executable, "-c", "import regbench.cli"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--lm-eval-python", help="python of a virtualenv with lm-eval installed")
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, preds = make_data(root, args.n)
        ours = bench_regbench(root, preds, args.n)
        print(
            f"regbench   {args.n} samples: {ours['seconds']:.2f} s  ({ours['us_per_sample']:.0f} us/sample; "
            f"generation {ours['generation_s']:.2f} s, scoring+bootstrap+write {ours['scoring_s']:.2f} s)  "
            f"exact_match={ours['exact_match']:.4f}"
        )
        print(f"regbench   whole process (imports, evaluate, write): {ours['process_seconds']:.2f} s")
        if args.lm_eval_python:
            ref = bench_lm_eval(root, args.lm_eval_python, args.n)
            print(
                f"lm-eval    {args.n} samples: {ref['seconds']:.2f} s  ({ref['us_per_sample']:.0f} us/sample)  "
                f"exact_match={ref['exact_match']:.4f}"
            )
            assert abs(ref["exact_match"] - ours["exact_match"]) < 1e-9, "the two harnesses disagree"
            print(f"ratio      lm-eval / regbench, whole process = {ref['seconds'] / ours['process_seconds']:.1f}x")
    start = cold_start()
    print(
        f"cold start regbench --help {start['help_s'] * 1000:.0f} ms "
        f"(python itself {start['python_startup_s'] * 1000:.0f} ms; "
        f"import regbench.cli {start['import_cli_s'] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
