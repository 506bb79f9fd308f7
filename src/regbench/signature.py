"""Metric signatures: everything that fixes a number, as a value with named fields.

A signature is written the way sacrebleu writes its own, ``name:value`` parts joined by ``|``,
with the metric key first and the regbench version last::

    bleu4|n:4|plugin:nlg|tok:ptb|agg:corpus|impl:pycocoevalcap-1.2|bs:1000|rs:1234|regbench:0.1.0
    ^key  ^qualifiers ^plugin ^parts .............................. ^bs     ^rs     ^version

- ``key``: the metric key the number is reported under (``results.json`` ``metrics``).
- ``qualifiers``: parts that say what the key itself is (nlg's ``n:4``), written before the plugin.
- ``plugin``: the plugin that computed the key; not written when it is the key itself (``rouge1``).
- ``parts``: the plugin's resolved options and the facts it adds (tokenizer, checkpoint hash, ...),
  in the plugin's order. A part is ``(name, value)``; a value of ``None`` is a part written
  without a colon. A value may hold ``:`` and ``,`` (the name ends at the first colon).
- ``bs`` / ``rs``: bootstrap trials and seed of the 95% interval (added by the runner).
- ``version``: the regbench version.

:meth:`Signature.parse` reads back every string :meth:`Signature.format` writes, and any other
string too (``parse(text).format() == text`` for every ``text``). Two results were computed
the same way when their :meth:`Signature.comparable` signatures are equal: the interval's
trials and seed do not change the number.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from regbench import __version__

Part = tuple[str, str | None]
"""One ``name:value`` part; a value of ``None`` is a part written without a colon."""

_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


@dataclass(frozen=True)
class Signature:
    """The identity of one metric value: key, plugin, its resolved options, bootstrap, version."""

    key: str
    """The metric key, written first."""
    plugin: str | None = None
    """The plugin that computed the key; ``None`` when it is the key itself (then not written)."""
    parts: tuple[Part, ...] = ()
    """The plugin's resolved options and facts, in its order, written after ``plugin:``."""
    qualifiers: tuple[Part, ...] = ()
    """Parts that describe the key itself (``n:4`` of ``bleu4``), written before ``plugin:``."""
    bs: int | None = None
    """Bootstrap trials of the interval."""
    rs: int | None = None
    """Bootstrap seed of the interval."""
    version: str | None = None
    """The regbench version, written last."""

    def __post_init__(self) -> None:
        # accept lists (and pairs as lists) from callers; store hashable tuples
        object.__setattr__(self, "parts", _as_parts(self.parts))
        object.__setattr__(self, "qualifiers", _as_parts(self.qualifiers))
        written = self._written()
        bad = [text for text in written if "|" in text]
        if bad:
            raise ValueError(f"signature parts cannot hold '|': {bad[0]!r}")
        colon = next((name for name, _ in (*self.qualifiers, *self.parts) if ":" in name), None)
        if colon is not None:
            raise ValueError(f"signature part names cannot hold ':': {colon!r}")
        if _fields_of(written) != self._fields():
            raise ValueError(
                f"signature {'|'.join(written)!r} would not read back as written: a part named plugin, bs, rs or "
                "regbench where that field is unset, or qualifiers without a plugin"
            )

    # -- building ---------------------------------------------------------------------
    @classmethod
    def for_plugin(
        cls,
        plugin: str,
        key: str | None,
        parts: Iterable[Part] = (),
        *,
        qualifiers: Iterable[Part] = (),
        version: str = __version__,
    ) -> Signature:
        """A plugin's signature for ``key`` (``None``: the plugin's own name); ``plugin:`` is left
        out when the key is the plugin's name."""
        key = key or plugin
        return cls(
            key=key,
            plugin=None if key == plugin else plugin,
            parts=tuple(parts),
            qualifiers=tuple(qualifiers),
            version=version,
        )

    def with_bootstrap(self, trials: int, seed: int) -> Signature:
        """This signature with the interval's trials and seed (written before the version)."""
        return dataclasses.replace(self, bs=trials, rs=seed)

    def comparable(self, *, patch: bool = True) -> Signature:
        """What must be equal for two values to be comparable: no bootstrap trials and seed, and
        (``patch=False``) the version cut to ``major.minor``."""
        version = self.version
        if not patch and version is not None:
            version = ".".join(version.split(".")[:2])
        return dataclasses.replace(self, bs=None, rs=None, version=version)

    # -- text -------------------------------------------------------------------------
    def format(self) -> str:
        """``key|qualifiers|plugin:NAME|parts|bs:N|rs:N|regbench:VERSION`` (unset fields left out)."""
        return "|".join(self._written())

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> Signature:
        """The signature a string writes; ``Signature.parse(s.format()) == s``, and any string reads
        back as itself: ``Signature.parse(text).format() == text``."""
        return cls(**_fields_of(text.split("|")))

    # -- helpers ----------------------------------------------------------------------
    def _written(self) -> list[str]:
        """The ``|``-separated items, in order."""
        items = [self.key, *map(_write, self.qualifiers)]
        if self.plugin is not None:
            items.append(f"plugin:{self.plugin}")
        items += map(_write, self.parts)
        if self.bs is not None:
            items.append(f"bs:{self.bs}")
        if self.rs is not None:
            items.append(f"rs:{self.rs}")
        if self.version is not None:
            items.append(f"regbench:{self.version}")
        return items

    def _fields(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def _as_parts(parts: Iterable[Sequence[str | None]]) -> tuple[Part, ...]:
    out = []
    for part in parts:
        name, value = part
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            raise TypeError(f"a signature part is (str, str | None), got {part!r}")
        out.append((name, value))
    return tuple(out)


def _write(part: Part) -> str:
    name, value = part
    return name if value is None else f"{name}:{value}"


def _read(item: str) -> Part:
    name, colon, value = item.partition(":")
    return (name, value) if colon else (name, None)


def _fields_of(items: Sequence[str]) -> dict[str, Any]:
    """Signature fields from the ``|``-separated items: the key first; the version, seed and
    trials popped from the end (each only where it is); the first ``plugin:`` splits the rest."""
    rest = list(items[1:])
    fields: dict[str, Any] = {"key": items[0] if items else "", "version": None, "rs": None, "bs": None}
    if rest and rest[-1].startswith("regbench:"):
        fields["version"] = rest.pop().removeprefix("regbench:")
    for name in ("rs", "bs"):
        if rest and rest[-1].startswith(f"{name}:") and _INTEGER.fullmatch(rest[-1][len(name) + 1 :]):
            fields[name] = int(rest.pop()[len(name) + 1 :])
    at = next((i for i, item in enumerate(rest) if item.startswith("plugin:")), None)
    if at is None:
        fields.update(plugin=None, qualifiers=(), parts=tuple(map(_read, rest)))
    else:
        fields.update(
            plugin=rest[at].removeprefix("plugin:"),
            qualifiers=tuple(map(_read, rest[:at])),
            parts=tuple(map(_read, rest[at + 1 :])),
        )
    return fields
