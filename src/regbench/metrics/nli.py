"""Natural-language inference for semantic clustering: (premise, hypothesis) pairs in, verdicts out.

Clustering (:mod:`regbench.metrics.uncertainty`) needs only an :data:`Entails` function, so any NLI
source can serve it. :class:`LocalNLI` is a sequence-classification checkpoint on transformers
(DeBERTa-MNLI style), loaded strictly from a local directory: a checkpoint whose weights do not
cover the model (a missing classifier head that transformers would fill with random numbers) or
whose labels name no entailment class is refused. Verdicts are cached by checkpoint and pair in
SQLite, so a rerun classifies nothing again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from regbench.errors import RegbenchError
from regbench.weights import file_digest

Verdict = str
"""``entailment``, ``neutral`` or ``contradiction``."""
Entails = Callable[[Sequence[tuple[str, str]]], list[Verdict]]
"""An NLI source: one verdict per (premise, hypothesis) pair, in order."""

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _verdict(label: str) -> Verdict | None:
    name = label.lower()
    for verdict in ("entail", "neutral", "contradict"):
        if verdict in name:
            return {"entail": "entailment", "neutral": "neutral", "contradict": "contradiction"}[verdict]
    return None


class LocalNLI:
    """An NLI checkpoint directory on transformers, with a persistent verdict cache (``cache``: a file)."""

    def __init__(self, directory: Path, *, device: str = "auto", batch_size: int = 32, cache: Path | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.directory = directory
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(directory)
            model, info = AutoModelForSequenceClassification.from_pretrained(directory, output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise RegbenchError(f"semantic_entropy: cannot load the NLI checkpoint {directory}: {exc}") from None
        missing = [*info.get("missing_keys", []), *(k for k, *_ in info.get("mismatched_keys", []))]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise RegbenchError(
                f"semantic_entropy: the NLI checkpoint {directory} lacks weights the model needs ({shown}); "
                "transformers would fill them with random numbers: give a fine-tuned NLI checkpoint"
            )
        labels = {int(i): _verdict(str(name)) for i, name in model.config.id2label.items()}
        if "entailment" not in labels.values():
            names = ", ".join(str(n) for n in model.config.id2label.values())
            raise RegbenchError(
                f"semantic_entropy: {directory} is not an NLI checkpoint: its labels ({names}) name no entailment "
                "class (config.json id2label)"
            )
        self.labels = labels
        self.model = model.to(device).eval()
        self.fingerprint = self._fingerprint()
        self.computed = 0
        """Pairs classified by the model (not from the cache) since loading."""
        self._db = _open_cache(cache) if cache is not None else None

    def _fingerprint(self) -> str:
        weights = next((self.directory / f for f in _WEIGHT_FILES if (self.directory / f).is_file()), None)
        digest = file_digest(weights) if weights is not None else "sharded"
        config = json.dumps(self.model.config.to_dict(), sort_keys=True, default=str)
        vocab = json.dumps(sorted(self.tokenizer.get_vocab().items()))
        return f"{digest}-{hashlib.sha256((config + vocab).encode()).hexdigest()[:8]}"

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        unique = list(dict.fromkeys(pairs))
        found = self._cached(unique)
        todo = [p for p in unique if p not in found]
        if todo:
            computed = self._run(todo)
            found.update(computed)
            self._store(computed)
        return [found[p] for p in pairs]

    def _run(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Verdict]:
        import torch

        self.computed += len(pairs)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out: dict[tuple[str, str], Verdict] = {}
        for start in range(0, len(order), self.batch_size):
            batch = [pairs[i] for i in order[start : start + self.batch_size]]
            encoded = self.tokenizer(
                [p for p, _ in batch],
                [h for _, h in batch],
                truncation=True,
                max_length=512,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                predicted = self.model(**encoded).logits.argmax(dim=-1).tolist()
            for pair, index in zip(batch, predicted, strict=True):
                out[pair] = self.labels.get(index) or "neutral"  # a class that is none of the three entails nothing
        return out

    def _cached(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Verdict]:
        if self._db is None:
            return {}
        found = {}
        for premise, hypothesis in pairs:
            row = self._db.execute(
                "SELECT verdict FROM verdicts WHERE model = ? AND premise = ? AND hypothesis = ?",
                (self.fingerprint, premise, hypothesis),
            ).fetchone()
            if row:
                found[(premise, hypothesis)] = row[0]
        return found

    def _store(self, verdicts: dict[tuple[str, str], Verdict]) -> None:
        if self._db is not None and verdicts:
            self._db.executemany(
                "INSERT OR REPLACE INTO verdicts (model, premise, hypothesis, verdict) VALUES (?, ?, ?, ?)",
                [(self.fingerprint, p, h, v) for (p, h), v in verdicts.items()],
            )


def _open_cache(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS verdicts (model TEXT, premise TEXT, hypothesis TEXT, verdict TEXT, "
        "PRIMARY KEY (model, premise, hypothesis))"
    )
    return db


_LOADED: dict[tuple[str, str, int, str], LocalNLI] = {}


def local_nli(directory: Path, *, device: str, batch_size: int, cache: Path | None) -> LocalNLI:
    """One loaded checkpoint per (directory, device, batch size, cache) in a process."""
    key = (str(directory.resolve()), device, batch_size, str(cache))
    if key not in _LOADED:
        _LOADED[key] = LocalNLI(directory, device=device, batch_size=batch_size, cache=cache)
    return _LOADED[key]


def loaded() -> dict[tuple[str, str, int, str], LocalNLI]:
    """The checkpoints loaded in this process (tests count the pairs each classified)."""
    return _LOADED
