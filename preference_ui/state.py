"""The interface state of an elicitation session, ``<name>.ui.json``, as dataclasses.

The judgments file is the record of truth for *what* was judged; this file keeps what only the
interface needs: the session's settings and seed, the candidate architectures, the pair on screen,
the pairs waiting to be shown again, and the order of past actions (for undo). It is replaced
atomically after every action (:meth:`SessionState.write`).

File format (version 1, one JSON object)::

    {"format": "natsbench-gym-elicitation", "version": 1,
     "space": "topology", "dataset": "cifar10", "budget": 12, "device": null, "seed": 5,
     "population": [123, 456, ...], "target": 20, "active": false, "serial": 3, "draws": 3,
     "pending": {"id": "3", "a": 123, "b": 456, "selector": "random"},
     "queue": [{"a": 7, "b": 8, "selector": "random"}],
     "actions": [{"kind": "judge", "a": 1, "b": 2, "selector": "random"}, {"kind": "skip", ...},
                 {"kind": "change", "a": 1, "b": 2, "selector": "random", "before": "a", "after": "tie"}],
     "fit": {"judgments": 2, "seed": 1234, "ids": ["<comparison id>", ...],
             "check": {"agree": 1, "held_out": 2, "ties": 0}} | null,
     "start": {"warm": true, "sessions": [1, 2, 5], "library": "/home/me/.local/share/...", "asked": true}}

The ``change`` action (an earlier answer replaced: a retraction and a new judgment in the judgments
file), a fit's ``ids`` (the comparisons it was fitted on), its ``check`` (leave-one-out agreement)
and a search session's ``start`` (:class:`StartChoice`: whether it started from earlier users, issue
17) were added later within version 1: they are written only when present, so a file without them is
byte for byte what earlier versions wrote, and those versions read every file without a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from natsbench_gym.fileio import atomic_write
from preference_ui.errors import SessionMismatchError

__all__ = ["Pair", "QueuedPair", "Action", "FitRecord", "StartChoice", "SessionState", "STATE_FORMAT", "STATE_VERSION", "ACTION_KINDS"]

STATE_FORMAT = "natsbench-gym-elicitation"
STATE_VERSION = 1
#: What an action in the undo history did to its pair: judged it, skipped it, or changed its answer.
ACTION_KINDS = ("judge", "skip", "change")
#: The answers a judgment can have (``reward_models.preferences.OUTCOMES``).
_OUTCOMES = ("a", "b", "tie")


@dataclass(frozen=True)
class Pair:
    """A pair on screen: its id (unique within the session), the official indices of A and B, and
    the strategy that chose it (``"random"``, ``"active:uncertainty"``), recorded with the judgment."""

    id: str
    a: int
    b: int
    selector: str = "random"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "a": self.a, "b": self.b, "selector": self.selector}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pair:
        return cls(str(data["id"]), int(data["a"]), int(data["b"]), str(data.get("selector", "random")))


@dataclass(frozen=True)
class QueuedPair:
    """A pair waiting to be shown again (displaced by an undo)."""

    a: int
    b: int
    selector: str = "random"

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "selector": self.selector}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueuedPair:
        return cls(int(data["a"]), int(data["b"]), str(data.get("selector", "random")))


@dataclass(frozen=True)
class Action:
    """One past action, for undo: a pair was judged (``"judge"``), skipped (``"skip"``), or the
    answer of a pair judged earlier was changed (``"change"``, from ``before`` to ``after``, both
    ``"a"``, ``"b"`` or ``"tie"`` in the orientation ``(a, b)``)."""

    kind: str
    a: int
    b: int
    selector: str = "random"
    before: str | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"action kind must be one of {ACTION_KINDS}, got {self.kind!r}")
        if (self.kind == "change") != (self.before is not None and self.after is not None):
            raise ValueError("a change action needs 'before' and 'after' (and only a change has them)")
        for value in (self.before, self.after):
            if value is not None and value not in _OUTCOMES:
                raise ValueError(f"an answer must be one of {_OUTCOMES}, got {value!r}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "a": self.a, "b": self.b, "selector": self.selector}
        if self.kind == "change":
            out |= {"before": self.before, "after": self.after}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        before, after = data.get("before"), data.get("after")
        return cls(str(data["kind"]), int(data["a"]), int(data["b"]), str(data.get("selector", "random")),
                   None if before is None else str(before), None if after is None else str(after))


@dataclass(frozen=True)
class FitRecord:
    """The last fit: how many judgments it saw, the seed it used, which judgments they were (their
    comparison ids; ``None`` in files written before they were recorded) and how well the fit agrees
    with judgments it did not see (``check``: ``{"agree", "held_out", "ties"}`` of a leave-one-out
    check; ``None`` when not run)."""

    judgments: int
    seed: int
    ids: tuple[str, ...] | None = None
    check: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judgments": self.judgments, "seed": self.seed}
        if self.ids is not None:
            out["ids"] = list(self.ids)
        if self.check is not None:
            out["check"] = dict(self.check)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FitRecord:
        ids, check = data.get("ids"), data.get("check")
        return cls(int(data["judgments"]), int(data["seed"]), None if ids is None else tuple(str(i) for i in ids),
                   None if check is None else {str(k): int(v) for k, v in check.items()})


@dataclass(frozen=True)
class StartChoice:
    """How a search session started: from earlier users' preferences (``warm``) or fresh.

    Kept so that a resumed search neither asks again nor starts differently: ``sessions`` are the
    library ids of the earlier sessions it started from (a library that has grown since is read
    without the newer ones), ``library`` the file they are in, and ``asked`` whether the person
    chose on the page (``False``: a flag or the absence of earlier users decided).
    """

    warm: bool
    sessions: tuple[int, ...] = ()
    library: str | None = None
    asked: bool = False

    @property
    def users(self) -> int:
        """How many earlier users the search started from (0: a fresh start)."""
        return len(self.sessions) if self.warm else 0

    def to_json(self) -> dict[str, Any]:
        return {"warm": self.warm, "sessions": list(self.sessions), "library": self.library, "asked": self.asked}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartChoice:
        library = data.get("library")
        return cls(bool(data["warm"]), tuple(int(i) for i in data.get("sessions", ())),
                   None if library is None else str(library), bool(data.get("asked", False)))


@dataclass
class SessionState:
    """Everything in ``<name>.ui.json`` (see the module docs for the file format).

    Attributes:
        space: the search space (``"topology"`` or ``"size"``).
        dataset, budget, device: where the metrics shown come from.
        seed: seeds the candidates, the pairs and the fits.
        population: official indices of the candidate architectures the pairs are drawn among.
        target: how many judgments the session aims at.
        active: choose pairs with the fitted model (active selection) once there is one.
        serial: the id of the last pair shown (ids count up from 1).
        draws: how many pairs the session has drawn so far (seeds the next draw).
        pending: the pair on screen, or ``None``.
        queue: pairs waiting to be shown again, next first.
        actions: past judgments, skips and changes of an answer, oldest first (undo takes the last).
        fit: the last fit, or ``None``.
        start: a search session's start (:class:`StartChoice`), or ``None`` before it is decided.
    """

    space: str
    dataset: str
    budget: int
    device: str | None
    seed: int
    population: list[int]
    target: int
    active: bool
    serial: int = 0
    draws: int = 0
    pending: Pair | None = None
    queue: list[QueuedPair] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    fit: FitRecord | None = None
    start: StartChoice | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the file."""
        out: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "space": self.space,
            "dataset": self.dataset,
            "budget": self.budget,
            "device": self.device,
            "seed": self.seed,
            "population": list(self.population),
            "target": self.target,
            "active": self.active,
            "serial": self.serial,
            "draws": self.draws,
            "pending": None if self.pending is None else self.pending.to_json(),
            "queue": [q.to_json() for q in self.queue],
            "actions": [a.to_json() for a in self.actions],
            "fit": None if self.fit is None else self.fit.to_json(),
        }
        if self.start is not None:
            out["start"] = self.start.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, source: str = "the session state") -> SessionState:
        """Inverse of :meth:`to_json`.

        Raises:
            SessionMismatchError: not an elicitation state, another version, or a field is missing
                or mistyped.
        """
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise SessionMismatchError(f"{source} is not an elicitation session state file")
        if data.get("version") != STATE_VERSION:
            raise SessionMismatchError(f"{source} has state version {data.get('version')!r}; this version reads {STATE_VERSION}")
        try:
            return cls(
                space=str(data["space"]),
                dataset=str(data["dataset"]),
                budget=int(data["budget"]),
                device=None if data["device"] is None else str(data["device"]),
                seed=int(data["seed"]),
                population=[int(i) for i in data["population"]],
                target=int(data["target"]),
                active=bool(data["active"]),
                serial=int(data.get("serial", 0)),
                draws=int(data.get("draws", 0)),
                pending=None if data.get("pending") is None else Pair.from_json(data["pending"]),
                queue=[QueuedPair.from_json(q) for q in data.get("queue", [])],
                actions=[Action.from_json(a) for a in data.get("actions", [])],
                fit=None if data.get("fit") is None else FitRecord.from_json(data["fit"]),
                start=None if data.get("start") is None else StartChoice.from_json(data["start"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionMismatchError(f"{source} lacks or mistypes a field ({exc!r}); delete it to start the interface state afresh") from None

    @classmethod
    def read(cls, path: str | Path) -> SessionState:
        """Read a state file.

        Raises:
            SessionMismatchError: the file cannot be read or is not a state of this version.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SessionMismatchError(f"cannot read session state {str(path)!r}: {exc}; delete it to start the interface state afresh") from exc
        return cls.from_json(data, repr(str(path)))

    def write(self, path: str | Path) -> None:
        """Replace the state file atomically (a crash leaves the old file or the new one)."""
        atomic_write(path, (json.dumps(self.to_json(), indent=1) + "\n").encode())

    @property
    def settings(self) -> dict[str, Any]:
        """Space, dataset, budget and device the session was started with."""
        return {"space": self.space, "dataset": self.dataset, "budget": self.budget, "device": self.device}
