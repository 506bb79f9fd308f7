"""HTTP adapter throughput against a loopback OpenAI-compatible server with fixed latency.

Starts tests/servers/openai_server.py (latency 50 ms by default; listen backlog 1024,
TCP_NODELAY), then runs the same N requests through
  1. ``regbench run`` (openai adapter, --concurrency C) from a cold process, and
  2. lm-evaluation-harness's ``local-chat-completions`` model (num_concurrent C), from a cold
     process, when a Python with lm-eval installed is given (it conflicts with our pins).
Reports the request span (first request in to last request in at the server, plus one latency)
as a share of the ideal latency x N / C, the end-to-end time from command start to the results
file, and where the rest goes: command start to the first request at the server (interpreter,
imports, specs, data, adapter start-up) and last answer to the results file (scoring,
bootstrap, writing). regbench runs twice: with its response cache (the default) and with
``--no-cache``.

Usage: python bench/bench_openai.py [--n 2000] [--latency 0.05] [--concurrency 64]
                                    [--lm-eval-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "tests" / "servers" / "openai_server.py"


def start_server(root: Path, latency: float) -> tuple[subprocess.Popen[bytes], str, Path]:
    ready, log = root / "port", root / "server.log"
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency), "--log", str(log), "--ready", str(ready)]
    )
    while not ready.exists() or not ready.read_text():
        time.sleep(0.02)
    return process, f"http://127.0.0.1:{ready.read_text()}/v1", log


def phases(log: Path, latency: float, started: float, finished: float) -> dict[str, float]:
    """Start-up, request span and finish of one run, from the server's arrival times (wall clock)."""
    times = [json.loads(line)["time"] for line in log.read_text().splitlines()]
    first, last = min(times), max(times)
    return {
        "requests": len(times),
        "startup": first - started,
        "span": last - first + latency,
        "finish": finished - (last + latency),
        "total": finished - started,
    }


def run_regbench(root: Path, url: str, n: int, concurrency: int, cache: bool) -> tuple[float, float]:
    rows = [
        {"id": f"q{i}", "question": f"question number {i}", "answer": f"echo: question number {i}"} for i in range(n)
    ]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "task.yaml").write_text(
        "task: bench_http\nfamily: vqa\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "generation: {max_tokens: 16}\nmetrics: [vqa]\n"
    )
    (root / "model.yaml").write_text(
        json.dumps({"model": "served", "adapter": "openai", "base_url": url, "model_name": "test-model"})
    )
    out = root / ("out-cache" if cache else "out")
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "regbench",
            "run",
            "--model",
            str(root / "model.yaml"),
            "--task",
            str(root / "task.yaml"),
            "-c",
            str(concurrency),
            "-o",
            str(out),
            *([] if cache else ["--no-cache"]),
        ],
        check=True,
        capture_output=True,
    )
    assert (out / "served" / "bench_http" / "results.json").exists()
    return start, time.time()


LM_EVAL = textwrap.dedent(
    """
    import sys, time
    start = time.perf_counter()
    import lm_eval
    from lm_eval.tasks import TaskManager
    root, url, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tm = TaskManager(include_path=root + "/lmeval_tasks", include_defaults=False)
    lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args=f"model=test-model,base_url={url}/chat/completions,num_concurrent={concurrency},max_retries=1,"
                   "tokenized_requests=False,tokenizer_backend=None",
        tasks=["bench_http"], task_manager=tm, apply_chat_template=True, bootstrap_iters=0)
    print(time.perf_counter() - start)
    """
)


def run_lm_eval(root: Path, python: str, url: str, concurrency: int) -> tuple[float, float]:
    tasks = root / "lmeval_tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "bench_http.yaml").write_text(
        textwrap.dedent(f"""
        task: bench_http
        dataset_path: json
        dataset_name: null
        dataset_kwargs: {{data_files: {{test: {root / "data.jsonl"}}}}}
        test_split: test
        output_type: generate_until
        doc_to_text: "{{{{question}}}}"
        doc_to_target: "{{{{answer}}}}"
        generation_kwargs: {{until: ["<|end|>"], max_gen_toks: 16, do_sample: false}}
        metric_list:
          - {{metric: exact_match, aggregation: mean, higher_is_better: true}}
        metadata: {{version: 1.0}}
        """)
    )
    env = {
        **os.environ,
        "HF_DATASETS_CACHE": str(root / "hfds"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OPENAI_API_KEY": "unused",
    }
    start = time.time()
    done = subprocess.run(
        [python, "-c", LM_EVAL, str(root), url, str(concurrency)], capture_output=True, text=True, env=env, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return start, time.time()


def report(name: str, measured: dict[str, float], ideal: float) -> None:
    print(
        f"{name:<20} span {measured['span']:.2f} s ({ideal / measured['span']:.0%} of ideal), "
        f"end to end {measured['total']:.2f} s (ideal + {measured['total'] - ideal:.2f} s) = "
        f"start-up {measured['startup']:.2f} + span + finish {measured['finish']:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--lm-eval-python")
    args = parser.parse_args()
    ideal = args.latency * args.n / args.concurrency
    print(f"{args.n} requests, {args.latency * 1000:.0f} ms each, concurrency {args.concurrency}: ideal {ideal:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url, log = start_server(root, args.latency)
        try:
            runs = {}
            for name, cache in (("regbench", True), ("regbench --no-cache", False)):
                log.write_text("")
                runs[name] = phases(log, args.latency, *run_regbench(root, url, args.n, args.concurrency, cache))
                assert runs[name]["requests"] == args.n, runs[name]
                report(name, runs[name], ideal)
            if args.lm_eval_python:
                log.write_text("")
                runs["lm-eval"] = phases(
                    log, args.latency, *run_lm_eval(root, args.lm_eval_python, url, args.concurrency)
                )
                assert runs["lm-eval"]["requests"] == args.n, runs["lm-eval"]
                report("lm-eval", runs["lm-eval"], ideal)
                ratio = runs["lm-eval"]["total"] / runs["regbench"]["total"]
                print(f"ratio: lm-eval / regbench end to end = {ratio:.1f}x")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
