"""SQLite response cache: a run killed at any point resumes without re-querying finished turns.

Keys are request fingerprints (model identity + rendered messages + generation
parameters). Each response is committed as soon as it arrives; errors are not cached, so
a rerun retries them. WAL mode keeps committed rows safe when the process is killed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from regbench.types import Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    usage TEXT NOT NULL DEFAULT '{}',
    logprobs TEXT,
    created REAL NOT NULL DEFAULT (julianday('now'))
)
"""


class ResponseCache:
    """A persistent map from request fingerprint to model response."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "logprobs" not in columns:  # a cache written before token log-probabilities were kept
            self._db.execute("ALTER TABLE responses ADD COLUMN logprobs TEXT")
        self.hits = 0
        self.writes = 0

    def get(self, key: str) -> Response | None:
        row = self._db.execute("SELECT text, usage, logprobs FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        logprobs = None if row[2] is None else json.loads(row[2])
        return Response(text=row[0], usage=json.loads(row[1]), cached=True, logprobs=logprobs)

    def put(self, key: str, response: Response) -> None:
        if response.error is not None:
            return
        logprobs = None if response.logprobs is None else json.dumps(response.logprobs)
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, text, usage, logprobs) VALUES (?, ?, ?, ?)",
            (key, response.text, json.dumps(response.usage), logprobs),
        )
        self.writes += 1

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "entries": len(self), "hits": self.hits, "writes": self.writes}

    def close(self) -> None:
        self._db.close()
