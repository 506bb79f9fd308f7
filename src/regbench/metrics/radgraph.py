"""RadGraph F1 through the ``radgraph`` package (optional ``clinical`` extra), from a local model directory.

The package annotates each report with entities (tokens, label) and relations; regbench scores
the annotations itself:

- ``radgraph_f1_simple``, ``radgraph_f1_partial``, ``radgraph_f1_complete``: the package's
  three reward levels (Delbrouck et al.): entity sets (tokens, label); the same with a flag for
  entities that have a relation; and entities plus (entity, relation, target) triples. Per
  report, then averaged; an empty report scores 0.
- ``radgraph_f1_entity``, ``radgraph_f1_relation`` and their mean ``radgraph_f1``: the
  CXR-Report-Metric definition RadCliQ uses (entity set F1 over (tokens, label); relation set F1
  over ((tokens, label), (tokens, label), relation)), which M4CXR reports as "RadGraph F1".

Weights: the extracted ``radgraph.tar.gz`` (config.json, vocabulary/, weights.th) at
``REGBENCH_WEIGHTS_DIR/radgraph``; its config.json names a BERT model, which must be a local
directory or in the Hugging Face cache. radgraph 0.1.18 needs transformers < 5.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from regbench.errors import RegbenchError, WeightsMissingError
from regbench.metrics.base import Metric, Stats, register_metric
from regbench.signature import Signature
from regbench.types import Parsed, Sample
from regbench.weights import REQUIREMENTS, file_digest, hf_cache_snapshot

Annotation = dict[str, Any]  # {"entities": {id: {"tokens", "label", "relations": [[type, target_id], ...]}}}


def _set_f1(pred: set[Any], ref: set[Any]) -> float:
    if not pred or not ref:
        return 0.0
    common = len(pred & ref)
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall) if common else 0.0


def _entities(annotation: Annotation) -> dict[str, Any]:
    return annotation.get("entities", {}) or {}


def reward(pred: Annotation, ref: Annotation, level: str) -> float:
    """The radgraph package's reward of one report pair at ``simple``, ``partial`` or ``complete``.

    As the package computes them: tokens compared as written, except in ``complete``'s relation
    tuples, which are lower-cased.
    """

    def items(annotation: Annotation) -> set[Any]:
        out: set[Any] = set()
        entities = _entities(annotation)
        for entity in entities.values():
            key = (entity["tokens"], entity["label"])
            relations = entity.get("relations") or []
            if level == "simple" or not relations:
                out.add(key)
            elif level == "partial":
                out.add((*key, True))
            else:
                for relation, target in relations:
                    target_tokens = entities.get(str(target), {}).get("tokens", "")
                    out.add((entity["tokens"].lower(), entity["label"], relation, target_tokens.lower()))
        return out

    return _set_f1(items(pred), items(ref))


def entity_relation_f1(pred: Annotation, ref: Annotation) -> tuple[float, float]:
    """CXR-Report-Metric's entity F1 and relation F1 of one report pair."""

    def entity_set(annotation: Annotation) -> set[Any]:
        return {(e["tokens"], e["label"]) for e in _entities(annotation).values()}

    def relation_set(annotation: Annotation) -> set[Any]:
        entities = _entities(annotation)
        out = set()
        for entity in entities.values():
            for relation, target in entity.get("relations", []):
                other = entities.get(str(target))
                if other is not None:
                    out.add(((entity["tokens"], entity["label"]), (other["tokens"], other["label"]), relation))
        return out

    return _set_f1(entity_set(pred), entity_set(ref)), _set_f1(relation_set(pred), relation_set(ref))


def radgraph_scores(pred: Annotation, ref: Annotation) -> dict[str, float]:
    """Every RadGraph key for one report pair."""
    entity, relation = entity_relation_f1(pred, ref)
    return {
        "radgraph_f1_simple": reward(pred, ref, "simple"),
        "radgraph_f1_partial": reward(pred, ref, "partial"),
        "radgraph_f1_complete": reward(pred, ref, "complete"),
        "radgraph_f1_entity": entity,
        "radgraph_f1_relation": relation,
        "radgraph_f1": (entity + relation) / 2,
    }


class RadGraphOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    model_dir: str | None = None
    """The extracted RadGraph model directory; default REGBENCH_WEIGHTS_DIR/radgraph."""


class Annotator:
    """The radgraph package's model, loaded from a local directory only."""

    def __init__(self, model_dir: Path) -> None:
        try:
            from radgraph import RadGraph
        except ImportError as exc:
            message = f"radgraph metrics need the `clinical` extra (pip install 'regbench[clinical]'): {exc}"
            raise RegbenchError(message) from None
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the device
            # radgraph 0.1.18 annotates one report per forward pass whatever batch_size says.
            self.model = RadGraph(model_type=model_dir.name, model_cache_dir=str(model_dir.parent))

    def __call__(self, reports: Sequence[str]) -> list[Annotation]:
        annotations: list[Annotation] = []
        texts = [r if r.strip() else "" for r in reports]
        with contextlib.redirect_stdout(io.StringIO()):
            result = self.model([t for t in texts if t]) if any(texts) else {}
        it = iter(result.values()) if isinstance(result, dict) else iter(result)
        for text in texts:
            annotations.append(next(it) if text else {"entities": {}})
        return annotations


def _model_names(node: Any) -> set[str]:
    """Every ``model_name`` in a RadGraph config.json (the BERT its embedder and indexer load)."""
    if isinstance(node, dict):
        names = {v for k, v in node.items() if k == "model_name" and isinstance(v, str)}
        return names.union(*(_model_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_model_names(v) for v in node))
    return set()


def _require_bert(config_file: Path) -> None:
    """The BERT a RadGraph config names must be here before scoring starts: the package would
    otherwise fail after every model call, in a traceback about connecting to the hub."""
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegbenchError(f"radgraph: {config_file} is not readable JSON ({exc})") from None
    for name in sorted(_model_names(config)):
        if not Path(name).expanduser().exists() and hf_cache_snapshot(name) is None:
            raise WeightsMissingError(
                f"radgraph: {config_file} names the BERT model {name!r}, which is neither a local directory nor in "
                f"the Hugging Face cache (regbench never downloads). Put the Hugging Face repository {name} in "
                "the cache (`huggingface-cli download` on a machine with network, then copy ~/.cache/huggingface), "
                "or set model_name in that config.json to a local directory holding it."
            )


@register_metric("radgraph")
class RadGraph(Metric):
    """RadGraph F1 at the simple / partial / complete reward levels, and entity / relation F1."""

    keys = {
        "radgraph_f1_simple": True,
        "radgraph_f1_partial": True,
        "radgraph_f1_complete": True,
        "radgraph_f1_entity": True,
        "radgraph_f1_relation": True,
        "radgraph_f1": True,
    }
    Options = RadGraphOptions

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        opts: RadGraphOptions = self.options  # type: ignore[assignment]
        modality = (self.context.modality or "").lower()
        if modality and modality not in {"chest_xray", "cxr", "chest x-ray", "xray", "x-ray"}:
            warnings.warn(f"radgraph is a chest X-ray metric; task {self.context.task} is {modality}", stacklevel=2)
        self.model_dir = Path(opts.model_dir) if opts.model_dir else REQUIREMENTS["radgraph"].require()
        if not (self.model_dir / "config.json").is_file():
            raise RegbenchError(f"radgraph: {self.model_dir} is not an extracted RadGraph model (no config.json)")
        _require_bert(self.model_dir / "config.json")
        self._annotate: Annotator | None = None
        self._digest: str | None = None

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        if self._annotate is None:
            self._annotate = Annotator(self.model_dir)

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        self.prepare()
        assert self._annotate is not None
        annotations = self._annotate([p.text for p, _ in items] + [s.answer for _, s in items])
        n = len(items)
        return [radgraph_scores(annotations[i], annotations[n + i]) for i in range(n)]

    def _weights_digest(self) -> str:
        """Which RadGraph weights scored: the package wants the directory named ``radgraph``, so only
        a hash of weights.th tells two models apart (computed once)."""
        if self._digest is None:
            weights = self.model_dir / "weights.th"
            self._digest = file_digest(weights) if weights.is_file() else "none"
        return self._digest

    def signature(self, key: str | None = None) -> Signature:
        """The model directory's name, its weights by hash and the radgraph package version."""
        parts = [
            ("model", self.model_dir.name),
            ("weights", self._weights_digest()),
            ("radgraph", importlib.metadata.version("radgraph")),
        ]
        return Signature.for_plugin(self.name, key, parts)
