"""Model output → structure: boxes in every family's format, answers, report text."""

from regbench.parsing.base import BOX_FORMATS, BoxFormat, Extraction, get_box_format, parse_output

__all__ = ["BOX_FORMATS", "BoxFormat", "Extraction", "get_box_format", "parse_output"]

from regbench.parsing import boxes as _boxes  # noqa: F401  (registers the box formats)
from regbench.parsing import medrega_released as _medrega_released  # noqa: F401  (registers medrega_released)
