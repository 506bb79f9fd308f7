"""Text rules every box format shares: the markup tags models wrap boxes in, and the tidy text left
when boxes are cut out (what text metrics score)."""

from __future__ import annotations

import re

TAGS = re.compile(r"</?(?:ref|box|quad|p)>|<grd>|<ngrd>|<bx_start>|<bx_end>", re.IGNORECASE)
"""The tags of the supported box formats (``<ref>``/``<box>``, ``<quad>``, ``<p>``, ...)."""


def clean_text(text: str) -> str:
    """Tags gone, whitespace collapsed, no space left before punctuation where a box was cut out."""
    return re.sub(r"\s+([.,;:!?。，；：！？])", r"\1", re.sub(r"\s+", " ", TAGS.sub("", text))).strip()
