"""The boxes of many samples as flat columns, and the reference boxes of a split read once.

:class:`BoxColumns` is what the matching code works on: sample ``b`` owns ``counts[b]``
consecutive boxes and names. :class:`RegionRead` reads ``Region`` objects into columns in one
pass, and :class:`ReferenceIndex` keeps the reference boxes of a whole split read that way
(``RegionAligned.prepare``), so that scoring only looks samples up. Subtasks and name
normalisation, which the reading needs, are here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Literal

import numpy as np

from regbench.parsing.readings import ParsedColumns
from regbench.types import Region, Sample

Subtask = Literal[
    "single_object_single_region",
    "single_object_multi_region",
    "multi_object_single_region",
    "multi_object_multi_region",
]
SINGLE_REGION: Subtask = "single_object_single_region"
"""One object with one box."""
MULTI_REGION: Subtask = "single_object_multi_region"
"""One object with several boxes."""
SUBTASKS: tuple[Subtask, ...] = (
    SINGLE_REGION,
    MULTI_REGION,
    "multi_object_single_region",
    "multi_object_multi_region",
)

_SPACES = re.compile(r"\s+")


def derive_subtask(reference: Sequence[Region], name: Callable[[str], str] | None = None) -> str:
    """The text-to-region subtask a reference belongs to: objects x boxes per object."""
    names = {(name or normalise_name)(r.name) for r in reference}
    boxes = sum(len(r.boxes) for r in reference)
    if len(names) <= 1:
        return MULTI_REGION if boxes > 1 else SINGLE_REGION
    return "multi_object_multi_region" if any(len(r.boxes) > 1 for r in reference) else "multi_object_single_region"


def normalise_name(name: str, synonyms: dict[str, str] | None = None) -> str:
    """Lower case, trimmed, inner whitespace collapsed, trailing punctuation dropped, synonyms mapped."""
    name = _SPACES.sub(" ", name.strip().lower()).rstrip(".,;:!?。，；：")
    return (synonyms or {}).get(name, name)


@dataclass
class BoxColumns:
    """The boxes of many samples, flat: sample ``b`` owns ``counts[b]`` consecutive boxes and names."""

    boxes: np.ndarray
    """``(total, 4)`` or ``(total, 6)`` float64 corners."""
    counts: np.ndarray
    """Boxes per sample, ``(B,)``."""
    names: list[str]
    """One name per box."""
    ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Optionally the names as ids, ``names[i] == vocabulary[ids[i]]``: saves :func:`name_ids` a lookup per box."""
    vocabulary: list[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_lists(
        cls, boxes: Sequence[Sequence[Sequence[float]]], names: Sequence[Sequence[str]], dims: int
    ) -> BoxColumns:
        """From per-sample lists of boxes and of names (one name per box)."""
        counts = np.fromiter(map(len, boxes), dtype=np.intp, count=len(boxes))
        total = int(counts.sum()) * dims
        flat = np.fromiter(chain.from_iterable(chain.from_iterable(boxes)), dtype=np.float64, count=total)
        np.nan_to_num(flat, copy=False, nan=0.0, posinf=1.0, neginf=0.0)  # a NaN box would poison the matching
        return cls(flat.reshape(-1, dims), counts, list(chain.from_iterable(names)))

    @classmethod
    def from_reading(cls, reading: ParsedColumns) -> BoxColumns:
        """The boxes of a box format's batch reading, as they are (numbers too large for a float clipped
        as :meth:`from_regions` clips them)."""
        boxes = reading.boxes
        if not np.isfinite(boxes).all():
            boxes = np.nan_to_num(boxes, nan=0.0, posinf=1.0, neginf=0.0)
        return cls(boxes, reading.counts, reading.names, reading.name_ids, reading.vocabulary)

    @classmethod
    def from_regions(
        cls, samples: Iterable[Sequence[Region]], dims: int, name: Callable[[str], str] = normalise_name
    ) -> BoxColumns:
        """Every box of the right dimension, named ``name(region.name)``."""
        samples = list(samples)
        read = RegionRead.of(samples, dims)
        if read is None:
            return cls._from_regions_filtered(samples, dims, name)
        return read.columns(name)

    @classmethod
    def _from_regions_filtered(
        cls, samples: Iterable[Sequence[Region]], dims: int, name: Callable[[str], str]
    ) -> BoxColumns:
        """:meth:`from_regions` box by box, leaving out boxes of another dimension."""
        boxes: list[list[list[float]]] = []
        names: list[list[str]] = []
        for regions in samples:
            kept = [(b, r.name) for r in regions for b in r.boxes if len(b) == dims]
            boxes.append([b for b, _ in kept])
            names.append([name(n) for _, n in kept])
        return cls.from_lists(boxes, names, dims)

    def __len__(self) -> int:
        return len(self.counts)

    def padded(self, members: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes of ``members`` as ``(len(members), size, dims)`` (zero boxes after the last) and flat box indices
        (``-1`` for padding)."""
        counts = self.counts[members]
        starts = (np.cumsum(self.counts) - self.counts)[members]
        slots = np.arange(size)
        index = np.where(slots[None, :] < counts[:, None], starts[:, None] + slots[None, :], -1)
        if not len(self.boxes):
            return np.zeros((len(members), size, self.boxes.shape[1])), index
        boxes = np.where((index >= 0)[:, :, None], self.boxes[np.maximum(index, 0)], 0.0)
        return boxes, index


@dataclass
class RegionRead:
    """The boxes and names of many samples' Region objects, read in one pass, names as ids of distinct raw names.

    Reading boxes out of pydantic objects is the fixed cost of scoring, and it is bound by
    memory more than by Python: every object is visited as few times as possible, and all
    numbers are read in one ``np.fromiter``.
    """

    boxes: np.ndarray
    """``(total, dims)`` corners, NaN read as 0 and infinities clipped (a NaN box would poison the matching)."""
    counts: np.ndarray
    """Boxes per sample."""
    box_ids: np.ndarray
    """Per box, the index of its region's raw name in ``raw_names``."""
    raw_names: list[str]
    region_sample: np.ndarray
    """Per region (in sample order), the sample it belongs to."""
    region_ids: np.ndarray
    region_boxes: np.ndarray
    """Per region, its number of boxes."""

    @classmethod
    def of(cls, samples: Sequence[Sequence[Region]], dims: int) -> RegionRead | None:
        """The read, or None when some box has the other dimension (then boxes must be filtered one by one)."""
        regions = list(chain.from_iterable(samples))
        box_lists = list(map(attrgetter("boxes"), regions))
        per_region = np.fromiter(map(len, box_lists), dtype=np.intp, count=len(box_lists))
        numbers = chain.from_iterable(chain.from_iterable(box_lists))
        try:  # boxes hold 4 or 6 numbers (Region validates it): a box of the other dimension miscounts them
            flat = np.fromiter(numbers, dtype=np.float64, count=int(per_region.sum()) * dims)
        except ValueError:  # too few numbers: some box is shorter
            return None
        if next(numbers, None) is not None:  # too many: some box is longer
            return None
        np.nan_to_num(flat, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        distinct: dict[str, int] = {}  # names repeat: each distinct one is mapped once
        names = map(attrgetter("name"), regions)
        region_ids = np.array([distinct.setdefault(n, len(distinct)) for n in names], dtype=np.intp)
        region_sample = np.repeat(np.arange(len(samples)), np.fromiter(map(len, samples), np.intp, len(samples)))
        counts = np.bincount(region_sample, weights=per_region, minlength=len(samples)).astype(np.intp)
        box_ids = np.repeat(region_ids, per_region)
        return cls(flat.reshape(-1, dims), counts, box_ids, list(distinct), region_sample, region_ids, per_region)

    def columns(self, name: Callable[[str], str], rows: np.ndarray | None = None) -> BoxColumns:
        """The boxes of samples ``rows`` (all by default, in order), named ``name(raw name)``."""
        vocabulary = list(map(name, self.raw_names))
        boxes, counts, ids = self.boxes, self.counts, self.box_ids
        if rows is not None and not (len(rows) == len(counts) and np.array_equal(rows, np.arange(len(rows)))):
            counts = self.counts[rows]
            starts = (np.cumsum(self.counts) - self.counts)[rows]
            index = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
            boxes, ids = boxes[index], ids[index]
        return BoxColumns(boxes, counts, lookup(vocabulary, ids), ids, vocabulary)

    def subtasks(self) -> np.ndarray:
        """:func:`derive_subtask` of every sample at once (names normalised)."""
        size = len(self.counts)
        normalised: dict[str, int] = {}
        name_ids = np.array([normalised.setdefault(normalise_name(n), len(normalised)) for n in self.raw_names])
        width = max(len(normalised), 1)
        keys = np.unique(self.region_sample * width + name_ids[self.region_ids]) if len(self.region_ids) else []
        names = np.bincount(np.asarray(keys, dtype=np.intp) // width, minlength=size)
        multi_box = np.bincount(self.region_sample, weights=self.region_boxes > 1, minlength=size) > 0
        single_object = np.where(self.counts > 1, 1, 0)  # index into SUBTASKS
        code = np.where(names <= 1, single_object, np.where(multi_box, 3, 2))
        return np.array(SUBTASKS, dtype=object)[code]


@dataclass
class ReferenceIndex:
    """The reference boxes of a split as columns, read before generation (``RegionAligned.prepare``).

    Reading the reference objects is a large part of scoring a split in ``medrega`` mode;
    done while nothing waits for it, scoring only looks the samples up
    (:meth:`rows`: any subset, in any order, by identity). The index holds the samples, so
    their ids cannot be reused by other objects while it lives. Samples are not changed after
    loading (nothing in regbench does); one changed later would be scored by its old boxes.
    """

    samples: list[Sample]
    dims: int
    read: RegionRead
    _ids: np.ndarray = field(repr=False)
    _order: np.ndarray = field(repr=False)

    @functools.cached_property
    def subtasks(self) -> np.ndarray:
        """Each sample's derived subtask (when the task does not name one)."""
        return self.read.subtasks()

    @classmethod
    def build(cls, samples: Sequence[Sample]) -> ReferenceIndex | None:
        """The index, or None when the split has boxes of both dimensions (those are read per call)."""
        samples = list(samples)
        objects = list(map(attrgetter("objects"), samples))
        dims = next((len(b) for regions in objects for r in regions for b in r.boxes), 4)
        read = RegionRead.of(objects, dims)
        if read is None:
            return None
        ids = np.fromiter(map(id, samples), dtype=np.uint64, count=len(samples))
        order = np.argsort(ids, kind="stable")
        return cls(samples, dims, read, ids[order], order)

    def rows(self, samples: Sequence[Sample]) -> np.ndarray | None:
        """Each sample's row, or None if any of them is not in the index."""
        ids = np.fromiter(map(id, samples), dtype=np.uint64, count=len(samples))
        if not len(self._ids):
            return None if len(ids) else np.zeros(0, dtype=np.intp)
        position = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return self._order[position] if np.array_equal(self._ids[position], ids) else None


def name_ids(columns: Sequence[BoxColumns], vocabulary: dict[str, int]) -> list[np.ndarray]:
    """Each column set's names as integer ids; new names extend ``vocabulary``."""
    out = []
    for c in columns:
        if c.ids is not None and c.vocabulary is not None:
            local = [vocabulary.setdefault(name, len(vocabulary)) for name in c.vocabulary]
            out.append(np.array(local, dtype=np.intp)[c.ids] if len(c.ids) else np.zeros(0, dtype=np.intp))
            continue
        for name in dict.fromkeys(c.names):
            vocabulary.setdefault(name, len(vocabulary))
        out.append(np.fromiter(map(vocabulary.__getitem__, c.names), dtype=np.intp, count=len(c.names)))
    return out


def lookup(vocabulary: list[str], ids: np.ndarray) -> list[str]:
    """``[vocabulary[i] for i in ids]``, by one take on an object array."""
    table = np.empty(len(vocabulary), dtype=object)
    table[:] = vocabulary
    return table[ids].tolist()  # type: ignore[no-any-return]
