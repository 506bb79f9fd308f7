"""Text rules every box format shares: the markup tags models wrap boxes in, and the tidy text left
when boxes are cut out (what text metrics score)."""

from __future__ import annotations

import operator
import re

TAGS = re.compile(r"</?(?:ref|box|quad|p)>|<grd>|<ngrd>|<bx_start>|<bx_end>", re.IGNORECASE)
"""The tags of the supported box formats (``<ref>``/``<box>``, ``<quad>``, ``<p>``, ...)."""


SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?。，；：！？])")
_PUNCTUATION = operator.itemgetter(1)


def clean_text(text: str) -> str:
    """Tags gone, whitespace collapsed, no space left before punctuation where a box was cut out."""
    if "<" in text:  # every tag starts with one
        text = TAGS.sub("", text)
    # the punctuation by a C callable: a backreference template costs more than the whole substitution
    return _SPACE_BEFORE_PUNCTUATION.sub(_PUNCTUATION, SPACES.sub(" ", text)).strip()
