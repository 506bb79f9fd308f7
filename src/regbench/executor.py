"""``regbench run --executor ray --shards N``: the shards of one run as Ray tasks, merged by the driver.

Each shard is the runner's own ``--shard I/N`` run (:func:`regbench.runner.run_tasks`), executed
as one Ray task with its own response cache file (``cache-shard-I-of-N.sqlite`` next to the
run's cache), so a rerun, or Ray's retry of a shard whose worker died (``max_retries``), resumes
that shard from its cache. When every shard is done, the driver merges each task's shards with
:func:`regbench.merge.merge_shards`, so results.json and samples.jsonl equal an unsharded run's.
Scheduling, retries and placement are Ray's: regbench has no worker pool of its own.

Ray is optional (``pip install 'regbench[ray]'``). Without ``--ray-address`` a local Ray instance
is started for the run (no dashboard, no usage report) and stopped after it; with one, the run
joins that cluster, whose workers must import regbench and see the output directory (a shared
filesystem) and the model's API key variable.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.errors import ModelUnavailableError, RegbenchError
from regbench.merge import merge_shards
from regbench.results import RUN_INFO_FILE, write_run_info
from regbench.runner import RunOptions, RunResult, output_dir, run_tasks
from regbench.spec import ModelSpec, TaskSpec

MAX_RETRIES = 3
"""Times Ray reruns a shard whose worker process died (each rerun resumes from the shard's cache)."""
CONNECT_SECONDS = 5.0
"""How long the address of an existing cluster may take to accept a connection."""
INSTALL_HINT = "--executor ray needs Ray: pip install 'regbench[ray]'"


def shard_cache(options: RunOptions, index: int, count: int) -> Path:
    """Shard ``index`` of ``count``'s response cache: ``cache.sqlite`` → ``cache-shard-I-of-N.sqlite``."""
    base = options.cache or options.output / "cache.sqlite"
    return base.with_name(f"{base.stem}-shard-{index}-of-{count}{base.suffix}")


@dataclass(frozen=True)
class ShardFailure:
    """A user error inside a shard (a spec, data or model problem), carried back to the driver as data:
    the same message and exit code as the unsharded run would give."""

    message: str
    exit_code: int


def _run_shard(
    model: ModelSpec, tasks: Sequence[TaskSpec], options: RunOptions, concurrency: int | None
) -> list[str] | ShardFailure:
    """One shard, inside a Ray worker: the runner, as ``regbench run --shard I/N`` runs it."""
    try:
        return [str(result.directory) for result in run_tasks(model, tasks, options, concurrency=concurrency)]
    except RegbenchError as exc:
        return ShardFailure(str(exc), exc.exit_code)


def run_on_ray(
    model: ModelSpec,
    tasks: Sequence[TaskSpec],
    options: RunOptions,
    *,
    shards: int,
    address: str | None = None,
    concurrency: int | None = None,
) -> list[RunResult]:
    """Run ``tasks`` on ``model`` as ``shards`` Ray tasks, then merge each task's shards into
    ``output_dir(options, ...)``. ``options.shard`` must be unset."""
    if shards < 1:
        raise RegbenchError(f"--shards: expected a whole number of at least 1, got {shards}")
    ray = _import_ray()
    started = time.perf_counter()
    output = options.output.resolve()  # workers need not share the driver's working directory
    base = replace(options, output=output, cache=options.cache.resolve() if options.cache else None)
    with _connected(ray, address, shards):
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_run_shard)
        refs = []
        for index in range(shards):
            shard_options = replace(base, shard=(index, shards), cache=shard_cache(base, index, shards))
            name = f"regbench shard {index}/{shards}"
            refs.append(remote.options(name=name).remote(model, list(tasks), shard_options, concurrency))
        outcomes = _gather(ray, refs)
    failures = [outcome for outcome in outcomes if isinstance(outcome, ShardFailure)]
    if failures:
        worst = max(failures, key=lambda f: f.exit_code)
        error = ModelUnavailableError(worst.message) if worst.exit_code == 3 else RegbenchError(worst.message)
        raise error
    results = []
    for task in tasks:
        directories = [output_dir(replace(base, shard=(i, shards)), model.model, task.task) for i in range(shards)]
        destination = output_dir(base, model.model, task.task)
        merged = merge_shards(directories, destination)
        seconds = time.perf_counter() - started
        hits = sum(_run_info(d).get("cache_hits", 0) for d in directories)
        info = {"executor": "ray", "shards": shards, "seconds_total": round(seconds, 3), "cache_hits": hits}
        write_run_info(destination, {**info, "regbench_version": __version__})
        results.append(RunResult(results=merged, directory=destination, seconds=seconds, cache_hits=hits))
    return results


def _run_info(directory: Path) -> dict[str, Any]:
    try:
        info = json.loads((directory / RUN_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RegbenchError(INSTALL_HINT) from None
    return ray


@contextmanager
def _connected(ray: Any, address: str | None, shards: int) -> Iterator[None]:
    """Ray ready for this run: the caller's own instance if this process is already connected (it is left
    running), else the cluster at ``address``, else a local instance started for the run (stopped after)."""
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report sent home
    settings: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "include_dashboard": False}
    try:
        if address is None:
            ray.init(num_cpus=shards, object_store_memory=100 * 2**20, **settings)
        else:
            ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RegbenchError(f"--executor ray: cannot start or join {where}: {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail within seconds, naming the address, when nothing listens there (``ray.init`` would retry for
    a minute or more). ``auto`` and other non host:port forms are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RegbenchError(
            f"--ray-address {address}: nothing answers there ({reason}); start the cluster "
            "(`ray start --head`) or give the address `ray status` shows"
        ) from None


def _gather(ray: Any, refs: list[Any]) -> list[list[str] | ShardFailure]:
    """Every shard's outcome; a shard that still failed after Ray's retries stops the run (exit 3), naming
    it and saying that a rerun resumes from the caches."""
    outcomes = []
    for index, ref in enumerate(refs):
        try:
            outcomes.append(ray.get(ref))
        except Exception as exc:  # a worker that kept dying, a node lost: Ray's own errors
            raise ModelUnavailableError(
                f"shard {index}/{len(refs)} did not finish after {MAX_RETRIES} retries ({type(exc).__name__}); "
                "run the same command again: every shard resumes from its response cache"
            ) from None
    return outcomes
