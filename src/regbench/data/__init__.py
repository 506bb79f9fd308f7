"""Dataset loaders: the canonical JSONL, and (later) readers for public formats.

Built-in readers are listed lazily (``"module:Class"``), imported when a task names them;
other packages add theirs through the ``regbench.loaders`` entry-point group.
"""

from regbench.data.base import LOADERS, Loader, NoLoaderOptions, build_loader, load_samples, register_loader

_BUILTIN = {
    "jsonl": "regbench.data.jsonl:JsonlLoader",
}
for _name, _target in _BUILTIN.items():
    LOADERS.add(_name, _target)

__all__ = ["LOADERS", "Loader", "NoLoaderOptions", "build_loader", "load_samples", "register_loader"]
