"""Replay recorded outputs from a predictions JSONL instead of querying a model.

Each line is ``{"id": ..., "output": "..."}``; for a multi-turn task ``output`` may be a
list with one answer per turn. A line lm-eval's ``--log_samples`` wrote for a task of
``regbench export lm-eval`` is read too: the id of its ``doc``, its ``filtered_resps`` (the answer
its metrics were computed on). The model YAML's ``path`` may contain ``{task}``, so one
model YAML serves recordings of several tasks. Relative paths resolve against the YAML.
For a task with ``samples_per_question: M`` a line also holds ``"samples": [{"output": ..., "logprobs":
[...]}, ...]``, answer ``k`` of the question replayed from entry ``k`` (``logprobs``, the answer's token
log-probabilities, may be left out or null).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from regbench.errors import DataError, SpecError
from regbench.models.base import ModelAdapter, Request, spec_file
from regbench.spec import ModelSpec
from regbench.types import Response


class ReplayAdapter(ModelAdapter):
    """Returns the recorded output for each sample id (and turn)."""

    cacheable: ClassVar[bool] = False
    immediate: ClassVar[bool] = True

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        super().__init__(spec, concurrency=concurrency)
        if not spec.path:
            raise SpecError(spec_file(spec), "path", "the replay adapter needs `path` (a predictions JSONL file)")
        self._recordings: dict[str, dict[str, str | list[str]]] = {}
        self._sampled: dict[str, dict[str, list[Response]]] = {}

    def file_for(self, task: str) -> Path:
        assert self.spec.path is not None
        path = Path(self.spec.path.replace("{task}", task))
        if not path.is_absolute() and self.spec.source is not None:
            path = self.spec.source.parent / path
        return path

    def recordings(self, task: str) -> dict[str, str | list[str]]:
        if task not in self._recordings:
            self._recordings[task] = read_predictions(self.file_for(task))
        return self._recordings[task]

    def sampled(self, task: str) -> dict[str, list[Response]]:
        """Per sample id its recorded ``samples`` (answers of a ``samples_per_question`` task)."""
        if task not in self._sampled:
            self._sampled[task] = read_sampled(self.file_for(task))
        return self._sampled[task]

    def check(self, task: str, sample_ids: Sequence[str], *, subset: bool, turns: int = 1) -> list[str]:
        """Read the predictions now, so a malformed or empty file stops the run with its line number."""
        recorded = self.recordings(task)
        path = self.file_for(task)
        if not recorded:
            raise DataError(f'{path}: no predictions in the file (expected {{"id": ..., "output": ...}} lines)')
        notes = []
        missing = [i for i in sample_ids if i not in recorded]
        if sample_ids and len(missing) == len(sample_ids):
            raise DataError(
                f"{path}: none of its {len(recorded)} ids is a sample of task {task} (e.g. {next(iter(recorded))!r}"
                f" vs {sample_ids[0]!r}): is it the predictions file of another task?"
            )
        if missing:
            notes.append(
                f"{path}: no output for {len(missing)} of {len(sample_ids)} samples of {task} "
                f"(e.g. {missing[0]!r}); they are scored as errors"
            )
        longer = [i for i in sample_ids if isinstance(recorded.get(i), list) and len(recorded[i]) > turns]
        if longer:  # the answer to the last turn is scored: extra outputs would be silently ignored
            notes.append(
                f"{path}: {len(longer)} outputs are lists longer than the task's {turns} turn(s) (e.g. {longer[0]!r}); "
                f"only the first {turns} are used"
            )
        unknown = [] if subset else sorted(set(recorded) - set(sample_ids))
        if unknown:
            notes.append(f"{path}: {len(unknown)} ids are not in task {task} and are ignored (e.g. {unknown[0]!r})")
        return notes

    async def generate(self, request: Request) -> Response:
        if request.generation.logprobs:  # a sampled answer (samples_per_question)
            if request.turn > 0:
                return Response(error="recorded samples answer single-turn tasks only")
            answers = self.sampled(request.task).get(request.sample_id, [])
            if request.sample >= len(answers):
                return Response(error=f"no recorded sample {request.sample} for sample {request.sample_id!r}")
            return answers[request.sample]
        recorded = self.recordings(request.task).get(request.sample_id)
        if recorded is None:
            return Response(error=f"no recorded output for sample {request.sample_id!r}")
        if isinstance(recorded, list):
            if request.turn >= len(recorded):
                return Response(error=f"no recorded output for turn {request.turn} of {request.sample_id!r}")
            return Response(text=recorded[request.turn])
        return Response(text=recorded)

    def fingerprint(self) -> str:
        return f"replay:{self.spec.path}"


def read_predictions(path: Path) -> dict[str, str | list[str]]:
    """Read a predictions JSONL (``{"id", "output"}`` per line) into id -> output."""
    if not path.is_file():
        raise DataError(f"predictions file not found: {path}")
    outputs: dict[str, str | list[str]] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if isinstance(record, dict) and "filtered_resps" in record and "doc" in record:
            record = _lm_eval_sample(record, f"{path}:{number}")
        if not isinstance(record, dict) or "id" not in record or "output" not in record:
            raise DataError(f'{path}:{number}: expected {{"id": ..., "output": ...}}')
        output = record["output"]
        if output is None:
            output = ""
        if isinstance(output, list):  # one answer per turn; a null turn is empty, as a null output is
            output = ["" if turn is None else turn for turn in output]
        turns = output if isinstance(output, list) else [output]
        if not all(isinstance(turn, str) for turn in turns):
            raise DataError(f"{path}:{number}: output must be a string or a list of strings")
        key = str(record["id"])
        if key in outputs:
            raise DataError(f"{path}:{number}: id {key!r} appears twice")
        outputs[key] = output
    return outputs


def _lines(text: str) -> Iterator[str]:
    """``text.split("\\n")`` one line at a time (no list of a million lines beside the text); not
    splitlines: U+2028 may sit in a string."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _lm_eval_sample(record: dict[str, Any], where: str) -> dict[str, Any]:
    """A sample lm-eval logged (``--log_samples``) as a prediction: the document's regbench id and the
    answer its metrics saw (``filtered_resps``; lm-eval's unfiltered answers are ``resps``)."""
    doc = record["doc"]
    if not isinstance(doc, dict) or "id" not in doc or "sample" not in doc:
        raise DataError(
            f"{where}: an lm-eval sample whose document has no regbench id: only the samples of tasks written by "
            "`regbench export lm-eval` can be scored"
        )
    answer = record["filtered_resps"]
    while isinstance(answer, list) and len(answer) == 1:  # one answer per document: [text] (or [[text]])
        answer = answer[0]
    if not isinstance(answer, str):
        raise DataError(f"{where}: filtered_resps holds no single answer: {json.dumps(answer)[:200]}")
    return {"id": doc["id"], "output": answer}


def read_sampled(path: Path) -> dict[str, list[Response]]:
    """The ``samples`` lists of a predictions JSONL (already checked line by line by :func:`read_predictions`)."""
    found: dict[str, list[Response]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "samples" not in record:
            continue
        entries = record["samples"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "output" in e for e in entries):
            raise DataError(f'{path}:{number}: samples must be a list of {{"output": ..., "logprobs": [...]}}')
        answers = []
        for entry in entries:
            logprobs = entry.get("logprobs")
            numbers = isinstance(logprobs, list) and all(isinstance(v, int | float) for v in logprobs)
            if logprobs is not None and not numbers:
                raise DataError(f"{path}:{number}: a sample's logprobs must be a list of numbers or null")
            output = entry["output"]
            if not isinstance(output, str):
                raise DataError(f"{path}:{number}: a sample's output must be a string")
            answers.append(Response(text=output, logprobs=None if logprobs is None else [float(v) for v in logprobs]))
        found[str(record["id"])] = answers
    return found
