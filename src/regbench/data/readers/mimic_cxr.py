"""MIMIC-CXR-JPG 2.0.0 with MIMIC-CXR's free-text reports: one sample per study (or per image), the
reference a report section.

Root is ``mimic-cxr-jpg/2.0.0/``: ``mimic-cxr-2.0.0-split.csv(.gz)`` (``dicom_id, study_id,
subject_id, split``), images ``files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg`` (NN: the
subject id's first two digits) and reports ``files/p<NN>/p<subject_id>/s<study_id>.txt`` (from
``mimic-cxr-reports.zip``, unzipped into the root or under ``options.reports_root``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from regbench.data.readers.common import (
    Context,
    Files,
    Reader,
    ReaderError,
    ReaderOptions,
    first_file,
    option_path,
    read_csv,
    skip_sample,
)
from regbench.data.readers.mimic_sections import section_text
from regbench.types import Sample

SPLIT_FILES = ("mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-split.csv")
METADATA_FILES = ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")


@dataclass
class _Study:
    """The split-CSV rows of one study, in CSV order."""

    study_id: str
    subject_id: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


class MimicCxr(Reader):
    """Reads MIMIC-CXR-JPG's split CSV, images and reports; splits ``train``, ``validate``, ``test``."""

    name: ClassVar[str] = "mimic_cxr"
    splits: ClassVar[tuple[str, ...]] = ("train", "validate", "test")
    aliases: ClassVar[dict[str, str]] = {"val": "validate", "validation": "validate"}

    class Options(ReaderOptions):
        section: Literal["findings", "impression", "findings_impression", "report"] = "findings"
        """The reference: a section (the last of its name), both joined, or the whole report."""
        views: list[str] | None = Field(None, min_length=1)
        """Keep only images whose ``ViewPosition`` (metadata CSV) is one of these, e.g. ``[PA, AP]``."""
        per_image: bool = False
        """One sample per image (id ``dicom_id``) instead of one per study (id ``s<study_id>``)."""
        reports_root: str | None = None
        """The directory holding the reports' ``files/`` tree, relative to the root (default: the root)."""

    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        path = first_file([root / name for name in SPLIT_FILES])
        _, rows = read_csv(path, ("dicom_id", "study_id", "subject_id", "split"))
        views = _views(root, options.views) if options.views else None
        reports = option_path(root, options.reports_root) if options.reports_root else root
        files = Files()
        for study in _studies(rows, split, views, options.per_image, ctx):
            yield from self._study_samples(study, path, root, reports, files, options, ctx)

    def _study_samples(
        self, study: _Study, path: Path, root: Path, reports: Path, files: Files, options: Any, ctx: Context
    ) -> Iterator[Sample]:
        numbers = [n for n, _ in study.rows]
        sample_id = f"s{study.study_id}"
        bad: dict[int, str] = {}
        for number, row in study.rows:
            for column in ("subject_id", "study_id"):
                if not row[column].strip().isdigit():
                    bad[number] = f"{column} {row[column]!r} is not a number"
            if not row["dicom_id"].strip():
                bad[number] = "empty dicom_id"
        if bad:
            skip_sample(ctx.skips, path, numbers, bad, sample_id, "row")
            return
        folder = f"files/p{study.subject_id[:2]}/p{study.subject_id}"
        report = reports / folder / f"s{study.study_id}.txt"
        try:
            answer = section_text(report.read_text(encoding="utf-8"), options.section)
            problem = None if answer else f"no {options.section.replace('_', ' or ')} section in {report}"
        except FileNotFoundError:
            answer, problem = None, f"report not found: {report}"
        if answer is None:  # the study's report is unusable: all its rows go
            skip_sample(ctx.skips, path, numbers, dict.fromkeys(numbers, problem or ""), sample_id, "row")
            return
        image_dir = str(root / folder / f"s{study.study_id}")
        images: dict[int, str] = {}
        for number, row in study.rows:
            found = files.find(image_dir, f"{row['dicom_id'].strip()}.jpg")
            if found is None:
                bad[number] = f"image not found: {image_dir}/{row['dicom_id'].strip()}.jpg"
            else:
                images[number] = found
        meta = {"subject_id": study.rows[0][1]["subject_id"], "study_id": study.rows[0][1]["study_id"]}
        if not options.per_image:
            if bad:
                skip_sample(ctx.skips, path, numbers, bad, sample_id, "row")
            elif ctx.claim(sample_id, path, numbers[0], "row"):
                yield Sample(id=sample_id, image=list(images.values()), answer=answer, language="en", meta=meta)
            return
        for number, row in study.rows:
            dicom = row["dicom_id"].strip()
            if number in bad:
                ctx.skips.add(path, number, bad[number], unit="row")
            elif ctx.claim(dicom, path, number, "row"):
                yield Sample(id=dicom, image=[images[number]], answer=answer, language="en", meta=dict(meta))


def _studies(
    rows: Iterator[tuple[int, dict[str, str]]], split: str, views: dict[str, str] | None, per_image: bool, ctx: Context
) -> list[_Study]:
    """The split's studies in order of first appearance, their rows filtered by views and ids."""
    studies: dict[str, _Study] = {}
    for number, row in rows:
        if row["split"].strip() != split:
            continue
        dicom = row["dicom_id"].strip()
        if views is not None and views.get(dicom) is None:
            continue
        study_id = row["study_id"].strip()
        if not ctx.wanted(dicom if per_image else f"s{study_id}"):
            continue
        study = studies.get(study_id)
        if study is None:
            study = studies[study_id] = _Study(study_id, row["subject_id"].strip())
        study.rows.append((number, row))
    return list(studies.values())


def _views(root: Path, wanted: list[str]) -> dict[str, str]:
    """dicom_id -> ViewPosition for the images whose view is wanted (from the metadata CSV)."""
    candidates = [root / name for name in METADATA_FILES]
    if not any(p.is_file() for p in candidates):
        names = " or ".join(str(p) for p in candidates)
        raise ReaderError("dataset.options.views", f"filtering by view needs {names}")
    path = first_file(candidates)
    _, rows = read_csv(path, ("dicom_id", "ViewPosition"))
    keep = set(wanted)
    return {row["dicom_id"].strip(): row["ViewPosition"] for _, row in rows if row["ViewPosition"].strip() in keep}
