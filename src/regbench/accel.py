"""Optional compiled kernels (``pip install regbench[fast]``, numba): used when numba imports and a
batch is large enough to repay loading them (:data:`MIN_SIZE`), else the numpy path.

One switch for every kernel: the region metrics' (:mod:`regbench.metrics._kernels`) and the
released MedRegA reading's (:mod:`regbench.parsing._released_kernels`), each imported by its user
when :func:`enabled` says so. The kernels give the
very results of the numpy path (tests compare the two), so the switch is about speed only.
``REGBENCH_NUMBA=0`` turns them off; :func:`numba_disabled` does so for a block (the benchmark
times both paths in one process). numba is imported on first use, not with regbench: its
import is slow.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

_enabled = os.environ.get("REGBENCH_NUMBA", "1") != "0"
MIN_SIZE = 25_000
"""Samples below which the numpy path runs anyway: loading numba and its cached machine code, once per
process, costs more than the kernels save on fewer samples (docs/benchmarks.md)."""


@functools.cache
def available() -> bool:
    """numba is installed (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


def enabled(size: int) -> bool:
    """Whether scoring ``size`` samples uses the compiled kernels now."""
    return _enabled and size >= MIN_SIZE and available()


@contextmanager
def numba_disabled(disabled: bool = True) -> Iterator[None]:
    """Run a block on the numpy path (``disabled=False``: leave the setting as it is)."""
    global _enabled
    before = _enabled
    _enabled = before and not disabled
    try:
        yield
    finally:
        _enabled = before
