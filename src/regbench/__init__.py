"""regbench: evaluation harness for medical vision-language models.

The public API is re-exported here; everything else is an implementation detail.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# A hub lookup with no network stalls for minutes before failing; weights come from local
# paths only, so make the Hugging Face libraries offline unless the user decided otherwise.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

__all__ = ["__version__"]
