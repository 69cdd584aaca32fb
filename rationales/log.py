"""Every LLM generation, logged in SQLite (like Simon Willison's `llm` log); the log is the cache.

    log = GenerationLog(project.workdir / "rationales" / "log.sqlite")
    key = cache_key(video="v1", aspect="humor", model=..., revision=..., adapter=..., prompt_hash=...,
    params=...)
    log.get(key)                     # a Row, or None: generate only then
    log.add([Record(...), ...])      # one transaction per batch: a killed run loses at most that batch
    log.rows(video="v1")             # what `memo rationale show` prints

One row per generation: video, split, aspect, stage (zero-shot | few-shot | a caller's own word, e.g.
readvise), model, revision, adapter, template, template hash, prompt hash, fold, exemplar ids, the prompt
(JSON chat messages), the text, the parsed rating, prompt and generated tokens, seconds, time. Ratings read
from the next-token distribution (memo.rationales.rating) are cached the same way in a second table,
`ratings`: one row per (video, aspect, model, rating prompt) with the expected rating, its spread, the label
mass and the ten label probabilities (`add_ratings`, `get_ratings`); they generate no text, so they never
appear among the generations. A third table, `final`, records which generation is final per (video, aspect)
after each `memo rationale` (`set_final`): the texts the feature store embedded, which the LLM fusion's prompt
then quotes (`final_rationales`). `key` is UNIQUE: the same key is never stored twice, so a rerun after a kill
finds what was done and generates only the rest. WAL journaling lets a reader (`memo rationale show`) look
while a run writes. A damaged log file is a MemoError naming the file (delete it to start over; only the
cached generations in it are lost), never a raw sqlite3 traceback.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memo.errors import MemoError

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    video TEXT NOT NULL,
    split TEXT,
    aspect TEXT,
    stage TEXT,
    model TEXT,
    revision TEXT,
    adapter TEXT,
    template TEXT,
    template_hash TEXT,
    prompt_hash TEXT,
    fold INTEGER,
    exemplars TEXT,
    params TEXT,
    prompt TEXT,
    response TEXT,
    rating REAL,
    prompt_tokens INTEGER,
    tokens INTEGER,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS generations_video ON generations (video, aspect);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    video TEXT NOT NULL,
    split TEXT,
    aspect TEXT,
    model TEXT,
    revision TEXT,
    adapter TEXT,
    template TEXT,
    template_hash TEXT,
    prompt_hash TEXT,
    style TEXT,
    expected REAL,
    std REAL,
    mass REAL,
    probs TEXT,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS final (
    video TEXT NOT NULL,
    aspect TEXT NOT NULL,
    key TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (video, aspect)
);
"""


def log_file(workdir: str | Path) -> Path:
    """Where a project keeps its generation log: <workdir>/rationales/log.sqlite."""
    return Path(workdir) / "rationales" / "log.sqlite"


def final_rationales(path: str | Path, ids: list[str]) -> dict[str, dict[str, str]]:
    """{video: {aspect: text}} from a log: per aspect the rationale the last `memo rationale` chose
    (the `final` table: what the feature store embedded), else, for a log without that record, the
    newest few-shot rationale, else the newest zero-shot one. Empty when there is no log."""
    if not path or not Path(path).is_file():
        return {}
    out: dict[str, dict[str, str]] = {}
    with GenerationLog(path) as log:
        finals = log.final_keys(ids)
        chosen = log.get_many(finals.values())
        for vid in ids:
            best: dict[str, tuple[int, str]] = {}
            for r in log.rows(video=vid):  # oldest first, so a later row of the same rank wins
                if r.aspect and r.response:
                    rank = 1 if r.stage == "few-shot" else 0
                    if rank >= best.get(r.aspect, (-1, ""))[0]:
                        best[r.aspect] = (rank, r.response)
            texts = {a: t for a, (_, t) in best.items()}
            texts.update(
                {
                    a: chosen[k].response
                    for (v, a), k in finals.items()
                    if v == vid and k in chosen and chosen[k].response
                }
            )
            if texts:
                out[vid] = texts
    return out


def sha(obj: Any) -> str:
    """Short stable hash of a JSON-able object (sorted keys)."""
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()
    ).hexdigest()[:20]


def cache_key(**parts: Any) -> str:
    """What makes a generation the same generation: every input that can change its text."""
    return sha(parts)


@dataclass
class Record:
    key: str
    video: str
    response: str
    split: str | None = None
    aspect: str | None = None
    stage: str | None = None
    model: str | None = None
    revision: str | None = None
    adapter: str | None = None
    template: str | None = None
    template_hash: str | None = None
    prompt_hash: str | None = None
    fold: int | None = None
    exemplars: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    prompt: Any = None  # chat messages (JSON-able)
    rating: float | None = None
    prompt_tokens: int | None = None
    tokens: int | None = None
    seconds: float | None = None


@dataclass
class RatingRecord:
    """One rating read from the next-token distribution at the rating slot (no text generated)."""

    key: str
    video: str
    expected: float
    std: float
    mass: float
    probs: list[float]  # (10,) over the labels 1..10
    split: str | None = None
    aspect: str | None = None
    model: str | None = None
    revision: str | None = None
    adapter: str | None = None
    template: str | None = None
    template_hash: str | None = None
    prompt_hash: str | None = None
    style: str | None = None  # chat | plain
    seconds: float | None = None


class Row(dict):
    """A log row: a dict with attribute access; `exemplars`, `params` and `prompt` decoded from JSON."""

    __getattr__ = dict.get


def _damaged(path: Path, e: sqlite3.DatabaseError) -> MemoError | None:
    """The one sentence for a log sqlite cannot use: busy (wait), or damaged (delete it to start over).

    None for errors that are memo's own (a constraint, a bad query): those stay tracebacks, so a bug
    never tells anyone to delete a healthy log.
    """
    cause = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, sqlite3.OperationalError):
        if "locked" in cause or "busy" in cause:
            return MemoError(
                f"the rationale log {path} is locked by another process ({cause}); wait for it to "
                "finish, then run again."
            )
        if not any(w in cause for w in ("disk I/O", "unable to open", "malformed", "not a database")):
            return None
    elif type(e) is not sqlite3.DatabaseError:  # IntegrityError, ProgrammingError, ...: memo's own mistakes
        return None
    return MemoError(
        f"the rationale log {path} cannot be read ({cause}); delete it to start over (only its cached "
        "rationales are lost), "
        "or restore it from a backup."
    )


def _guarded(method):
    """Turn sqlite errors of a GenerationLog method that mean a damaged or busy file into the one-sentence
    MemoError."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            err = _damaged(self.path, e)
            if err is None:
                raise
            raise err from e

    return call


class GenerationLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60)
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            self._db.commit()
            # a damaged page can hide behind a readable header: a quick check before any work relies on the
            # log
            ok = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(f"quick_check says {ok}")
        except sqlite3.DatabaseError as e:
            self._db.close()
            err = _damaged(self.path, e)
            if err is None:
                raise
            raise err from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> GenerationLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing
    @_guarded
    def add(self, records: Iterable[Record]) -> int:
        """Insert records in one transaction; a key already there is kept as it was (first write wins)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        rows = []
        for r in records:
            d = asdict(r)
            d["created"] = now
            for k in ("exemplars", "params", "prompt"):
                d[k] = json.dumps(d[k], ensure_ascii=False, default=str)
            rows.append(d)
        if not rows:
            return 0
        cols = list(rows[0])
        with self._db:
            cur = self._db.executemany(
                f"INSERT OR IGNORE INTO generations ({', '.join(cols)}) VALUES "
                f"({', '.join(':' + c for c in cols)})",
                rows,
            )
        return cur.rowcount

    # -- reading
    @staticmethod
    def _row(r: sqlite3.Row) -> Row:
        d = Row(dict(r))
        for k in ("exemplars", "params", "prompt"):
            if d.get(k) is not None:
                d[k] = json.loads(d[k])
        return d

    @_guarded
    def get(self, key: str) -> Row | None:
        r = self._db.execute("SELECT * FROM generations WHERE key = ?", (key,)).fetchone()
        return self._row(r) if r else None

    def _where_in(self, table: str, column: str, values: Iterable[str]) -> Iterable[sqlite3.Row]:
        """The rows of `table` whose `column` is one of `values` (in chunks: SQLite caps bound parameters)."""
        values = list(dict.fromkeys(values))
        for a in range(0, len(values), 500):
            part = values[a : a + 500]
            yield from self._db.execute(
                f"SELECT * FROM {table} WHERE {column} IN ({', '.join('?' * len(part))})", part
            )

    def _by_keys(self, table: str, keys: Iterable[str], row: Callable[[sqlite3.Row], Row]) -> dict[str, Row]:
        """{key: row(r)} for the keys `table` holds."""
        return {r["key"]: row(r) for r in self._where_in(table, "key", keys)}

    @_guarded
    def get_many(self, keys: Iterable[str]) -> dict[str, Row]:
        """{key: Row} for the generations in the log."""
        return self._by_keys("generations", keys, self._row)

    @_guarded
    def rows(
        self, video: str | None = None, aspect: str | None = None, stage: str | None = None
    ) -> list[Row]:
        """Rows matching the filters, oldest first."""
        where, args = [], []
        for col, v in (("video", video), ("aspect", aspect), ("stage", stage)):
            if v is not None:
                where.append(f"{col} = ?")
                args.append(v)
        q = "SELECT * FROM generations" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [self._row(r) for r in self._db.execute(q, args)]

    # -- which rationale is final per (video, aspect): the one the feature store embedded last
    @_guarded
    def set_final(self, keys: dict[tuple[str, str], str]) -> None:
        """Record {(video, aspect): generation key} as the final rationales, replacing earlier choices."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO final (video, aspect, key, updated) VALUES (?, ?, ?, ?)",
                [(v, a, k, now) for (v, a), k in keys.items()],
            )

    @_guarded
    def final_keys(self, videos: Iterable[str]) -> dict[tuple[str, str], str]:
        """{(video, aspect): key} recorded by set_final for these videos."""
        return {(r["video"], r["aspect"]): r["key"] for r in self._where_in("final", "video", videos)}

    @_guarded
    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    # -- ratings read from the next-token distribution
    @_guarded
    def add_ratings(self, records: Iterable[RatingRecord]) -> int:
        """Insert rating records in one transaction (first write of a key wins, as for generations)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        rows = [
            {**asdict(r), "created": now, "probs": json.dumps([round(float(p), 6) for p in r.probs])}
            for r in records
        ]
        if not rows:
            return 0
        cols = list(rows[0])
        with self._db:
            cur = self._db.executemany(
                f"INSERT OR IGNORE INTO ratings ({', '.join(cols)}) VALUES "
                f"({', '.join(':' + c for c in cols)})",
                rows,
            )
        return cur.rowcount

    @_guarded
    def get_ratings(self, keys: Iterable[str]) -> dict[str, Row]:
        """{key: Row} of the ratings in the log (`probs` decoded)."""

        def row(r: sqlite3.Row) -> Row:
            d = Row(dict(r))
            d["probs"] = json.loads(d["probs"]) if d.get("probs") else None
            return d

        return self._by_keys("ratings", keys, row)

    @_guarded
    def rating_rows(self, video: str) -> list[Row]:
        """A video's distribution ratings, oldest first."""
        return [
            Row(dict(r))
            for r in self._db.execute("SELECT * FROM ratings WHERE video = ? ORDER BY id", (video,))
        ]
