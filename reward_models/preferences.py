"""Pairwise judgments and their append-only store.

A :class:`Comparison` records one judgment: two architectures of a search space (official index and
string), the outcome (:class:`Outcome`: the first, the second, or a tie), who judged it, when, and
how the pair was chosen. A :class:`PreferenceDataset` holds comparisons in memory and, when it has a
path, in a JSON Lines file that is only ever appended to:

* every :meth:`~PreferenceDataset.append` writes one line, then flushes and ``fsync``s it, so a
  judgment a person made survives a crash a moment later;
* undo is an appended *retract* record (:meth:`~PreferenceDataset.retract`,
  :meth:`~PreferenceDataset.undo`), never a rewrite, so the file is also the full history;
* a crash can only leave the *last* line incomplete: :meth:`PreferenceDataset.open` drops that line,
  logs a warning and reports it in :attr:`PreferenceDataset.load_report`; the partial bytes are cut
  off just before the next append. Any other malformed line raises
  :class:`~reward_models.errors.PreferenceDataError` naming the line.

One line per record::

    {"type": "comparison", "version": 1, "id": "...", "space": "topology",
     "a": {"index": 123, "arch": "|...|"}, "b": {"index": 456, "arch": "|...|"}, "outcome": "a",
     "judge": "alice", "timestamp": 1764321234.5, "selector": "random", "dataset": "cifar100"}
    {"type": "retract", "version": 1, "id": "...", "timestamp": 1764321240.1, "judge": "alice", "reason": "undo"}

Example:
    >>> import tempfile, os
    >>> from reward_models.preferences import ArchRef, Comparison, Outcome, PreferenceDataset
    >>> path = os.path.join(tempfile.mkdtemp(), "prefs.jsonl")
    >>> data = PreferenceDataset.open(path)
    >>> c = data.append(Comparison("topology", ArchRef(0, "a"), ArchRef(1, "b"), Outcome.A, "alice"))
    >>> len(PreferenceDataset.open(path))
    1
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from natsbench_gym.types import SpaceKind
from reward_models.errors import PreferenceDataError

if TYPE_CHECKING:
    from natsbench_gym.benchmarks.base import ArchLike, Benchmark

__all__ = ["Outcome", "OUTCOMES", "ArchRef", "Comparison", "LoadReport", "PreferenceDataset", "pair_key", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

#: Version of the JSON Lines record format written by this module.
FORMAT_VERSION = 1


class Outcome(enum.Enum):
    """Result of one comparison: the first architecture (``A``), the second (``B``) or neither (``TIE``)."""

    A = "a"
    B = "b"
    TIE = "tie"

    @classmethod
    def parse(cls, value: object) -> Outcome:
        """Accept a member, its value or name (``"a"``, ``"B"``, ``"tie"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.lower() in (member.value, member.name.lower()):
                    return member
        raise PreferenceDataError(f"unknown outcome {value!r}; expected one of: 'a', 'b', 'tie'")

    @property
    def target(self) -> float:
        """The probability that the first architecture is preferred: 1, 0 or 0.5 for a tie."""
        return {Outcome.A: 1.0, Outcome.B: 0.0, Outcome.TIE: 0.5}[self]

    def flipped(self) -> Outcome:
        """The outcome with the two architectures swapped."""
        return {Outcome.A: Outcome.B, Outcome.B: Outcome.A, Outcome.TIE: Outcome.TIE}[self]

    def __str__(self) -> str:
        return self.value


#: The outcomes as their record values (``"a"``, ``"b"``, ``"tie"``), as interfaces send them.
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


@dataclass(frozen=True)
class ArchRef:
    """An architecture as a record names it: official NATS-Bench index and official string."""

    index: int
    arch_str: str

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 0:
            raise PreferenceDataError(f"architecture index must be an int >= 0, got {self.index!r}")
        object.__setattr__(self, "index", int(self.index))
        if not isinstance(self.arch_str, str) or not self.arch_str:
            raise PreferenceDataError(f"architecture string must be a non-empty str, got {self.arch_str!r}")

    @classmethod
    def of(cls, benchmark: Benchmark, arch: ArchLike) -> ArchRef:
        """The reference of ``arch`` (index, string or encoding) in ``benchmark``'s space."""
        index = benchmark.index(arch)
        return cls(index, benchmark.arch_str(index))


def pair_key(a: int, b: int) -> tuple[int, int]:
    """Order-free key of a pair of indices (Alg. 2 treats (a, b) and (b, a) as one pair)."""
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class Comparison:
    """One pairwise judgment.

    Attributes:
        space: the search space of both architectures.
        arch_a: the first architecture shown.
        arch_b: the second architecture shown.
        outcome: which one the judge preferred.
        judge: who judged (a person's name, or ``"synthetic:<metric>"``).
        timestamp: when, in seconds since the epoch (UTC); default: now.
        selector: how the pair was chosen (``"random"``, ``"active:uncertainty"``, ``"manual"``...).
        dataset: the dataset whose metrics the judge saw, if any.
        id: unique id of this record (the target of a retraction).
    """

    space: SpaceKind
    arch_a: ArchRef
    arch_b: ArchRef
    outcome: Outcome
    judge: str
    timestamp: float = field(default_factory=time.time)
    selector: str = "manual"
    dataset: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", SpaceKind.parse(self.space))
        for name in ("arch_a", "arch_b"):
            if not isinstance(getattr(self, name), ArchRef):
                raise PreferenceDataError(f"{name} must be an ArchRef(index, arch_str), got {getattr(self, name)!r}")
        if self.arch_a.index == self.arch_b.index:
            raise PreferenceDataError(
                f"a comparison needs two different architectures; both are index {self.arch_a.index}"
            )
        object.__setattr__(self, "outcome", Outcome.parse(self.outcome))
        for name in ("judge", "selector", "id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise PreferenceDataError(f"{name} must be a non-empty str, got {value!r}")
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise PreferenceDataError(f"dataset must be a str or None, got {self.dataset!r}")
        try:
            ts = float(self.timestamp)
        except (TypeError, ValueError):
            ts = math.nan
        if not math.isfinite(ts):
            raise PreferenceDataError(f"timestamp must be finite seconds since the epoch, got {self.timestamp!r}")
        object.__setattr__(self, "timestamp", ts)

    @classmethod
    def create(
        cls,
        benchmark: Benchmark,
        a: ArchLike,
        b: ArchLike,
        outcome: Outcome | str,
        judge: str,
        selector: str = "manual",
        dataset: str | None = None,
        timestamp: float | None = None,
    ) -> Comparison:
        """Build a comparison of two architectures of ``benchmark`` (index, string or encoding each)."""
        return cls(
            benchmark.space.kind,
            ArchRef.of(benchmark, a),
            ArchRef.of(benchmark, b),
            Outcome.parse(outcome),
            judge,
            time.time() if timestamp is None else timestamp,
            selector,
            None if dataset is None else str(dataset),
        )

    @property
    def indices(self) -> tuple[int, int]:
        """``(index of a, index of b)``."""
        return self.arch_a.index, self.arch_b.index

    @property
    def key(self) -> tuple[int, int]:
        """Order-free pair key (see :func:`pair_key`)."""
        return pair_key(*self.indices)

    @property
    def winner(self) -> ArchRef | None:
        """The preferred architecture, or ``None`` for a tie."""
        return {Outcome.A: self.arch_a, Outcome.B: self.arch_b, Outcome.TIE: None}[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of this comparison."""
        return {
            "type": "comparison",
            "version": FORMAT_VERSION,
            "id": self.id,
            "space": self.space.value,
            "a": {"index": self.arch_a.index, "arch": self.arch_a.arch_str},
            "b": {"index": self.arch_b.index, "arch": self.arch_b.arch_str},
            "outcome": self.outcome.value,
            "judge": self.judge,
            "timestamp": self.timestamp,
            "selector": self.selector,
            "dataset": self.dataset,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Comparison:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                record["space"],
                ArchRef(record["a"]["index"], record["a"]["arch"]),
                ArchRef(record["b"]["index"], record["b"]["arch"]),
                record["outcome"],
                record["judge"],
                record["timestamp"],
                record.get("selector", "manual"),
                record.get("dataset"),
                record["id"],
            )
        except (KeyError, TypeError) as exc:
            raise PreferenceDataError(f"comparison record lacks or mistypes a field ({exc!r}): {record!r}") from None


@dataclass(frozen=True)
class LoadReport:
    """What :meth:`PreferenceDataset.open` found in the file.

    Attributes:
        records: complete records read (comparisons and retractions).
        comparisons: comparison records among them.
        retractions: retract records among them.
        truncated_bytes: size of an incomplete last line that was dropped (0 if none).
        truncated_preview: its first 80 characters, for the log.
    """

    records: int = 0
    comparisons: int = 0
    retractions: int = 0
    truncated_bytes: int = 0
    truncated_preview: str = ""

    @property
    def truncated(self) -> bool:
        """Whether an incomplete last line was dropped."""
        return self.truncated_bytes > 0


class PreferenceDataset:
    """Comparisons in memory and, with a path, in an append-only JSON Lines file.

    Args:
        comparisons: initial comparisons (kept in memory only; use :meth:`open` for a file).
        space: the search space every comparison must belong to (default: that of the first one).

    Attributes:
        path: the backing file, or ``None`` for an in-memory dataset.
        load_report: what :meth:`open` read (a :class:`LoadReport`; empty for in-memory datasets).
    """

    def __init__(self, comparisons: Iterable[Comparison] = (), space: SpaceKind | str | None = None) -> None:
        self.path: Path | None = None
        self.load_report = LoadReport()
        self.space: SpaceKind | None = None if space is None else SpaceKind.parse(space)
        self._all: dict[str, Comparison] = {}  # every comparison ever appended, by id, in order
        self._retracted: set[str] = set()
        self._repair_offset: int | None = None  # cut the file here before the next append
        self._needs_newline = False
        for c in comparisons:
            self._add(c)

    # --- files ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = True) -> PreferenceDataset:
        """Load a preference file (tolerating an incomplete last line); later appends go to it.

        Args:
            path: the JSON Lines file.
            create: start an empty dataset if the file does not exist (it is created on the first
                append); otherwise raise ``FileNotFoundError``.

        Raises:
            PreferenceDataError: a line other than the last is not a valid record, or the file mixes
                search spaces.
        """
        data = cls()
        data.path = Path(path)
        if not data.path.exists():
            if not create:
                raise FileNotFoundError(f"no preference file at {str(data.path)!r} (pass create=True to start one)")
            return data
        raw = data.path.read_bytes()
        lines = raw.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        counts = {"comparison": 0, "retract": 0}
        for lineno, line in enumerate(lines, start=1):
            if line.strip():
                counts[data._apply(data._parse(line, lineno), lineno)] += 1
        truncated_bytes, preview = 0, ""
        if tail.strip():
            try:
                record = data._parse(tail, len(lines) + 1)
            except PreferenceDataError:
                truncated_bytes = len(tail)
                preview = tail[:80].decode("utf-8", errors="replace")
                data._repair_offset = len(raw) - len(tail)
                logger.warning(
                    "%s: dropped an incomplete last line (%d bytes: %r...), probably cut off by a crash; "
                    "it will be removed before the next append",
                    data.path, truncated_bytes, preview,
                )
            else:  # complete record, only its newline is missing
                counts[data._apply(record, len(lines) + 1)] += 1
                data._needs_newline = True
        data.load_report = LoadReport(
            counts["comparison"] + counts["retract"], counts["comparison"], counts["retract"], truncated_bytes, preview
        )
        logger.debug("loaded %s: %s", data.path, data.load_report)
        return data

    @staticmethod
    def _parse(line: bytes, lineno: int) -> dict[str, Any]:
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PreferenceDataError(
                f"line {lineno} is not a JSON record ({exc}); only the last line of a preference file may be incomplete"
            ) from None
        if not isinstance(record, dict) or record.get("type") not in ("comparison", "retract"):
            raise PreferenceDataError(f"line {lineno} is not a comparison or retract record: {record!r}")
        if int(record.get("version", FORMAT_VERSION)) > FORMAT_VERSION:
            raise PreferenceDataError(
                f"line {lineno} has record version {record['version']}; this reader knows up to {FORMAT_VERSION}"
            )
        return record

    def _apply(self, record: dict[str, Any], lineno: int) -> str:
        try:
            if record["type"] == "comparison":
                self._add(Comparison.from_dict(record))
            else:
                self._mark_retracted(str(record["id"]))
        except (PreferenceDataError, KeyError) as exc:
            raise PreferenceDataError(f"line {lineno} of {self.path}: {exc}") from None
        return record["type"]

    def _write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._repair_offset is not None:
            with open(self.path, "r+b") as fh:
                fh.truncate(self._repair_offset)
                fh.flush()
                os.fsync(fh.fileno())
            logger.info("%s: removed the incomplete last line before appending", self.path)
            self._repair_offset = None
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        if self._needs_newline:
            line = "\n" + line
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._needs_newline = False

    # --- changes ----------------------------------------------------------------------------------
    def _add(self, comparison: Comparison) -> None:
        if not isinstance(comparison, Comparison):
            raise PreferenceDataError(f"expected a Comparison, got {type(comparison).__name__}")
        if self.space is None:
            self.space = comparison.space
        elif comparison.space is not self.space:
            raise PreferenceDataError(
                f"comparison {comparison.id} is of the {comparison.space.value} space; this dataset holds "
                f"{self.space.value} comparisons"
            )
        if comparison.id in self._all:
            raise PreferenceDataError(f"a comparison with id {comparison.id!r} is already in the dataset")
        self._all[comparison.id] = comparison

    def _mark_retracted(self, comparison_id: str) -> None:
        if comparison_id not in self._all:
            raise PreferenceDataError(f"cannot retract {comparison_id!r}: no comparison has that id")
        if comparison_id in self._retracted:
            raise PreferenceDataError(f"comparison {comparison_id!r} is already retracted")
        self._retracted.add(comparison_id)

    def append(self, comparison: Comparison) -> Comparison:
        """Add one judgment; with a file, write it durably (flush + fsync) before returning it."""
        self._add(comparison)
        try:
            self._write(comparison.to_dict())
        except BaseException:
            del self._all[comparison.id]  # memory must not hold what the file does not
            raise
        return comparison

    def extend(self, comparisons: Iterable[Comparison]) -> None:
        """Append several judgments, each written durably."""
        for c in comparisons:
            self.append(c)

    def retract(self, comparison_id: str, judge: str = "unknown", reason: str = "") -> Comparison:
        """Withdraw a comparison by appending a retract record; return the withdrawn comparison."""
        self._mark_retracted(comparison_id)
        record = {
            "type": "retract",
            "version": FORMAT_VERSION,
            "id": comparison_id,
            "timestamp": time.time(),
            "judge": judge,
            "reason": reason,
        }
        try:
            self._write(record)
        except BaseException:
            self._retracted.discard(comparison_id)
            raise
        return self._all[comparison_id]

    def undo(self, judge: str = "unknown") -> Comparison | None:
        """Retract the most recent comparison still in force; ``None`` if there is none."""
        active = self.comparisons
        if not active:
            return None
        return self.retract(active[-1].id, judge=judge, reason="undo")

    # --- reading ----------------------------------------------------------------------------------
    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """Comparisons in force (appended and not retracted), oldest first."""
        return tuple(c for cid, c in self._all.items() if cid not in self._retracted)

    @property
    def history(self) -> tuple[Comparison, ...]:
        """Every comparison ever appended, retracted ones included."""
        return tuple(self._all.values())

    def is_retracted(self, comparison_id: str) -> bool:
        return comparison_id in self._retracted

    def judged_pairs(self) -> set[tuple[int, int]]:
        """Order-free keys of the pairs in force (for a selector's ``exclude``)."""
        return {c.key for c in self.comparisons}

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indices of a, indices of b, P(a preferred) targets)`` of the comparisons in force."""
        cs = self.comparisons
        a = np.array([c.arch_a.index for c in cs], dtype=np.int64)
        b = np.array([c.arch_b.index for c in cs], dtype=np.int64)
        y = np.array([c.outcome.target for c in cs], dtype=np.float64)
        return a, b, y

    def __len__(self) -> int:
        return len(self._all) - len(self._retracted)

    def __iter__(self) -> Iterator[Comparison]:
        return iter(self.comparisons)

    def __getitem__(self, i: int) -> Comparison:
        return self.comparisons[i]

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "in memory"
        return f"PreferenceDataset({len(self)} comparisons, {where})"
