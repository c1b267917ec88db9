"""Persistent store of live results: one SQLite file, one row per result, committed as it comes.

Two tables, because the two kinds of result depend on different things:

* ``trainings``: a training run's accuracies and time, keyed by
  ``(space, arch_code, data_id, config_hash, seed)``. The dataset *name* is not in the key: it
  acts only through the training data it maps to (``data_id``, a content hash), so with the default
  digits one training run serves cifar10, cifar100 and ImageNet16-120 alike.
* ``latencies``: the latency of the full-size NATS-Bench network, keyed by
  ``(space, arch_code, dataset, threads, runs)`` -- it depends on the dataset's image size and
  classes, and on this machine, but not on any training.

``arch_code`` is the dense code of :mod:`natsbench_gym.spaces` (independent of any index order).
Each result is committed on its own, so an interrupted sweep resumes where it stopped; the file
uses WAL journaling so several processes can share it (SQLite's transactions are atomic: a write cut
short is rolled back, never read). A file that is not a readable SQLite database (truncated, corrupt,
something else) is checked for when it is opened (``PRAGMA quick_check``), moved aside to
``<name>.corrupt`` and replaced by a fresh one, with a warning. If no file can be opened at all,
results stay in memory and a warning says why.

**Claims.** A driver that trains on a parallel executor first *claims* each architecture in the
``claims`` table (owner, expiry; renewed while its trial runs): another driver sharing the file sees
the claim and waits for the result instead of training the architecture a second time. A claim
whose owner died expires, and the architecture is claimed and trained again.

One store may be used from several threads (the preference page asks for kept networks while a
search queries): the connection is shared under a lock.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["ResultStore", "SCHEMA_VERSION"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trainings (
    space TEXT NOT NULL, arch_code INTEGER NOT NULL, data_id TEXT NOT NULL, config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL, arch_str TEXT NOT NULL,
    train_accuracy REAL, valid_accuracy REAL, test_accuracy REAL, train_time REAL,
    record TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (space, arch_code, data_id, config_hash, seed)
);
CREATE TABLE IF NOT EXISTS latencies (
    space TEXT NOT NULL, arch_code INTEGER NOT NULL, dataset TEXT NOT NULL, threads INTEGER NOT NULL,
    runs INTEGER NOT NULL, latency_ms REAL NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (space, arch_code, dataset, threads, runs)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    space TEXT NOT NULL, arch_code INTEGER NOT NULL, data_id TEXT NOT NULL, config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (space, arch_code, data_id, config_hash, seed)
);
"""

TrainingKey = tuple[str, int, str, str, int]  # space, arch_code, data_id, config_hash, seed
LatencyKey = tuple[str, int, str, int, int]  # space, arch_code, dataset, threads, runs


class ResultStore:
    """Results in memory, backed by an SQLite file (``path=None``: memory only).

    Lookups hit a dict first (microseconds); a miss reads the file once, so results written by
    another process or an earlier session are found too.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._trainings: dict[TrainingKey, dict] = {}
        self._latencies: dict[LatencyKey, float] = {}
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        try:
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):  # locked, read-only ...: not the file's fault
                    raise
                aside = self.path.with_name(self.path.name + ".corrupt")
                logger.warning(
                    "live result cache %s is not a readable SQLite database (%s); moved it to %s and starting "
                    "a new one (its results will be computed again)", self.path, exc, aside,
                )
                for suffix in ("-wal", "-shm"):
                    self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
                os.replace(self.path, aside)
                conn = self._connect()
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.commit()
            elif int(row[0]) != SCHEMA_VERSION:
                conn.close()
                logger.warning(
                    "live result cache %s has schema %s, not %s; keeping results in memory only "
                    "(delete the file or pass another cache path)", self.path, row[0], SCHEMA_VERSION,
                )
                return
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            logger.warning("cannot open live result cache %s (%s); keeping results in memory only", self.path, exc)
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False)  # shared under self._lock
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check[0] if check else 'no answer'}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def __getstate__(self) -> dict:
        # A connection cannot cross processes; the copy reopens the file (e.g. in a vector-env worker).
        state = self.__dict__.copy()
        state["_reopen"] = self._conn is not None
        state["_conn"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        reopen = state.pop("_reopen", False)
        self.__dict__.update(state)
        self._lock = threading.RLock()
        if reopen:
            self._open()

    @property
    def persistent(self) -> bool:
        return self._conn is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, sql: str, params: tuple) -> None:
        if self._conn is None:
            return
        for attempt in range(5):
            try:
                with self._lock, self._conn:  # one transaction per result: committed before the next starts
                    self._conn.execute(sql, params)
                return
            except sqlite3.OperationalError as exc:  # "database is locked" under heavy sharing
                if attempt == 4:
                    logger.warning("could not write to live result cache %s: %s", self.path, exc)
                    return
                time.sleep(0.2 * (attempt + 1))

    # --- trainings ---------------------------------------------------------------------------------
    def get_training(self, key: TrainingKey) -> dict | None:
        record = self._trainings.get(key)
        if record is None and self._conn is not None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT record FROM trainings WHERE space=? AND arch_code=? AND data_id=? AND config_hash=? AND seed=?",
                    key,
                ).fetchone()
            if row is not None:
                record = json.loads(row[0])
                self._trainings[key] = record
        return record

    def put_training(self, key: TrainingKey, arch_str: str, record: dict) -> None:
        self._trainings[key] = record
        self._write(
            "INSERT OR REPLACE INTO trainings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, arch_str, record["train_accuracy"], record["valid_accuracy"], record["test_accuracy"],
             record["train_time"], json.dumps(record), time.time()),
        )

    def training_values(self, space: str, data_id: str, config_hash: str, seed: int, column: str) -> np.ndarray:
        """``column`` of every stored training with this data, config and seed (memory and file)."""
        if column not in ("train_accuracy", "valid_accuracy", "test_accuracy", "train_time"):
            raise ValueError(f"unknown training column {column!r}")
        values = {
            k[1]: float(r[column])
            for k, r in self._trainings.items()
            if k[0] == space and k[2] == data_id and k[3] == config_hash and k[4] == seed
        }
        if self._conn is not None:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT arch_code, {column} FROM trainings WHERE space=? AND data_id=? AND config_hash=? AND seed=?",
                    (space, data_id, config_hash, seed),
                ).fetchall()
            for code, value in rows:
                values.setdefault(int(code), float(value))
        return np.array(list(values.values()), dtype=np.float64)

    # --- claims -------------------------------------------------------------------------------------
    def claim(self, key: TrainingKey, owner: str, ttl: float) -> bool:
        """Claim ``key`` for ``owner`` for ``ttl`` seconds; ``False`` while another owner's claim is
        unexpired. Always ``True`` for a store in memory (nobody else can see it)."""
        if self._conn is None:
            return True
        now = time.time()
        for attempt in range(5):
            try:
                with self._lock:
                    self._conn.execute("BEGIN IMMEDIATE")  # check and set under the file's write lock
                    try:
                        row = self._conn.execute(
                            "SELECT owner, expires FROM claims WHERE space=? AND arch_code=? AND data_id=? AND config_hash=? AND seed=?",
                            key,
                        ).fetchone()
                        mine = row is None or row[0] == owner or row[1] < now
                        if mine:
                            self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, owner, now + ttl))
                        self._conn.execute("COMMIT")
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                return mine
            except sqlite3.OperationalError as exc:
                if attempt == 4:
                    logger.warning("could not claim %s in live result cache %s (%s); training it anyway", key, self.path, exc)
                    return True
                time.sleep(0.2 * (attempt + 1))
        return True

    def renew_claims(self, owner: str, ttl: float) -> None:
        """Push the expiry of every claim of ``owner`` to ``ttl`` seconds from now."""
        self._write("UPDATE claims SET expires=? WHERE owner=?", (time.time() + ttl, owner))

    def release(self, key: TrainingKey, owner: str) -> None:
        """Drop ``owner``'s claim of ``key`` (its result is written, or its trial failed)."""
        self._write(
            "DELETE FROM claims WHERE space=? AND arch_code=? AND data_id=? AND config_hash=? AND seed=? AND owner=?",
            (*key, owner),
        )

    # --- latencies ---------------------------------------------------------------------------------
    def get_latency(self, key: LatencyKey) -> float | None:
        value = self._latencies.get(key)
        if value is None and self._conn is not None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT latency_ms FROM latencies WHERE space=? AND arch_code=? AND dataset=? AND threads=? AND runs=?",
                    key,
                ).fetchone()
            if row is not None:
                value = float(row[0])
                self._latencies[key] = value
        return value

    def put_latency(self, key: LatencyKey, value: float) -> None:
        self._latencies[key] = value
        self._write("INSERT OR REPLACE INTO latencies VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, value, time.time()))

    def latency_values(self, space: str, dataset: str, threads: int, runs: int) -> np.ndarray:
        values = {
            k[1]: v for k, v in self._latencies.items() if k[0] == space and k[2] == dataset and k[3] == threads and k[4] == runs
        }
        if self._conn is not None:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT arch_code, latency_ms FROM latencies WHERE space=? AND dataset=? AND threads=? AND runs=?",
                    (space, dataset, threads, runs),
                ).fetchall()
            for code, value in rows:
                values.setdefault(int(code), float(value))
        return np.array(list(values.values()), dtype=np.float64)
