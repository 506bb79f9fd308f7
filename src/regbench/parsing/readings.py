"""Model outputs read once per reading: the task's parse, and the readings plugins declare for themselves.

Most plugins score the task's parse (the parser chain with the task's box format, what
samples.jsonl shows as ``parsed``). A plugin that must read outputs its own way names a box
format in ``Metric.reads`` (``region_aligned`` in ``mode: medrega`` reads with
``medrega_released``, MedRegA's released parser). :func:`read_outputs` reads every output once
per distinct reading, and :meth:`Readings.items` gives each plugin the pairs of its reading. A
format with a batch reader (``read_batch``) reads all outputs at once into
:class:`ParsedColumns`, which a columnar plugin takes as they are.

A sample is a parse failure when any reading of its output failed: the task's parse
(``parsed.ok``) or a plugin's own reading (:attr:`Readings.errors`, written to samples.jsonl
as ``reading_errors`` where the task's parse succeeded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from regbench.parsing.base import get_box_format, parse_output
from regbench.types import Parsed, Sample


@dataclass(eq=False)
class ParsedColumns(Sequence[Parsed]):
    """Many outputs read by one box format, held as flat columns: box ``j`` of output ``k`` is row
    ``counts[:k].sum() + j``, as ``Parsed.objects`` would list them.

    A sequence of :class:`~regbench.types.Parsed` too: item ``k`` is read on demand by the format's
    one-output path, which tests hold equal to the columns.
    """

    boxes: np.ndarray
    """``(total, dims)`` float64 corners, output after output."""
    counts: np.ndarray
    """Boxes per output, ``(B,)``."""
    names: list[str]
    """Each box's name (its region's name)."""
    ok: np.ndarray
    """Per output, ``Parsed.ok``."""
    outputs: Sequence[str | None] = field(repr=False)
    """The outputs as given (``None``: the model returned an error)."""
    read_one: Callable[[str | None], Parsed] = field(repr=False)
    """The format's one-output reading (the same options as the batch)."""
    name_ids: np.ndarray | None = field(default=None, repr=False)
    """Optionally each box's name as an index into ``vocabulary`` (names repeat: saves a lookup per box)."""
    vocabulary: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.counts)

    @overload
    def __getitem__(self, index: int) -> Parsed: ...
    @overload
    def __getitem__(self, index: slice) -> list[Parsed]: ...
    def __getitem__(self, index: int | slice) -> Parsed | list[Parsed]:
        if isinstance(index, slice):
            return [self.read_one(output) for output in self.outputs[index]]
        return self.read_one(self.outputs[index])


class ReadItems(Sequence[tuple[Parsed, Sample]]):
    """The (parsed output, sample) pairs of one reading, as a plugin's ``stats_batch`` gets them.

    ``parsed`` is the reading itself and ``samples`` the samples: a columnar plugin takes a
    :class:`ParsedColumns` whole from there (iterating the pairs reads each of its outputs again).
    """

    def __init__(self, parsed: Sequence[Parsed], samples: Sequence[Sample]) -> None:
        if len(parsed) != len(samples):
            raise ValueError(f"{len(parsed)} parsed outputs for {len(samples)} samples")
        self.parsed, self.samples = parsed, samples

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, index: int) -> tuple[Parsed, Sample]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Parsed, Sample]]: ...
    def __getitem__(self, index: int | slice) -> tuple[Parsed, Sample] | list[tuple[Parsed, Sample]]:
        if isinstance(index, slice):
            return list(zip(self.parsed[index], self.samples[index], strict=True))
        return self.parsed[index], self.samples[index]

    def __iter__(self) -> Iterator[tuple[Parsed, Sample]]:
        return zip(self.parsed, self.samples, strict=True)


@dataclass
class Readings:
    """Every output of a split read once per distinct reading (:func:`read_outputs`)."""

    samples: Sequence[Sample]
    by_reading: dict[str | None, Sequence[Parsed]]
    """Reading -> one parsed output per sample; the key ``None`` is the task's parse."""
    errors: dict[int, dict[str, str]]
    """Sample index -> {reading: error} of the plugins' own readings that failed on an output the task's
    parse read (where the task's parse failed, ``parsed`` already says so)."""

    @property
    def parsed(self) -> Sequence[Parsed]:
        """The task's parse (samples.jsonl's ``parsed``)."""
        return self.by_reading[None]

    def items(self, reads: str | None) -> Sequence[tuple[Parsed, Sample]]:
        """The pairs a plugin that declares ``reads`` (``Metric.reads``) scores."""
        if reads is None:
            return list(zip(self.parsed, self.samples, strict=True))
        return ReadItems(self.by_reading[reads], self.samples)


def read_outputs(
    outputs: Sequence[str | None],
    samples: Sequence[Sample],
    *,
    box_format: str,
    expect_boxes: bool,
    reads: Iterable[str | None] = (),
) -> Readings:
    """Read each output once per distinct reading: the task's parse always, and every box format in ``reads``.

    Parameters
    ----------
    outputs : the model's last answer per sample (``None`` where the model returned an error).
    samples : the samples, in the same order.
    box_format : the task's box format (:func:`~regbench.parsing.parse_output`).
    expect_boxes : whether the task needs boxes (an output without any is then a parse failure).
    reads : the readings the plugins declare (``Metric.reads``); ``None`` is the task's parse. A
        format with ``read_batch`` reads all outputs at once (each output whole, as that format
        defines); another reads each output through the parser chain.
    """
    by_reading: dict[str | None, Sequence[Parsed]] = {
        None: [
            parse_output(output, box_format=box_format, sample=sample, expect_boxes=expect_boxes)
            for output, sample in zip(outputs, samples, strict=True)
        ]
    }
    errors: dict[int, dict[str, str]] = {}
    for name in sorted({r for r in reads if r is not None}):
        read_batch = getattr(get_box_format(name), "read_batch", None)
        if read_batch is not None:
            reading: Sequence[Parsed] = read_batch(outputs, expect_boxes=expect_boxes)
        else:
            reading = [
                parse_output(output, box_format=name, sample=sample, expect_boxes=expect_boxes)
                for output, sample in zip(outputs, samples, strict=True)
            ]
        if isinstance(reading, ParsedColumns):
            failed = np.flatnonzero(~reading.ok).tolist()
        else:
            failed = [k for k, parsed in enumerate(reading) if not parsed.ok]
        for k in failed:
            if by_reading[None][k].ok:
                errors.setdefault(k, {})[name] = reading[k].error or "not read"
        by_reading[name] = reading
    return Readings(samples, by_reading, errors)
