"""The readers' shared parts: skip warnings and counts, paths, box checks, the image cache, errors.

Also the helpers the other ``test_readers_*`` files use to build tiny datasets and load them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regbench.data.readers import READERS
from regbench.data.readers.common import (
    _SAMPLE_DEFAULTS,
    Files,
    ImageCache,
    Malformed,
    Reader,
    ReaderError,
    Skips,
    checked_region,
    checked_sample,
    image_suffix,
    resolve_root,
    scaled_box,
)
from regbench.errors import DataError
from regbench.types import Region, Sample

# --------------------------------------------------------------------------- helpers for the reader tests


def png(path: Path, width: int = 4, height: int = 3, value: int = 0) -> Path:
    """A tiny grey PNG of the given size."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (width, height), value).save(path)
    return path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_json(path: Path, value: Any) -> Path:
    return write(path, json.dumps(value, ensure_ascii=False, indent=1))


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    """A CSV file's text, as Python's csv writer (and pandas) quote it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def load(
    reader: Reader, root: Path | str, split: str | None, options: dict[str, Any] | None = None, *, base: Path
) -> tuple[list[Sample], Skips, str]:
    """All samples of one read, the skips, and what was printed on stderr (after ``finish``)."""
    stream = io.StringIO()
    skips = Skips(stream)
    samples = list(reader.read(Path(root), split, options or {}, base=base, skips=skips))
    skips.finish()
    return samples, skips, stream.getvalue()


def dump(sample: Sample) -> dict[str, Any]:
    """The sample as ``regbench data export`` would write it (every field, defaults included)."""
    return json.loads(sample.model_dump_json())


def warnings(stderr: str) -> list[str]:
    """The skip warnings of a load, without the final count line."""
    return [line for line in stderr.splitlines() if ": skipped: " in line]


def export(spec_root: Path, tmp_path: Path, dataset: str, *args: str) -> tuple[str, str]:
    """``regbench data export`` through the command line of a task reading ``dataset`` (a YAML flow
    mapping, e.g. ``{loader: slake, root: /x, split: test}``): the file written and stderr."""
    from typer.testing import CliRunner

    from regbench.cli import app

    task = spec_root / "tasks" / "export_me.yaml"
    task.write_text(
        f"task: export_me\nfamily: vqa\ndataset: {dataset}\nprompt: '{{{{ question }}}}'\nmetrics: [vqa]\n",
        encoding="utf-8",
    )
    out = tmp_path / "exported" / "out.jsonl"
    result = CliRunner().invoke(app, ["data", "export", "export_me", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return out.read_text(encoding="utf-8"), result.stderr


def canonical_lines(records: list[dict[str, Any]]) -> str:
    """The canonical JSONL of hand-written records (keys in the contract's order), as export writes it."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


# --------------------------------------------------------------------------- Skips


def test_skips_warn_with_file_unit_number_and_reason_then_summarise_past_the_limit() -> None:
    stream = io.StringIO()
    skips = Skips(stream, limit=2)
    for n in (1, 2, 3, 4):
        skips.add("a.jsonl", n, f"reason {n}")
    skips.add("b.csv", 7, "no id", unit="row")
    assert skips.count == 5
    assert skips.finish() == 5
    assert stream.getvalue().splitlines() == [
        "a.jsonl: line 1: skipped: reason 1",
        "a.jsonl: line 2: skipped: reason 2",
        "b.csv: row 7: skipped: no id",
        "a.jsonl: 2 more skipped records not shown (4 in this file)",
        "skipped 5 records",
    ]
    assert [(s.file, s.number, s.unit) for s in skips.records][-1] == ("b.csv", 7, "row")


def test_skips_default_to_stderr_and_say_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert Skips().finish() == 0
    assert capsys.readouterr().err == "skipped 0 records\n"


# --------------------------------------------------------------------------- paths, boxes, errors


def test_reader_error_is_a_data_error_naming_the_field() -> None:
    err = ReaderError("dataset.split", "'x' is not a split")
    assert isinstance(err, DataError) and err.exit_code == 2
    assert err.field == "dataset.split" and str(err) == "dataset.split: 'x' is not a split"


def test_root_is_relative_to_the_task_directory(tmp_path: Path) -> None:
    (tmp_path / "data" / "ds").mkdir(parents=True)
    assert resolve_root("data/ds", tmp_path) == tmp_path / "data" / "ds"
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory: .*nope"):
        resolve_root("nope", tmp_path)
    with pytest.raises(ReaderError, match=r"^dataset\.root: required"):
        resolve_root(None, tmp_path)


def test_files_finds_existing_files_with_one_listing_per_directory(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.png", b"1")
    (tmp_path / "a" / "sub").mkdir()
    files = Files()
    assert files.find(str(tmp_path), "a/x.png") == str(tmp_path / "a" / "x.png")
    assert files.find(str(tmp_path / "a"), "../a/./x.png") == str(tmp_path / "a" / "x.png")
    assert files.find(str(tmp_path), "a/y.png") is None
    assert files.find(str(tmp_path), "a/sub") is None  # a directory is not an image
    assert files.find(str(tmp_path), "missing/x.png") is None


def test_scaled_box_divides_and_refuses_swapped_or_outside_boxes() -> None:
    assert scaled_box([10, 20, 30, 40], (100, 80), "the image") == [0.1, 0.25, 0.3, 0.5]
    assert scaled_box([0, 0, 1, 4, 4, 2], (4, 4, 2), "the volume") == [0, 0, 0.5, 1, 1, 1]
    with pytest.raises(Malformed, match=r"box \[30, 20, 10, 40\] has x1 > x2"):
        scaled_box([30, 20, 10, 40], (100, 80), "the image")
    with pytest.raises(Malformed, match=r"has y1 > y2"):
        scaled_box([1, 50, 2, 40], (100, 80), "the image")
    with pytest.raises(Malformed, match=r"box \[10, 20, 30, 81\] is outside the 100×80 image"):
        scaled_box([10, 20, 30, 81], (100, 80), "the 100×80 image")
    with pytest.raises(Malformed, match="outside"):
        scaled_box([-1, 0, 3, 4], (100, 80), "the image")
    with pytest.raises(Malformed, match=r"box \[nan, 0, 3, 4\] has a coordinate that is not a finite number"):
        scaled_box([float("nan"), 0, 3, 4], (100, 80), "the image")


def test_unknown_and_invalid_options_name_the_key() -> None:
    from regbench.data.readers.medrega_chat import MedRegAChat

    with pytest.raises(ReaderError, match=r"^dataset\.options\.langauge: unknown option of medrega_chat; valid: ids, "):
        MedRegAChat.parse_options({"langauge": "en"})
    with pytest.raises(ReaderError, match=r"^dataset\.options\.ids: .*got 3"):
        MedRegAChat.parse_options({"ids": 3})


def test_every_listed_reader_imports_and_declares_its_interface() -> None:
    import importlib

    for name, target in READERS.items():
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls.name == name and issubclass(cls, Reader)
        assert "ids" in cls.Options.model_fields
        assert cls.Options.model_config.get("extra") == "forbid"


MINIMAL_OPTIONS: dict[str, dict[str, Any]] = {"medmnist": {"flag": "pathmnist"}, "hf": {"columns": {"answer": "a"}}}


def reader_named(name: str) -> Reader:
    import importlib

    module, _, attr = READERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_names_a_missing_root_and_an_unknown_option(name: str, tmp_path: Path) -> None:
    reader = reader_named(name)
    if "pyarrow" in reader.requires:
        pytest.importorskip("pyarrow")
    options = MINIMAL_OPTIONS.get(name, {})
    with pytest.raises(ReaderError, match=r"^dataset\.root: not a directory: .*missing"):
        reader.read(tmp_path / "missing", "test", options, base=tmp_path, skips=Skips())
    with pytest.raises(ReaderError, match=r"^dataset\.options\.colour: unknown option of " + name):
        reader.read(tmp_path, "test", {**options, "colour": "red"}, base=tmp_path, skips=Skips())


@pytest.mark.parametrize(("loader", "package"), [("path_vqa", "pyarrow"), ("hf", "pyarrow"), ("vindr_cxr", "Pillow")])
def test_a_missing_dependency_names_the_package_and_the_extra(
    loader: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    reader = reader_named(loader)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("pyarrow", "PIL") else real(name, *a)
    )
    message = rf"^dataset\.loader: the {loader} reader needs {package}, which is not installed: "
    with pytest.raises(ReaderError, match=message + r"pip install 'regbench\[data\]'"):
        reader.read(tmp_path, "test", {}, base=tmp_path, skips=Skips())


# --------------------------------------------------------------------------- the image cache


def test_image_cache_keeps_bytes_and_writes_arrays_losslessly(tmp_path: Path) -> None:
    from PIL import Image

    cache = ImageCache(tmp_path / "images")
    data = _png_bytes()
    path = cache.put_bytes(data, "ignored.jpg")
    assert path.endswith(".png") and Path(path).read_bytes() == data
    assert cache.put_bytes(data) == path  # content-addressed: written once

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    deep = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    for array in (grey, rgb, deep):
        out = cache.put_array(array)
        assert out.endswith(".png")
        np.testing.assert_array_equal(np.asarray(Image.open(out)), array)
    volume = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    out = cache.put_array(volume)
    assert out.endswith(".npy")
    np.testing.assert_array_equal(np.load(out), volume)
    assert cache.put_array(volume.copy()) == out
    assert cache.put_array(grey[:, :, None]) == cache.put_array(grey)


def test_image_cache_defaults_to_regbench_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBENCH_CACHE_DIR", str(tmp_path / "c"))
    path = ImageCache().put_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert Path(path).parent == tmp_path / "c" / "images" and path.endswith(".jpg")


def test_image_suffix_sniffs_the_format_before_the_name() -> None:
    assert image_suffix(b"\x89PNG\r\n\x1a\nrest", "a.jpg") == ".png"
    assert image_suffix(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ".webp"
    assert image_suffix(b"unknown", "scan.DCM") == ".dcm"
    assert image_suffix(b"unknown") == ".bin"


def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (2, 2), 7).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- checked records


def test_checked_samples_equal_validated_ones() -> None:
    """The fast construction readers use builds exactly what validation builds, defaults included."""
    assert list(_SAMPLE_DEFAULTS) == list(Sample.model_fields)
    validated_defaults = Sample(id="x").model_dump()
    assert {k: v for k, v in _SAMPLE_DEFAULTS.items() if k != "id"} == {
        k: v for k, v in validated_defaults.items() if k != "id"
    }
    region = checked_region("liver \ud800", [[0.1, 0.2, 0.3, 0.4]])
    slow_region = Region(name="liver \ud800", boxes=[[0.1, 0.2, 0.3, 0.4]])
    assert region == slow_region and region.name == "liver ?"  # a lone surrogate made encodable, as validation does
    assert region.model_fields_set == slow_region.model_fields_set
    values: dict[str, Any] = {
        "id": "1", "image": ["/d/a.png"], "question": "q", "answer": "a", "objects": [region],
        "language": "en", "width": 5, "height": 4, "meta": {"k": [1]},
    }  # fmt: skip
    fast, slow = checked_sample(**values), Sample(**values)
    assert fast == slow and fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    first, second = checked_sample(id="a"), checked_sample(id="b")
    assert first.labels is not second.labels and first.meta is not second.meta  # no shared defaults
    with pytest.raises(TypeError, match="colour"):
        checked_sample(id="c", colour="red")
