"""medrega_chat: MedRegA / InternVL chat JSONL into canonical samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regbench.data.readers.common import ReaderError
from regbench.data.readers.medrega_chat import MedRegAChat
from tests.test_readers_common import canonical_lines, dump, export, load, png, warnings, write


def chat(human: str, gpt: str, *more: str) -> list[dict[str, str]]:
    turns = [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    for i, value in enumerate(more):
        turns.append({"from": "human" if i % 2 == 0 else "gpt", "value": value})
    return turns


def jsonl(path: Path, lines: list[Any]) -> Path:
    return write(path, "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "medrega"
    png(root / "imgs" / "a.png")
    png(root / "imgs" / "b.png")
    jsonl(
        root / "test.jsonl",
        [
            {
                "id": 1,
                "image": "imgs/a.png",
                "width": 512,
                "height": 400,
                "conversations": chat(
                    "<image>\nPlease detect the liver and the kidneys in this image.",
                    "<ref>Liver</ref><box>[[100, 200, 300, 400]]</box> and <ref>Kidney</ref>"
                    "<box>[[0, 0, 999, 999], [10, 20, 30, 40]]</box>.",
                    "And the spleen?",
                    "Not visible.",
                ),
                "source": "SA-Med2D",
            },
            {
                "id": "ri-2",
                "image": ["imgs/b.png"],
                "conversations": chat("<image>\n这个区域<box>[[10, 10, 20, 20]]</box>是什么器官?", " 肝脏 "),
            },
            "",
            {
                "id": "t-3",
                "conversations": [
                    {"from": "system", "value": "be brief"},
                    *chat("What is CT?", "<box>[[1, 2, 3, 4]]</box>"),
                ],
            },
            "{not json",
            {"id": "bad-1", "image": "imgs/a.png", "conversations": [{"from": "human", "value": "<image>\nq"}]},
            {"id": "bad-2", "image": "imgs/a.png", "conversations": chat("q", "<ref>x</ref><box>[1, 2, 3, 4]</box>")},
            {
                "id": "bad-3",
                "image": "imgs/a.png",
                "conversations": chat("q", "<ref>x</ref><box>[[1, 2, 3, 1000]]</box>"),
            },
            {
                "id": "bad-4",
                "image": "imgs/a.png",
                "conversations": chat("q", "<ref>x</ref><box>[[30, 2, 10, 4]]</box>"),
            },
            {"id": "bad-5", "image": "imgs/missing.png", "conversations": chat("q", "a")},
            {"id": 1, "image": "imgs/b.png", "conversations": chat("q", "a")},
            {"image": "imgs/a.png", "conversations": chat("q", "a")},
            {"id": "bad-6", "conversations": chat("<image>\n", "a")},
            {"id": "bad-7", "width": "wide", "conversations": chat("q", "a")},
            {"id": "bad-8", "conversations": chat("q", "<box>[[1, 2, 3, x]]</box>")},
            {"id": "bad-9", "conversations": chat("q", "<box>[[1, 2, NaN, 4]]</box>")},
        ],
    )
    return root


def expected(root: Path) -> list[dict[str, Any]]:
    """The fixture's test split as canonical records, worked out by hand from DATASETS.md."""
    return [
        {
            "id": "1",
            "image": [str(root / "imgs" / "a.png")],
            "question": "Please detect the liver and the kidneys in this image.",
            "answer": "Liver and Kidney.",
            "objects": [
                {"name": "Liver", "boxes": [[100 / 999, 200 / 999, 300 / 999, 400 / 999]], "phrase": None},
                {
                    "name": "Kidney",
                    "boxes": [[0.0, 0.0, 1.0, 1.0], [10 / 999, 20 / 999, 30 / 999, 40 / 999]],
                    "phrase": None,
                },
            ],
            "labels": [],
            "answer_type": None,
            "language": "en",
            "width": 512,
            "height": 400,
            "depth": None,
            "options": [],
            "meta": {
                "source": "SA-Med2D",
                "conversations": [
                    {"from": "human", "value": "And the spleen?"},
                    {"from": "gpt", "value": "Not visible."},
                ],
            },
        },
        {
            "id": "ri-2",
            "image": [str(root / "imgs" / "b.png")],
            "question": "这个区域<box>[[10, 10, 20, 20]]</box>是什么器官?",
            "answer": "肝脏",
            "objects": [{"name": "肝脏", "boxes": [[10 / 999, 10 / 999, 20 / 999, 20 / 999]], "phrase": None}],
            "labels": [],
            "answer_type": None,
            "language": "zh",
            "width": None,
            "height": None,
            "depth": None,
            "options": [],
            "meta": {},
        },
        {
            "id": "t-3",
            "image": [],
            "question": "What is CT?",
            "answer": "",
            "objects": [{"name": "", "boxes": [[1 / 999, 2 / 999, 3 / 999, 4 / 999]], "phrase": None}],
            "labels": [],
            "answer_type": None,
            "language": "en",
            "width": None,
            "height": None,
            "depth": None,
            "options": [],
            "meta": {},
        },
    ]


def expected_warnings(root: Path) -> list[str]:
    """One warning per malformed line of the fixture (line 3 is blank: no record, no warning)."""
    path = root / "test.jsonl"
    return [
        f"{path}: line 5: skipped: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{path}: line 6: skipped: no human turn followed by a gpt turn",
        f"{path}: line 7: skipped: <box> content '[1, 2, 3, 4]' is not a list of [x1, y1, x2, y2] lists",
        f"{path}: line 8: skipped: box [1, 2, 3, 1000] is outside the 0–999 grid",
        f"{path}: line 9: skipped: box [30, 2, 10, 4] has x1 > x2",
        f"{path}: line 10: skipped: image not found: {root / 'imgs' / 'missing.png'}",
        f"{path}: line 11: skipped: repeated id '1' (first at line 1)",
        f"{path}: line 12: skipped: no id",
        f"{path}: line 13: skipped: empty question",
        f"{path}: line 14: skipped: width: 'wide' is not a number",
        f"{path}: line 15: skipped: <box> content '[[1, 2, 3, x]]' is not a JSON list of boxes",
        f"{path}: line 16: skipped: box [1, 2, nan, 4] has a coordinate that is not a finite number",
    ]


def test_reads_questions_answers_boxes_languages_and_meta(root: Path, tmp_path: Path) -> None:
    samples, skips, stderr = load(MedRegAChat(), "medrega", "test", base=tmp_path)
    assert [dump(s) for s in samples] == expected(root)
    assert warnings(stderr) == expected_warnings(root)
    assert skips.count == 12 and stderr.endswith("skipped 12 records\n")


def test_data_export_writes_the_canonical_lines(root: Path, spec_root: Path, tmp_path: Path) -> None:
    written, stderr = export(spec_root, tmp_path, f"{{loader: medrega_chat, root: {root}, split: test}}")
    assert written == canonical_lines(expected(root))
    # the 0–999 grid divided as floats, written as json.dumps writes them
    assert '"boxes": [[0.1001001001001001, 0.2002002002002002, 0.3003003003003003, 0.4004004004004004]]' in written
    assert warnings(stderr) == expected_warnings(root)
    assert stderr.splitlines()[-1] == "skipped 12 records"


def test_options_annotation_image_root_language_and_ids(tmp_path: Path) -> None:
    root = tmp_path / "d"
    png(root / "images" / "x" / "c.png")
    jsonl(
        root / "ann" / "region.jsonl",
        [
            {"id": "a", "image": "c.png", "conversations": chat("<image>\n<image>\nq1", "a1")},
            {"id": "b", "image": "gone.png", "conversations": chat("q2", "a2")},  # filtered by ids: not checked
            {"id": "c", "image": "c.png", "conversations": chat("q3", "a3")},
        ],
    )
    write(tmp_path / "keep.txt", "a\n\n c \n")
    options = {"annotation": "ann/region.jsonl", "image_root": "images/x", "language": "zh", "ids": "keep.txt"}
    samples, skips, _ = load(MedRegAChat(), root, None, options, base=tmp_path)
    assert [(s.id, s.question, s.language, s.image) for s in samples] == [
        ("a", "q1", "zh", [str(root / "images" / "x" / "c.png")]),
        ("c", "q3", "zh", [str(root / "images" / "x" / "c.png")]),
    ]
    assert skips.count == 0


def test_errors_name_the_field(root: Path, tmp_path: Path) -> None:
    reader = MedRegAChat()
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory: .*absent"):
        reader.read(Path("absent"), "test", {}, base=tmp_path, skips=None)  # type: ignore[arg-type]
    with pytest.raises(ReaderError, match=r"^dataset\.split: 'val' is not a split of medrega_chat; valid: test"):
        reader.read(root, "val", {}, base=tmp_path, skips=None)  # type: ignore[arg-type]
    with pytest.raises(ReaderError, match=r"^dataset\.options\.image_dir: unknown option"):
        reader.read(root, "test", {"image_dir": "x"}, base=tmp_path, skips=None)  # type: ignore[arg-type]
    with pytest.raises(ReaderError, match=r"^dataset\.options\.annotation: file not found"):
        load(reader, root, None, {"annotation": "nope.jsonl"}, base=tmp_path)
    jsonl(root / "broken.jsonl", [{"id": "x", "conversations": []}])
    with pytest.raises(ReaderError, match=r"^dataset\.root: no valid record left .*split 'broken'; 1 records skipped"):
        load(reader, root, "broken", base=tmp_path)
    write(tmp_path / "none.txt", "zzz\n")
    with pytest.raises(ReaderError, match=r"^dataset\.options\.ids: no sample of split 'test' has an id listed"):
        load(reader, root, "test", {"ids": "none.txt"}, base=tmp_path)


def test_a_large_file_lists_each_image_directory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard against a per-image cost (a stat or a path normalisation per record), counted rather
    than timed: 5,000 images in 2 directories are found through 2 listings. docs/benchmarks.md has the
    100k-record export's time."""
    from regbench.data.readers import common

    listed: list[str] = []
    real = common._list_files

    def counting(directory: str) -> frozenset[str]:
        listed.append(directory)
        return real(directory)

    monkeypatch.setattr(common, "_list_files", counting)
    root = tmp_path / "big"
    n = 5_000
    for d in ("a", "b"):
        (root / "imgs" / d).mkdir(parents=True)
    for i in range(n):
        (root / "imgs" / "ab"[i % 2] / f"{i}.png").touch()
    record = {
        "id": 0,
        "image": "imgs/D/0.png",
        "conversations": chat("<image>\nWhere is the liver?", "<ref>liver</ref><box>[[10, 20, 300, 400]]</box>"),
    }
    line = json.dumps(record).replace('"id": 0', '"id": {i}').replace("imgs/D/0.png", "imgs/{d}/{i}.png") + "\n"
    lines = (line.replace("{i}", str(i)).replace("{d}", "ab"[i % 2]) for i in range(n))
    (root / "test.jsonl").write_text("".join(lines))
    samples, skips, _ = load(MedRegAChat(), root, "test", base=tmp_path)
    assert len(samples) == n and skips.count == 0
    assert samples[-1].objects[0].boxes == [[10 / 999, 20 / 999, 300 / 999, 400 / 999]]
    assert samples[-1].image == [str(root / "imgs" / "b" / f"{n - 1}.png")]
    assert sorted(listed) == [str(root / "imgs" / "a"), str(root / "imgs" / "b")]
