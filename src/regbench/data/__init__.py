"""Dataset loaders: the canonical JSONL, and readers of public datasets in their publishers' layouts.

Built-in readers are listed lazily (``"module:Class"``), imported when a task names them;
other packages add theirs through the ``regbench.loaders`` entry-point group.
"""

from regbench.data.base import (
    LOADERS,
    LoadedSplit,
    Loader,
    NoLoaderOptions,
    SplitChunks,
    build_loader,
    load_samples,
    load_split,
    register_loader,
)
from regbench.data.readers import READERS

_BUILTIN = {
    "jsonl": "regbench.data.jsonl:JsonlLoader",
    **READERS,
}
for _name, _target in _BUILTIN.items():
    LOADERS.add(_name, _target)

__all__ = [
    "LOADERS",
    "LoadedSplit",
    "Loader",
    "NoLoaderOptions",
    "SplitChunks",
    "build_loader",
    "load_samples",
    "load_split",
    "register_loader",
]
