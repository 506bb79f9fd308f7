"""Test servers run as real processes on 127.0.0.1, and helpers to start them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPENAI_SERVER = Path(__file__).parent / "openai_server.py"


@dataclass
class RunningServer:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def requests(self) -> list[dict[str, Any]]:
        """Every request the server has logged so far."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def start_openai_server(
    tmp: Path,
    latency: float = 0.0,
    name: str = "server",
    script: list[dict[str, Any]] | None = None,
    require_key: str | None = None,
    redirect: str | None = None,
    served: list[str] | None = None,
    models: bool = True,
) -> RunningServer:
    """Start tests/servers/openai_server.py on a free port and wait until it listens."""
    ready, log = tmp / f"{name}.port", tmp / f"{name}.log"
    command = [sys.executable, str(OPENAI_SERVER), "--latency", str(latency), "--log", str(log), "--ready", str(ready)]
    if script is not None:
        (tmp / f"{name}.script.json").write_text(json.dumps(script))
        command += ["--script", str(tmp / f"{name}.script.json")]
    if require_key is not None:
        command += ["--require-key", require_key]
    if redirect is not None:
        command += ["--redirect", redirect]
    if served is not None:
        command += ["--served", ",".join(served)]
    if not models:
        command.append("--no-models")
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return RunningServer(f"http://127.0.0.1:{ready.read_text()}/v1", log, process)


@contextmanager
def blackholed_port() -> Iterator[int]:
    """A port whose listen queue is full, so a connection to it times out (like a host that is down)."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # takes the queue's one place; nothing accepts it
        yield port


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
