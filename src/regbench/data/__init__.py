"""Dataset loaders: the canonical JSONL, and (later) readers for public formats."""

from regbench.data import jsonl as _jsonl  # noqa: F401  (registers the canonical loader)
from regbench.data.base import LOADERS, Loader, load_samples

__all__ = ["LOADERS", "Loader", "load_samples"]
