"""What every dataset reader shares: the reader base class, skip accounting, paths, box checks, the
embedded-image cache and the errors (docs/datasets.md, "What every reader does").

A reader turns a public dataset, in its publisher's layout, into canonical ``Sample``s. Two kinds of
problem are kept apart:

- ``ReaderError`` (a ``DataError``, exit code 2) stops loading: a root that is not a directory, a
  required file absent, an unknown split or option, a missing dependency, no valid record left. Its
  ``field`` names the task-YAML field to fix (``dataset.root``, ``dataset.split``,
  ``dataset.options.<key>``, ``dataset.loader``).
- ``Malformed`` marks one record as unusable: the reader skips it, ``Skips`` warns on stderr and counts it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import sys
import zipfile
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from regbench.data.base import Loader
from regbench.errors import DataError
from regbench.spec import DatasetSpec
from regbench.types import Sample

WARNINGS_PER_FILE = 20
"""Skip warnings printed per file; the rest are summed up when loading finishes."""


class ReaderError(DataError):
    """A problem that stops loading (exit code 2), named by the task-YAML field to fix.

    Parameters
    ----------
    field : str
        ``dataset.root``, ``dataset.split``, ``dataset.options.<key>`` or ``dataset.loader``.
    message : str
        What is wrong and what is allowed; the final text is ``"<field>: <message>"``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class Malformed(ValueError):
    """One record cannot be used; the message is the reason printed with the skip warning."""


def reason(exc: Exception) -> str:
    """The skip reason for a ``Malformed`` record or a ``Sample`` that failed validation."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"field {where}: {first['msg']}"
    return str(exc)


def missing_dependency(reader: str, package: str) -> ReaderError:
    """The error for an optional package a reader needs (Pillow, pyarrow)."""
    return ReaderError(
        "dataset.loader",
        f"the {reader} reader needs {package}, which is not installed: pip install 'regbench[data]' "
        "(also in regbench[all])",
    )


# --------------------------------------------------------------------------- skips


@dataclass(frozen=True)
class Skip:
    """One skipped record: where it is and why."""

    file: str
    number: int
    """1-based line (line-based files) or record / row number (JSON arrays, CSV, parquet, npz)."""
    unit: str
    """``line``, ``record`` or ``row``: what ``number`` counts."""
    reason: str


class Skips:
    """Counts the records a load skipped and warns about each on stderr.

    Each skip prints ``<file>: <unit> <number>: skipped: <reason>``; after ``limit`` warnings for one
    file the rest of that file's skips are only counted, and ``finish`` prints how many were not shown.
    Whoever finishes loading calls ``finish``, which ends with ``skipped N records``.

    Parameters
    ----------
    stream : text stream, default=None
        Where warnings go; ``None`` means ``sys.stderr`` at the time of each warning.
    limit : int, default=20
        Warnings printed per file.
    """

    def __init__(self, stream: TextIO | None = None, *, limit: int = WARNINGS_PER_FILE) -> None:
        self._stream = stream
        self.limit = limit
        self.records: list[Skip] = []
        self._per_file: dict[str, int] = {}

    @property
    def count(self) -> int:
        """The number of records skipped so far."""
        return len(self.records)

    def add(self, file: str | os.PathLike[str], number: int, reason: str, *, unit: str = "line") -> None:
        """Record one skipped record and warn, unless its file already had ``limit`` warnings."""
        skip = Skip(str(file), number, unit, reason)
        self.records.append(skip)
        seen = self._per_file.get(skip.file, 0) + 1
        self._per_file[skip.file] = seen
        if seen <= self.limit:
            self._write(f"{skip.file}: {unit} {number}: skipped: {reason}")

    def finish(self) -> int:
        """Print the per-file summaries and ``skipped N records``; return N."""
        for file, n in self._per_file.items():
            if n > self.limit:
                self._write(f"{file}: {n - self.limit} more skipped records not shown ({n} in this file)")
        self._write(f"skipped {self.count} records")
        return self.count

    def _write(self, line: str) -> None:
        print(line, file=self._stream or sys.stderr)


def skip_sample(
    skips: Skips,
    file: str | os.PathLike[str],
    numbers: Iterable[int],
    bad: Mapping[int, str],
    sample_id: str,
    unit: str,
) -> None:
    """Skip every record of a sample made of several (MS-CXR phrase rows, VinDr box rows, MIMIC study
    images): a record with a problem of its own says it, the others name the first bad record."""
    first = min(bad)
    for number in numbers:
        why = bad.get(number) or f"sample {sample_id!r} dropped: {unit} {first} is malformed"
        skips.add(file, number, why, unit=unit)


# --------------------------------------------------------------------------- options and the reader


class ReaderOptions(BaseModel):
    """Options every reader accepts; each reader's ``Options`` extends these."""

    model_config = ConfigDict(extra="forbid")
    ids: str | None = None
    """A file of ids, one per line, relative to the task YAML: only those samples are kept."""


@dataclass
class Context:
    """What one ``read`` call carries besides root, split and options."""

    base: Path
    """The task YAML's directory."""
    skips: Skips
    ids: frozenset[str] | None = None
    """The ``ids`` filter, or None for all."""
    first_seen: dict[str, str] = field(default_factory=dict)
    """Sample id -> where it was first loaded (repeated ids: the first wins)."""
    n_wanted: int = 0
    """Ids the ``ids`` filter let through (to tell "filtered out" from "all malformed")."""

    def wanted(self, sample_id: str) -> bool:
        """Whether the ``ids`` filter keeps this id (a filter: the caller stays silent)."""
        if self.ids is None or sample_id in self.ids:
            self.n_wanted += 1
            return True
        return False

    def claim(self, sample_id: str, file: str | os.PathLike[str], number: int, unit: str) -> bool:
        """True for an id's first valid record; a later one is skipped as a repeated id."""
        first = self.first_seen.get(sample_id)
        if first is None:
            self.first_seen[sample_id] = f"{unit} {number}"
            return True
        self.skips.add(file, number, f"repeated id {sample_id!r} (first at {first})", unit=unit)
        return False


class Reader(Loader):
    """A dataset reader: public layout in, canonical ``Sample``s out.

    Subclasses set ``name`` (the ``dataset.loader`` value), ``splits`` (the documented splits; empty
    when the files present define them, see ``available_splits``), ``aliases`` (other names of a
    split) and ``Options``, and implement ``samples``. As a :class:`~regbench.data.base.Loader`,
    ``load`` reads ``dataset.root``, ``dataset.split`` and the validated ``dataset.options``, and
    ``finish`` prints the skip summary (``skipped N records``).
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[dict[str, str]] = {}
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions  # type: ignore[assignment]
    requires: ClassVar[dict[str, str]] = {}
    """Optional modules the reader imports -> the package that provides them (``{"pyarrow": "pyarrow"}``)."""

    skips: Skips | None = None
    """The skips of the last ``load``."""

    def __init__(self, options: BaseModel | None = None) -> None:
        # no default options here: some readers have required ones (``hf``'s columns), checked by ``read``
        self.options = options  # type: ignore[assignment]

    def load(self, spec: DatasetSpec, *, base: Path) -> Iterator[Sample]:
        self.skips = Skips()
        options = self.options if self.options is not None else spec.options
        return self.read(spec.root, spec.split, options, base=base, skips=self.skips)

    @property
    def n_skipped(self) -> int:
        return self.skips.count if self.skips is not None else 0

    @property
    def skipped(self) -> list[str]:
        records = self.skips.records if self.skips is not None else []
        return [f"{s.file}: {s.unit} {s.number}: {s.reason}" for s in records]

    def finish(self) -> None:
        if self.skips is not None:
            self.skips.finish()

    def read(
        self,
        root: str | os.PathLike[str] | None,
        split: str | None,
        options: ReaderOptions | Mapping[str, Any],
        *,
        base: Path,
        skips: Skips,
    ) -> Iterator[Sample]:
        """Check the spec, then return an iterator over the split's samples in the reader's order.

        Root, split, options, the ``ids`` file and optional packages are checked by this call, so a
        bad spec fails before any sample is asked for; malformed records are skipped (and reported
        to ``skips``) while iterating.

        Parameters
        ----------
        root : path or None
            ``dataset.root``; a relative path is taken relative to ``base``; None is an error.
        split : str or None
            ``dataset.split`` (aliases accepted).
        options : Options or mapping
            ``dataset.options``, validated into ``self.Options`` if given as a mapping.
        base : Path
            The task YAML's directory (``root`` and the ``ids`` file are relative to it).
        skips : Skips
            Collects and reports malformed records; the caller calls ``skips.finish()`` at the end.

        Returns
        -------
        Iterator of Sample
            Each sample validated, images absolute and existing, ids unique.

        Raises
        ------
        ReaderError
            Bad root, split or option, a missing package, a required file absent (at the call or
            at the first ``next``), or no valid record left (when the iterator is exhausted).
        """
        # Checked here, before the first sample is asked for, so a bad spec fails at once.
        for module, package in self.requires.items():
            if importlib.util.find_spec(module) is None:
                raise missing_dependency(self.name, package)
        opts = options if isinstance(options, self.Options) else self.parse_options(options)
        directory = resolve_root(root, base)
        split = self.resolve_split(split, directory, opts)
        ctx = Context(base=base, skips=skips, ids=load_ids(opts.ids, base))
        return self._counted(directory, split, opts, ctx)

    def _counted(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        skipped_before = ctx.skips.count
        n = 0
        try:
            for sample in self.samples(root, split, options, ctx):
                n += 1
                yield sample
        except UnicodeDecodeError as exc:  # a whole file, not one record: nothing after it can be read
            raise ReaderError(
                "dataset.root",
                f"a file of the {self.name} data under {root} is not UTF-8 text ({exc.reason} at "
                f"byte {exc.start}): is it the publisher's file, unmodified?",
            ) from None
        except (OSError, EOFError, zipfile.BadZipFile, csv.Error) as exc:
            raise ReaderError("dataset.root", f"cannot read the {self.name} data under {root}: {exc}") from None
        if n == 0:
            skipped = ctx.skips.count - skipped_before
            if ctx.ids is not None and ctx.n_wanted == 0:
                raise ReaderError(
                    "dataset.options.ids", f"no sample of split {split!r} has an id listed in {options.ids}"
                )
            raise ReaderError(
                "dataset.root",
                f"no valid record left in the {self.name} data under {root} (split {split!r}; "
                f"{skipped} records skipped, see the warnings above)",
            )

    @abstractmethod
    def samples(self, root: Path, split: str, options: Any, ctx: Context) -> Iterator[Sample]:
        """Yield the samples of an already checked split (``read`` does the checks)."""

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any] | None) -> ReaderOptions:
        """``dataset.options`` validated into ``cls.Options``; errors name ``dataset.options.<key>``."""
        try:
            return cls.Options.model_validate(dict(raw or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            if first["type"] == "extra_forbidden":
                valid = ", ".join(_model_at(cls.Options, first["loc"][:-1]).model_fields)
                raise ReaderError(f"dataset.options.{key}", f"unknown option of {cls.name}; valid: {valid}") from None
            got = first.get("input")
            raise ReaderError(f"dataset.options.{key}", f"{first['msg']} (got {got!r:.80})") from None

    def available_splits(self, root: Path, options: Any) -> tuple[str, ...]:
        """The splits this root offers; by default the documented ``splits``."""
        return self.splits

    def resolve_split(self, split: str | None, root: Path, options: Any) -> str:
        """The canonical name of ``split``; an unknown or absent one is a ``dataset.split`` error."""
        valid = self.available_splits(root, options)
        canonical = self.aliases.get(split, split) if split is not None else None
        if canonical is not None and canonical in valid:
            return canonical
        listed = ", ".join(valid) if valid else f"none found under {root}"
        aliases = ", ".join(f"{a} = {c}" for a, c in self.aliases.items())
        hint = f" (aliases: {aliases})" if aliases else ""
        if split is None:
            raise ReaderError("dataset.split", f"the {self.name} reader needs a split: one of {listed}{hint}")
        raise ReaderError("dataset.split", f"{split!r} is not a split of {self.name}; valid: {listed}{hint}")


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel]:
    """The (nested) options model a validation error's location points into."""
    for part in loc:
        info = model.model_fields.get(str(part))
        inner = getattr(info, "annotation", None)
        candidates = [inner, *getattr(inner, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            break
        model = nested[0]
    return model


# --------------------------------------------------------------------------- paths


def resolve_root(root: str | os.PathLike[str] | None, base: Path) -> Path:
    """``dataset.root`` as an absolute directory (relative to the task YAML's directory ``base``)."""
    if root is None or str(root) == "":
        raise ReaderError("dataset.root", "required: the directory the dataset was downloaded to")
    path = (base / Path(root).expanduser()).resolve()
    if not path.is_dir():
        raise ReaderError("dataset.root", f"not a directory: {path} (relative paths are relative to {base})")
    return path


def option_path(root: Path, value: str) -> Path:
    """An option's path, relative to ``root`` unless absolute."""
    return (root / Path(value).expanduser()).resolve()


def require_file(path: Path, field: str = "dataset.root", what: str = "") -> Path:
    """``path`` if it is a file, else a ``ReaderError`` naming ``field``."""
    if not path.is_file():
        raise ReaderError(field, f"{what or 'required file'} not found: {path}")
    return path


def first_file(candidates: Sequence[Path], field: str = "dataset.root") -> Path:
    """The first existing file of ``candidates``, else a ``ReaderError`` listing them all."""
    for path in candidates:
        if path.is_file():
            return path
    names = " or ".join(str(p) for p in candidates)
    raise ReaderError(field, f"required file not found: {names}")


def load_ids(value: str | None, base: Path) -> frozenset[str] | None:
    """The ``ids`` filter: one id per line (blank lines ignored) of a file relative to ``base``."""
    if value is None:
        return None
    path = (base / Path(value).expanduser()).resolve()
    if not path.is_file():
        raise ReaderError("dataset.options.ids", f"file not found: {path} (relative to the task YAML's directory)")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        raise ReaderError(
            "dataset.options.ids", f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    return frozenset(s for s in (line.strip() for line in lines) if s)


class Files:
    """Existence checks for many files through one listing per directory.

    Each distinct directory part of a relative path is resolved and listed once, on first use; every
    later lookup is a dictionary hit and a set membership test, not a path normalisation and a stat
    per file (what makes a 100k-image load slow, above all on network file systems).
    """

    def __init__(self) -> None:
        self._dirs: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
        """(directory, relative directory part) -> (absolute prefix ending in a separator, file names)."""
        self._names: dict[str, frozenset[str]] = {}

    def find(self, directory: str, relative: str) -> str | None:
        """The absolute, normalised path of ``directory/relative`` if it is a file, else None.

        ``directory`` must be absolute and normalised (resolve it once per dataset, not per file).
        """
        sub, _, name = relative.rpartition("/")
        entry = self._dirs.get((directory, sub))
        if entry is None:
            head = os.path.normpath(os.path.join(directory, sub)) if sub else directory
            names = self._names.get(head)
            if names is None:
                names = self._names[head] = _list_files(head)
            entry = self._dirs[(directory, sub)] = (os.path.join(head, ""), names)
        prefix, names = entry
        return prefix + name if name in names else None


def _list_files(directory: str) -> frozenset[str]:
    try:
        with os.scandir(directory) as entries:
            return frozenset(e.name for e in entries if e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


# --------------------------------------------------------------------------- file formats


def read_json(path: Path) -> Any:
    """A whole JSON file; unreadable JSON is a ``dataset.root`` error naming the file."""
    try:
        with path.open(encoding="utf-8-sig") as f:  # tolerate a byte-order mark
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ReaderError("dataset.root", f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def json_array(value: Any, path: Path, what: str = "the file") -> list[Any]:
    """``value`` if it is a list, else a ``dataset.root`` error."""
    if not isinstance(value, list):
        raise ReaderError("dataset.root", f"{path}: expected {what} to be a JSON array, got {type(value).__name__}")
    return value


def open_text(path: Path) -> TextIO:
    """A text stream of ``path`` (gzip when it ends in ``.gz``), UTF-8 with an optional BOM."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def read_csv(path: Path, required: Iterable[str] = ()) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows of a CSV file, each row with its 1-based data-row number.

    A row shorter than the header has ``""`` for the missing cells. A required column absent from the
    header is a ``dataset.root`` error.
    """
    stream = open_text(path)
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        stream.close()
        raise ReaderError("dataset.root", f"{path}: empty file (expected a CSV header)")
    missing = [c for c in required if c not in header]
    if missing:
        stream.close()
        raise ReaderError("dataset.root", f"{path}: no column {', '.join(map(repr, missing))} (columns: {header})")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with stream:
            for number, cells in enumerate(reader, start=1):
                if not cells:  # a blank line is no row
                    continue
                cells = cells + [""] * (len(header) - len(cells))
                yield number, dict(zip(header, cells, strict=False))

    return header, rows()


# --------------------------------------------------------------------------- values and boxes


def text(value: Any, what: str) -> str:
    """A required text field: ``str(value).strip()``, malformed when missing or empty."""
    if value is None:
        raise Malformed(f"no {what}")
    out = (value if isinstance(value, str) else str(value)).strip()
    if not out:
        raise Malformed(f"empty {what}")
    return out


def answer_type(value: Any) -> str | None:
    """``open`` / ``closed`` from any case and padding; None when the data has none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = str(value).strip().lower()
    if kind not in ("open", "closed"):
        raise Malformed(f"answer_type {value!r} is neither open nor closed")
    return kind


def as_float(value: Any, what: str) -> float:
    """A finite number from a JSON number or a CSV cell, else ``Malformed``."""
    if isinstance(value, bool):
        raise Malformed(f"{what}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        try:
            out = float(str(value).strip())
        except ValueError:
            raise Malformed(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(out):
        raise Malformed(f"{what}: {value!r} is not a finite number")
    return out


def as_size(value: Any, what: str) -> int:
    """A positive integer (image sizes) from a JSON number or a CSV cell such as ``"512"`` or ``"512.0"``."""
    if type(value) is int and value > 0:  # the common case, without the float round trip
        return value
    out = as_float(value, what)
    if not out.is_integer() or out <= 0:
        raise Malformed(f"{what}: {value!r} is not a positive integer")
    return int(out)


_AXES = "xyz"


def scaled_box(values: Sequence[float], sizes: Sequence[float], frame: str) -> list[float]:
    """A box in units of ``sizes`` (pixels, a 0–999 grid, voxels) as 0–1 fractions.

    Parameters
    ----------
    values : sequence of float
        ``[x1, y1, x2, y2]`` or ``[x1, y1, z1, x2, y2, z2]``.
    sizes : sequence of float
        The frame's extent per axis (width, height[, depth]); a box must lie within ``[0, size]``.
    frame : str
        How to name the frame in a message, e.g. ``"the 512×400 image"``.

    Returns
    -------
    list of float
        Each coordinate divided by its axis's size; nothing clipped or reordered.

    Raises
    ------
    Malformed
        A non-finite coordinate, a corner swapped (x1 > x2, ...) or a coordinate outside the frame.
    """
    n = len(sizes)
    for axis in range(n):
        lo, hi = values[axis], values[axis + n]
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN compares false with everything
            raise Malformed(f"box {_shown(values)} has a coordinate that is not a finite number")
        if lo > hi:
            a = _AXES[axis]
            raise Malformed(f"box {_shown(values)} has {a}1 > {a}2")
        if lo < 0 or hi > sizes[axis]:
            raise Malformed(f"box {_shown(values)} is outside {frame}")
    return [v / sizes[i % n] for i, v in enumerate(values)]


def _shown(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


# --------------------------------------------------------------------------- embedded images

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"\x93NUMPY", ".npy"),
)


def image_suffix(data: bytes, hint: str | None = None) -> str:
    """The file extension for encoded image ``data``: sniffed from its first bytes, else ``hint``'s."""
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if hint:
        suffix = os.path.splitext(hint)[1].lower()
        if suffix and len(suffix) <= 6:
            return suffix
    return ".bin"


def cache_root() -> Path:
    """``$REGBENCH_CACHE_DIR/images`` (default ``~/.cache/regbench/images``)."""
    return Path(os.environ.get("REGBENCH_CACHE_DIR") or "~/.cache/regbench").expanduser().resolve() / "images"


class ImageCache:
    """Writes images embedded in data files (parquet/arrow bytes, npz arrays) once, named by content hash.

    Parameters
    ----------
    directory : Path, default=None
        Where to write; ``None`` means ``cache_root()`` at construction.
    reader : str, default="hf"
        The reader's name, for the missing-Pillow message.
    """

    def __init__(self, directory: Path | None = None, *, reader: str = "hf") -> None:
        self.directory = directory or cache_root()
        self.reader = reader
        self._made = False

    def put_bytes(self, data: bytes, hint: str | None = None) -> str:
        """The absolute path of a file holding exactly ``data`` (an encoded image)."""
        digest = hashlib.sha256(data).hexdigest()[:32]
        return self._put(digest + image_suffix(data, hint), lambda f: f.write(data))

    def put_array(self, array: Any, *, volume: bool = False) -> str:
        """The absolute path of a lossless copy of ``array``: PNG for a 2D image, ``.npy`` otherwise.

        2D means ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4 and dtype uint8 (C = 1 also uint16); a
        volume (``volume=True``, or any other shape) or another dtype is written with ``numpy.save``.
        The name hashes the dtype, shape and bytes, so the same array always maps to the same file.
        """
        import numpy as np

        arr = np.ascontiguousarray(array)
        if not volume and arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()).hexdigest()[:32]
        png = not volume and (
            (arr.ndim == 2 and arr.dtype in (np.uint8, np.uint16))
            or (arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype == np.uint8)
        )
        if not png:
            return self._put(digest + ".npy", lambda f: np.save(f, arr, allow_pickle=False))
        try:
            from PIL import Image
        except ImportError:
            raise missing_dependency(self.reader, "Pillow") from None
        image = Image.fromarray(arr)
        return self._put(digest + ".png", lambda f: image.save(f, format="PNG"))

    def _put(self, name: str, write: Any) -> str:
        path = self.directory / name
        if path.is_file():
            return str(path)
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        # Write beside the target and rename: a concurrent run never sees a half-written file.
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            write(f)
        os.replace(tmp, path)
        return str(path)


def qid_records(
    path: Path,
    ctx: Context,
    *,
    keep: Callable[[dict[str, Any]], bool],
    build: Callable[[str, dict[str, Any]], Sample],
) -> Iterator[Sample]:
    """The samples of a JSON array of VQA records keyed by ``qid`` (SLAKE, VQA-RAD), in file order.

    ``keep`` filters records by their raw values (silently: outside the split or an option);
    ``build`` turns a kept record into a sample, raising ``Malformed`` (or a validation error)
    for one it cannot use, which is skipped and counted, as is a record that is not an object.
    """
    for number, record in enumerate(json_array(read_json(path), path), start=1):
        if not isinstance(record, dict):
            ctx.skips.add(path, number, f"expected a JSON object, got {type(record).__name__}", unit="record")
            continue
        if not keep(record):
            continue
        try:
            sample_id = text(record.get("qid"), "qid")
            if not ctx.wanted(sample_id):
                continue
            sample = build(sample_id, record)
        except (Malformed, ValidationError) as exc:
            ctx.skips.add(path, number, reason(exc), unit="record")
            continue
        if ctx.claim(sample_id, path, number, "record"):
            yield sample
