"""What the ``utils.py`` of a task written by ``regbench export lm-eval`` calls inside lm-eval.

lm-eval loads the exported task's documents (:meth:`ExportedTask.load_docs`), hands each its images
(:meth:`ExportedTask.doc_to_image`), passes all the answers of the task through a filter
(:meth:`ExportedTask.score_all`), which reads them with regbench's parser (the export's box format,
every reading the plugins declare) and computes the plugins' statistics of the whole split in one
batch, as ``regbench score`` does; :meth:`ExportedTask.process_results` then returns, for each
document and every metric key, the sample's statistics of the plugin that reports the key. lm-eval
then calls one aggregation function per key with the list of those statistics;
:meth:`ExportedTask.aggregate` puts the split back together (``Metric.rejoin``: CIDEr-D's document
frequencies) and runs the plugin's ``finalize``, so corpus metrics are what ``regbench score``
computes, not means of per-sample values.

The task, its metric plugins (suites expanded, options resolved) and its box format come from the
manifest the export wrote (``regbench.json``); nothing is looked up in regbench's spec directories.
lm-eval executes ``utils.py`` once per ``!function`` reference, so the state of an exported task
lives here, one :class:`ExportedTask` per directory (:func:`exported`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.errors import DataError
from regbench.metrics import Metric, Stats, build_plugins
from regbench.models.images import load_images
from regbench.parsing.readings import read_outputs
from regbench.spec import TaskSpec
from regbench.types import Sample

MANIFEST = "regbench.json"
"""The exported task's manifest: regbench's version, the task, the box format, the signatures."""

_TASKS: dict[Path, ExportedTask] = {}
_LOCK = threading.Lock()


def exported(directory: Path | str) -> ExportedTask:
    """The exported task in ``directory`` (one instance per directory, however often utils.py runs)."""
    path = Path(directory).resolve()
    with _LOCK:
        if path not in _TASKS:
            _TASKS[path] = ExportedTask(path)
        return _TASKS[path]


class ExportedTask:
    """One exported task: its documents, its plugins, and lm-eval's hooks over them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{directory / MANIFEST}: not a task exported by regbench ({exc})") from None
        self.manifest: dict[str, Any] = manifest
        self.task = TaskSpec.model_validate(manifest["task"])
        self.box_format: str = manifest["box_format"]
        self.data = directory / manifest["data"]
        if manifest.get("regbench_version") != __version__:
            warnings.warn(
                f"{directory.name}: exported by regbench {manifest.get('regbench_version')}, scored with regbench "
                f"{__version__}: export it again if the metrics changed between them",
                stacklevel=2,
            )
        self._plugins: list[Metric] | None = None
        self._owner: dict[str, Metric] = {}
        self._finalized: dict[tuple[str, str], dict[str, float]] = {}
        self._scored: dict[tuple[str, str], dict[str, Stats]] = {}
        self._lock = threading.Lock()

    # -- documents ------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The exported documents, one per sample, in the task's order."""
        text = self.data.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n") if line.strip()]

    def load_docs(self, **_metadata: Any) -> Any:
        """lm-eval's ``custom_dataset``: the documents as a ``datasets`` split named ``test`` (read in memory,
        so nothing goes to the datasets cache; lm-eval passes its metadata, which is not needed)."""
        import datasets

        return datasets.DatasetDict({"test": datasets.Dataset.from_list(self.rows())})

    @staticmethod
    def sample(doc: dict[str, Any]) -> Sample:
        """The regbench sample a document was written from."""
        return Sample.model_validate_json(doc["sample"])

    def doc_to_image(self, doc: dict[str, Any]) -> list[Any]:
        """The document's images as PIL images (a ``.npy`` volume as its axial slices)."""
        return [image for path in doc["images"] for image in load_images(path, {})]

    # -- scoring ----------------------------------------------------------------------------
    def plugins(self) -> list[Metric]:
        """The task's plugins, built once and prepared with every exported sample."""
        with self._lock:
            if self._plugins is None:
                plugins = build_plugins(self.task)
                samples = [self.sample(row) for row in self.rows()]
                for plugin in plugins:
                    plugin.prepare(samples)
                self._owner = {key: plugin for plugin in plugins for key in plugin.output_keys()}
                self._plugins = plugins
            return self._plugins

    def score_all(self, responses: Sequence[Any], docs: Sequence[dict[str, Any]]) -> list[str]:
        """lm-eval's filter over every answer of the task at once (after ``take_first``): the statistics of
        the whole split in one batch, as ``regbench score`` computes them (one PTB tokenizer and METEOR
        pass, not one per sample), kept for :meth:`process_results`. The answers pass through unchanged."""
        outputs = [_answer(response) for response in responses]
        for doc, output, values in zip(docs, outputs, self._values(outputs, docs), strict=True):
            self._scored[(doc["id"], output)] = values
        return outputs

    def process_results(self, doc: dict[str, Any], results: Sequence[Any]) -> dict[str, Stats]:
        """lm-eval's ``process_results``: every key -> the sample's stats of the plugin that reports it
        (from :meth:`score_all`; computed for this one sample when the filter did not run)."""
        output = _answer(results)
        values = self._scored.pop((doc["id"], output), None)
        return values if values is not None else self._values([output], [doc])[0]

    def _values(self, outputs: Sequence[str], docs: Sequence[dict[str, Any]]) -> list[dict[str, Stats]]:
        plugins = self.plugins()
        readings = read_outputs(
            outputs,
            [self.sample(doc) for doc in docs],
            box_format=self.box_format,
            expect_boxes=self.task.boxes_expected,
            reads={plugin.reads for plugin in plugins},
        )
        values: list[dict[str, Stats]] = [{} for _ in outputs]
        for plugin in plugins:
            for row, stats in zip(values, plugin.stats_batch(readings.items(plugin.reads)), strict=True):
                record = dict(stats)  # one record for all the plugin's keys
                row.update({key: record for key in plugin.output_keys()})
        return values

    def aggregate(self, key: str, items: Sequence[Stats]) -> float:
        """lm-eval's aggregation of ``key``: the plugin's ``finalize`` over the split's stats (NaN where
        regbench reports no value, e.g. closed-question accuracy without closed questions)."""
        self.plugins()
        plugin = self._owner[key]
        stats = [dict(s) for s in items]
        # each key of a plugin gets the same list: finalize once (METEOR asks a Java process)
        digest = hashlib.sha256(json.dumps(stats, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            values = self._finalized.get((plugin.name, digest))
            if values is None:
                values = plugin.finalize(plugin.rejoin(stats)) if stats else {}
                self._finalized[(plugin.name, digest)] = values
        return float(values[key]) if key in values else math.nan


def _answer(response: Any) -> str:
    """One answer from what lm-eval holds for a document (a string, or a list of one per repeat)."""
    while isinstance(response, list | tuple):
        response = response[0] if response else ""
    return response if isinstance(response, str) else ""
