"""mimic_cxr: MIMIC-CXR-JPG split CSV, images and report sections into canonical samples."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.mimic_cxr import MimicCxr
from regbench.data.readers.mimic_sections import normalise_name, section_text, sections
from tests.test_readers_common import canonical_lines, csv_text, dump, export, load, png, warnings, write

REPORT_1 = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 
 INDICATION:  ___F with new onset ascites  // eval for infection
 
 TECHNIQUE:  Chest PA and lateral
 
 COMPARISON:  None.
 
 FINDINGS: 
 
 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows.
 
 IMPRESSION: 
 
 No acute cardiopulmonary process.
"""  # noqa: W291, W293  (MIMIC reports keep trailing spaces and " " lines)

# A blank FINDINGS section (dropped) and a combined one, which counts as the impression.
REPORT_2 = """                                 FINAL REPORT
 HISTORY:  Cough.
 
 FINDINGS:
 
 FINDINGS AND IMPRESSION:  Heart size is normal.
 Lungs are clear.
"""  # noqa: W293


def test_header_names_normalise_as_the_official_parser_does() -> None:
    assert normalise_name("IMPRESSION") == "impression"
    assert normalise_name("IMPRESSON") == "impression"  # a listed misspelling
    assert normalise_name("FINDINGS AND IMPRESSION") == "impression"
    assert normalise_name("FINAL IMPRESSION") == "impression"  # contains a main name
    assert normalise_name("CLINICAL HISTORY") == "history"
    assert normalise_name("PA AND LATERAL VIEWS OF THE CHEST") == "findings"  # describes the views
    assert normalise_name("CHEST (PORTABLE AP)") == "findings"
    assert normalise_name("REASON FOR EXAM") == "indication"
    assert normalise_name("RECOMMENDATION(S)") == "recommendations"
    assert normalise_name("CONCLUSION") == "impression"
    assert normalise_name("NOTE") == "note"


def test_sections_split_on_headers_and_drop_blank_findings() -> None:
    assert [name for name, _ in sections(REPORT_1)] == [
        "preamble",
        "examination",
        "indication",
        "technique",
        "comparison",
        "findings",
        "impression",
    ]
    assert [name for name, _ in sections(REPORT_2)] == ["preamble", "history", "impression"]
    assert sections("no header at all") == [("full report", "no header at all")]
    # A header needs the newline and one space before it: this colon is text, not a section.
    assert [n for n, _ in sections("x\nIMPRESSION: a\n FINDINGS: b")] == ["preamble", "findings"]


def test_section_text_takes_the_last_of_a_name_and_collapses_whitespace() -> None:
    findings = (
        "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular opacities "
        "that most likely represent nipple shadows."
    )
    assert section_text(REPORT_1, "findings") == findings
    assert section_text(REPORT_1, "impression") == "No acute cardiopulmonary process."
    assert section_text(REPORT_1, "findings_impression") == findings + " No acute cardiopulmonary process."
    assert section_text(REPORT_2, "findings") is None
    assert section_text(REPORT_2, "findings_impression") == "Heart size is normal. Lungs are clear."
    twice = "\n FINDINGS: first\n IMPRESSION: one\n FINDINGS: second\n  line\n"
    assert section_text(twice, "findings") == "second line"
    assert section_text(" a\n\tb  c\n", "report") == "a b c"
    assert section_text("  \n", "report") is None


def study_dir(subject: str, study: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "mimic-cxr-jpg" / "2.0.0"
    rows = [
        ["d1a", "50414267", "10000032", "test"],
        ["d1b", "50414267", "10000032", "test"],
        ["d2", "53189527", "10000032", "train"],
        ["d3", "53911762", "10000764", "test"],  # the report has no findings
        ["d4", "56699142", "10000898", "test"],  # image missing: its study loses both rows
        ["d5", "56699142", "10000898", "test"],
        ["d6", "5x7", "10000935", "test"],
        ["d7", "51234567", "10000980", "test"],  # no report
        ["d1c", "50414267", "10000032", "test"],  # a study's rows need not be adjacent
    ]
    text = csv_text(["dicom_id", "study_id", "subject_id", "split"], rows)
    write(root / "mimic-cxr-2.0.0-split.csv.gz", gzip.compress(text.encode()))
    for dicom, study, subject, _ in rows:
        if dicom != "d4":
            png(root / study_dir(subject, study) / f"{dicom}.jpg")
    write(root / f"{study_dir('10000032', '50414267')}.txt", REPORT_1)
    write(root / f"{study_dir('10000032', '53189527')}.txt", REPORT_1)
    write(root / f"{study_dir('10000764', '53911762')}.txt", REPORT_2)
    write(root / f"{study_dir('10000898', '56699142')}.txt", REPORT_1)
    metadata = [["d1a", "PA"], ["d1b", "LATERAL"], ["d1c", "AP"], ["d3", "PA"], ["d5", ""]]
    write(root / "mimic-cxr-2.0.0-metadata.csv", csv_text(["dicom_id", "ViewPosition"], metadata))
    return root


def expected(root: Path) -> list[dict[str, Any]]:
    """The fixture's test split as canonical records, worked out by hand from DATASETS.md."""
    folder = root / study_dir("10000032", "50414267")
    return [
        {
            "id": "s50414267",
            "image": [str(folder / "d1a.jpg"), str(folder / "d1b.jpg"), str(folder / "d1c.jpg")],
            "question": "",
            "answer": "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular "
            "opacities that most likely represent nipple shadows.",
            "objects": [],
            "labels": [],
            "answer_type": None,
            "language": "en",
            "width": None,
            "height": None,
            "depth": None,
            "options": [],
            "meta": {"subject_id": "10000032", "study_id": "50414267"},
        }
    ]


def expected_warnings(root: Path) -> list[str]:
    path = root / "mimic-cxr-2.0.0-split.csv.gz"
    report_3 = root / f"{study_dir('10000764', '53911762')}.txt"
    return [
        f"{path}: row 4: skipped: no findings section in {report_3}",
        f"{path}: row 5: skipped: image not found: {root / study_dir('10000898', '56699142')}/d4.jpg",
        f"{path}: row 6: skipped: sample 's56699142' dropped: row 5 is malformed",
        f"{path}: row 7: skipped: study_id '5x7' is not a number",
        f"{path}: row 8: skipped: report not found: {root / study_dir('10000980', '51234567')}.txt",
    ]


def test_one_sample_per_study_with_its_images_in_csv_order(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(MimicCxr(), root, "test", base=tmp_path)
    assert [dump(s) for s in samples] == expected(root)
    assert warnings(stderr) == expected_warnings(root)
    assert skips.count == 5


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: mimic_cxr, root: {root}, split: test}}")
    assert written == canonical_lines(expected(root))
    assert warnings(stderr) == expected_warnings(root)
    assert stderr.splitlines()[-1] == "skipped 5 records"


def test_sections_views_per_image_and_reports_root(root: Path, tmp_path: Path) -> None:
    samples, skips, _ = load(MimicCxr(), root, "test", {"section": "impression"}, base=tmp_path)
    assert [(s.id, s.answer) for s in samples] == [
        ("s50414267", "No acute cardiopulmonary process."),
        ("s53911762", "Heart size is normal. Lungs are clear."),
    ]
    assert skips.count == 4
    options = {"views": ["PA", "AP"], "per_image": True, "section": "findings_impression"}
    samples, skips, _ = load(MimicCxr(), root, "test", options, base=tmp_path)
    assert [(s.id, len(s.image), s.meta) for s in samples] == [
        ("d1a", 1, {"subject_id": "10000032", "study_id": "50414267"}),
        ("d1c", 1, {"subject_id": "10000032", "study_id": "50414267"}),
        ("d3", 1, {"subject_id": "10000764", "study_id": "53911762"}),
    ]
    assert samples[2].answer == "Heart size is normal. Lungs are clear." and skips.count == 0
    reports = tmp_path / "reports"
    write(reports / f"{study_dir('10000032', '53189527')}.txt", "\n IMPRESSION: From elsewhere.\n")
    samples, _, _ = load(
        MimicCxr(), root, "train", {"section": "report", "reports_root": "../../reports"}, base=tmp_path
    )
    assert [(s.id, s.answer) for s in samples] == [("s53189527", "IMPRESSION: From elsewhere.")]
    write(tmp_path / "ids.txt", "s53911762\n")
    samples, skips, _ = load(MimicCxr(), root, "test", {"section": "impression", "ids": "ids.txt"}, base=tmp_path)
    assert [s.id for s in samples] == ["s53911762"] and skips.count == 0  # the others are filtered, not skipped


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    aliases = r"\(aliases: val = validate, validation = validate\)"
    with pytest.raises(
        ReaderError,
        match=r"^dataset\.split: 'dev' is not a split of mimic_cxr; valid: train, validate, test " + aliases,
    ):
        load(MimicCxr(), root, "dev", base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.options\.section: "):
        load(MimicCxr(), root, "test", {"section": "indication"}, base=tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required file not found: .*split\.csv\.gz or .*split\.csv"):
        load(MimicCxr(), tmp_path, "test", base=tmp_path)
    (root / "mimic-cxr-2.0.0-metadata.csv").unlink()
    with pytest.raises(ReaderError, match=r"^dataset\.options\.views: filtering by view needs .*metadata\.csv\.gz or"):
        load(MimicCxr(), root, "test", {"views": ["PA"]}, base=tmp_path)
    with pytest.raises(
        ReaderError, match=r"^dataset\.root: no valid record left .*split 'validate'; 0 records skipped"
    ):
        load(MimicCxr(), root, "validation", base=tmp_path)
