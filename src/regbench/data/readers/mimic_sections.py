"""Sections of a MIMIC-CXR free-text report, by the rules of the official MIMIC-CXR section parser
(MIT-LCP/mimic-cxr ``txt/section_parser.py``), written anew from their description:

- A header is a newline, one space, then upper-case letters, spaces and ``()/,-``, a colon and one
  whitespace character (``\\n ([A-Z ()/,-]+):\\s``). A section runs from the end of its header to the
  start of the next one; the text before the first header is the ``preamble``; a report with no
  header is one ``full report`` section.
- Names are lower-cased, stripped and normalised: a table of known names and misspellings first,
  then any name containing ``impression``, ``findings``, ``history``, ``comparison`` or ``addendum``
  (in that order) becomes that word, then a name describing views of the study (``chest``,
  ``portable``, ``pa and lateral``, ...) becomes ``findings``.
- Blank ``findings`` and ``impression`` sections are dropped.

The official parser's extra ``last_paragraph`` section (made when a report has neither findings nor
impression) is not made: regbench never asks for it. Its per-study overrides
(``create_section_files.py``) are not applied either (docs/datasets.md).
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")
_SPACE = re.compile(r"\s+")

# Known header names (lower case) and the section each stands for, misspellings included; the odd
# `ndication` -> impression is as the official table has it.
_NAMES: dict[str, str] = {
    alias: section
    for section, aliases in {
        "impression": (
            "impression", "conclusion", "findings and impression", "findings/impression", "findings/ impression",
            "impresson", "imprression", "imoression", "impressoin", "imprssion", "impresion", "imperssion",
            "mpression", "impession", "ndication",
        ),
        "findings": (
            "findings", "finding", "chest, two views", "reference findings", "findins", "findindgs", "findgings",
            "findngs", "findnings", "finidngs",
        ),
        "comparison": (
            "comparison", "comparisons", "comparison exam", "comparison film", "reference exam", "comparision",
            "comparsion", "comparrison", "comparisions",
        ),
        "indication": ("indication", "reason for examination", "reason for exam", "clinical indication", "idication"),
        "history": ("history", "clinical history", "clinical information", "patient history", "pfi"),
        "examination": ("examination", "exam", "type of examination"),
        "recommendations": ("recommendations", "recommendation", "recommendation(s)"),
        "wet read": ("wet read", "wetread"),
        "technique": ("technique",),
        "notification": ("notification",),
        "addendum": ("addendum",),
        "date": ("date",),
        "comment": ("comment",),
        "preamble": ("preamble",),
    }.items()
    for alias in aliases
}  # fmt: skip
_MAIN = ("impression", "findings", "history", "comparison", "addendum")
_VIEWS = re.compile(
    "chest|portable|pa and lateral|lateral and pa|ap and lateral|lateral and ap|frontal and|two views|frontal view"
    "|pa view|ap view|one view|lateral view|bone window|frontal upright|frontal semi-upright|ribs|pa and lat"
)


def normalise_name(header: str) -> str:
    """The section a header names: ``"IMPRESSON"`` -> ``impression``, ``"CHEST (PA AND LAT)"`` -> ``findings``."""
    name = header.lower().strip()
    known = _NAMES.get(name)
    if known is not None:
        return known
    for main in _MAIN:
        if main in name:
            return main
    return "findings" if _VIEWS.search(name) else name


def sections(report: str) -> list[tuple[str, str]]:
    """The report's ``(normalised name, text)`` sections in order, blank findings/impression dropped.

    Texts are as in the report (not stripped); a header's trailing whitespace character is not part
    of its section.
    """
    headers = list(_HEADER.finditer(report))
    if not headers:
        return [("full report", report)]
    found = [("preamble", report[: headers[0].start(1)])]
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(report)
        found.append((normalise_name(header.group(1)), report[header.end() : end]))
    return [(name, body) for name, body in found if name not in ("findings", "impression") or body.strip()]


def collapse(text: str) -> str:
    """Each whitespace run (newlines too) as one space, ends stripped."""
    return _SPACE.sub(" ", text).strip()


def section_text(report: str, section: str) -> str | None:
    """The text regbench scores for ``section``, whitespace collapsed; None when the report lacks it.

    Parameters
    ----------
    report : str
        The report file's text.
    section : {"findings", "impression", "findings_impression", "report"}
        ``findings`` / ``impression``: the *last* section of that name. ``findings_impression``: both,
        joined by a space (one suffices). ``report``: the whole text.
    """
    if section == "report":
        return collapse(report) or None
    last: dict[str, str] = {}
    for name, body in sections(report):
        last[name] = body  # a later section of the same name wins
    wanted = ("findings", "impression") if section == "findings_impression" else (section,)
    joined = " ".join(collapse(last[name]) for name in wanted if name in last)
    return joined or None
