"""regbench: evaluation harness for medical vision-language models.

The public API is the names in ``__all__``; everything else is an implementation detail. They are
imported on first use (``regbench.run_tasks`` imports the runner then), so ``import regbench`` and
``regbench --help`` stay light.

- records: ``Sample``, ``Region``, ``Parsed``, ``Message``, ``Response``, ``Results``, ``SampleRecord``,
  ``Signature``
- specs: ``TaskSpec``, ``ModelSpec``, ``load_spec``, ``resolve_tasks``, ``resolve_model``
- running: ``RunOptions``, ``RunResult``, ``run_tasks``, ``evaluate``
- extending: ``Metric``, ``MetricContext``, ``register_metric``, ``METRICS``, ``build_plugins``,
  ``Loader``, ``register_loader``, ``LOADERS``, ``load_samples``, ``load_split``, ``BOX_FORMATS``,
  ``get_box_format``, ``parse_output``, ``ModelAdapter``, ``ADAPTERS``, ``build_adapter``
- after a run: ``read_results``, ``read_samples``, ``compare_runs``, ``evaluate_gates``
- errors: ``RegbenchError`` (every user-facing error; exit code 2 on the command line)
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# A hub lookup with no network stalls for minutes before failing; weights come from local
# paths only, so make the Hugging Face libraries offline unless the user decided otherwise.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

_PUBLIC = {
    "regbench.types": ("Sample", "Region", "Parsed", "Message", "Response"),
    "regbench.signature": ("Signature",),
    "regbench.results": ("Results", "SampleRecord", "read_results", "read_samples"),
    "regbench.spec": ("TaskSpec", "ModelSpec", "load_spec"),
    "regbench.resolve": ("resolve_tasks", "resolve_model"),
    "regbench.runner": ("RunOptions", "RunResult", "run_tasks", "evaluate"),
    "regbench.metrics": ("Metric", "MetricContext", "register_metric", "METRICS", "build_plugins"),
    "regbench.data": ("Loader", "register_loader", "LOADERS", "load_samples", "load_split"),
    "regbench.parsing": ("BOX_FORMATS", "get_box_format", "parse_output"),
    "regbench.models": ("ModelAdapter", "ADAPTERS", "build_adapter"),
    "regbench.stats": ("compare_runs",),
    "regbench.gate": ("evaluate_gates",),
    "regbench.errors": ("RegbenchError",),
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'regbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
