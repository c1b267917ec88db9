"""Warm start: a local library of earlier users' sessions, and the population prior fitted from it.

The paper's outlook: "warm-start the Architecture Sampler component based on learned preferences
from previous users". Every session starts from the metric family's flat prior otherwise, so the
tenth person with the same need pays the same number of judgments as the first.

* :class:`PreferenceLibrary` keeps finished sessions, **only when asked** (``remember=`` of
  :class:`~agents.personalization.Personalization`, ``--remember`` of ``natsbench-gym search``), in one
  SQLite file: each session's judgments, a summary of its fitted metric-family posterior, its
  recommendation, the space, dataset and latency device. Opening a library writes nothing; a file
  that is not a library raises :class:`PreferenceLibraryError` and is left as it is.
* :class:`PopulationPrior` is fitted from the library's sessions: each earlier user's (tempered)
  posterior over the metric family -- the mass of each selective metric and each constraint
  (objective, constrained metric, threshold), a kernel density of the trade-off weights -- is read
  as that user's likelihood, and 20 steps of EM fit the population's distribution to them (the
  first step is their mean; the later ones sharpen it toward what the users hold in common; see
  ``em_steps``). A new user's prior over the family is the mixture
  ``(1 - w) * flat + w * population``, and ``w`` is learned from the new user's judgments by
  empirical Bayes: the mixture's marginal likelihood ``(1 - w) Z_flat + w Z_pop`` (``Z``: each
  component's marginal likelihood of the judgments) is linear in ``w``, so its maximum over
  ``[0, weight]`` is ``weight`` while the population explains the judgments at least as well as the
  flat prior (``Z_pop >= Z_flat``; always before the first judgment) and 0 otherwise. A user unlike
  the library (an outlier) thus gets exactly the cold posterior as soon as the judgments say so.
  :attr:`MetricFamilyPosterior.population_share
  <reward_models.posterior.MetricFamilyPosterior.population_share>` is the population's share of
  the posterior, ``population_evidence`` the log Bayes factor ``log Z_pop / Z_flat`` (below
  ``-log 3``: the judgments disagree with earlier users).
* The earlier users' recommendations seed part of a new search's first architectures
  (:meth:`PopulationPrior.initial_architectures`): the Architecture Sampler starts near what they liked.

Example:
    >>> from reward_models.library import PreferenceLibrary
    >>> lib = PreferenceLibrary("/tmp/prefs.sqlite")  # doctest: +SKIP
    >>> prior = lib.population_prior(space="topology")  # doctest: +SKIP
    >>> Personalization(user, 10, warm_start=prior, remember=lib)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from natsbench_gym.errors import NATSBenchGymError
from reward_models.preferences import Comparison

__all__ = [
    "PreferenceLibrary",
    "PreferenceLibraryError",
    "PopulationPrior",
    "PosteriorSummary",
    "LibrarySession",
    "default_library_path",
    "DISAGREE_BELOW",
]

logger = logging.getLogger(__name__)

#: The log Bayes factor (population against the flat prior, on the new user's judgments) below
#: which the judgments are said to *disagree* with earlier users: the flat prior explains them at
#: least 3 times better.
DISAGREE_BELOW = -math.log(3.0)

_MAGIC = b"SQLite format 3\x00"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    label TEXT,
    space TEXT NOT NULL,
    dataset TEXT NOT NULL,
    device TEXT,
    judgments INTEGER NOT NULL,
    comparisons TEXT NOT NULL,
    recommended TEXT NOT NULL,
    summary BLOB NOT NULL
);
"""


class PreferenceLibraryError(NATSBenchGymError, ValueError):
    """A preference library file cannot be read (not a library, corrupt, or of another version)."""


def default_library_path() -> Path:
    """``$NATSBENCH_GYM_LIBRARY``, else ``$XDG_DATA_HOME/natsbench-gym/preferences.sqlite`` (else
    ``~/.local/share/...``). Only a path: nothing is created until a session is remembered."""
    env = os.environ.get("NATSBENCH_GYM_LIBRARY")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "natsbench-gym" / "preferences.sqlite"


# --- a posterior, summarised so that another config's hypotheses can read it -----------------------------
@dataclass(frozen=True, eq=False)
class PosteriorSummary:
    """A metric-family posterior in a form that does not depend on its hypotheses' random draws.

    The selective and constraint hypotheses are the same for every config with the same features
    and thresholds; the weighted ones are Dirichlet draws that differ by seed, so they are kept as
    their most probable weight vectors with their mass (a density is fitted to them later).

    Attributes:
        features: the metric names, in order.
        thresholds: the constraint family's rank-utility levels.
        selective: mass of each selective metric ``(f,)``.
        constraint: mass of each constraint hypothesis, ``(f * (f - 1) * len(thresholds),)`` in the
            family's order (pairs (objective, constrained) with ``objective != constrained``, then levels).
        points: weight vectors ``(k, f)`` of the weighted family's most probable hypotheses.
        point_mass: their masses ``(k,)`` (summing to the weighted family's mass).
        target: mass of each target hypothesis in the family's order (empty when the session's
            family had no target structures: older sessions, the one-shot protocol).
    """

    features: tuple[str, ...]
    thresholds: tuple[float, ...]
    selective: np.ndarray
    constraint: np.ndarray
    points: np.ndarray
    point_mass: np.ndarray
    target: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, posterior: Any, temper: float = 0.5, points: int = 32) -> PosteriorSummary:
        """Summarise a fitted :class:`~reward_models.posterior.MetricFamilyPosterior`.

        Args:
            temper: the posterior is raised to this power first (``0.5``: as if from half the
                judgments), so that a population of summaries spreads over the neighbourhood of
                what each user held rather than the few hypotheses one user's judgments left.
            points: weighted hypotheses kept.
        """
        hyp = posterior._require_hypotheses()
        lp = posterior.log_posterior * float(temper)
        p = np.exp(lp - lp.max())
        p /= p.sum()
        f = len(posterior.normaliser.metrics)
        h_lin, h_con = hyp.weights.shape[0], hyp.objective.size
        selective = p[:f].copy()
        constraint = p[h_lin : h_lin + h_con].copy()
        wmass = p[f:h_lin]
        top = np.argsort(-wmass, kind="stable")[: max(int(points), 1)]
        kept = wmass[top]
        total = float(wmass.sum())
        kept = kept * (total / kept.sum()) if kept.sum() > 0 else kept
        return cls(
            tuple(m.value for m in posterior.normaliser.metrics),
            tuple(float(q) for q in posterior.config.thresholds),
            selective,
            constraint,
            hyp.weights[f:h_lin][top].copy(),
            kept,
            p[h_lin + h_con :].copy(),
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            features=np.array(self.features),
            thresholds=np.asarray(self.thresholds, dtype=np.float64),
            selective=self.selective.astype(np.float64),
            constraint=self.constraint.astype(np.float32),
            points=self.points.astype(np.float32),
            point_mass=self.point_mass.astype(np.float64),
            target=self.target.astype(np.float32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PosteriorSummary:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(
                tuple(str(x) for x in z["features"]),
                tuple(float(x) for x in z["thresholds"]),
                z["selective"].astype(np.float64),
                z["constraint"].astype(np.float64),
                z["points"].astype(np.float64),
                z["point_mass"].astype(np.float64),
                z["target"].astype(np.float64) if "target" in z.files else np.zeros(0),
            )


@dataclass(frozen=True)
class LibrarySession:
    """One remembered session (a row of the library)."""

    id: int
    created: float
    label: str | None
    space: str
    dataset: str
    device: str | None
    judgments: int
    recommended: tuple[str, ...]
    summary: PosteriorSummary
    comparisons: tuple[dict[str, Any], ...] = ()


# --- the population prior -----------------------------------------------------------------------------
def _smooth_constraints(constraint: np.ndarray, levels: int) -> np.ndarray:
    """Constraint masses (objective, constrained metric, threshold) smoothed one threshold step,
    their total kept: a neighbouring threshold is nearly the same wish."""
    if levels <= 2 or constraint.size % levels:
        return constraint
    padded = np.pad(constraint.reshape(-1, levels), ((0, 0), (1, 1)), mode="edge")
    grid = 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]
    return grid.reshape(-1) * (constraint.sum() / max(grid.sum(), 1e-300))


class PopulationPrior:
    """What earlier users preferred, as a prior over the metric family (see the module docs).

    Args:
        summaries: the earlier users' posterior summaries (one per session).
        weight: the population's share ``w`` of the new user's prior before any judgment (the rest is
            the flat prior); the judgments then move it (``population_share``).
        bandwidth: of the Gaussian kernel over the trade-off weights (the simplex).
        recommended: the earlier users' recommended architectures (arch strings, best first), one
            tuple per session, for :meth:`initial_architectures`.
        seeded_share: the share of a search's first architectures taken from ``recommended``.
        space: the search space the sessions were in (``None``: any).
        em_steps: how the users' summaries make one distribution: that many steps of EM for the
            population's distribution itself (toward the nonparametric maximum-likelihood prior of
            the empirical-Bayes literature), each earlier user's summary read as that user's
            likelihood over the family. ``1``: their mean (the mixture of the earlier users'
            posteriors; the default before 20 was measured better in docs/warm_start.md); later
            steps sharpen it toward what the users hold in common, so that a member of a cluster
            starts nearer the cluster.
    """

    def __init__(
        self,
        summaries: Sequence[PosteriorSummary],
        weight: float = 0.5,
        bandwidth: float = 0.06,
        recommended: Sequence[Sequence[str]] = (),
        seeded_share: float = 0.5,
        space: str | None = None,
        em_steps: int = 20,
    ) -> None:
        if isinstance(em_steps, bool) or not isinstance(em_steps, int) or em_steps < 1:
            raise ValueError(f"em_steps must be an int >= 1 (1: the mean of the users' summaries), got {em_steps!r}")
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight!r}; 0.5 gives the population half the prior")
        if not float(bandwidth) > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
        if not 0.0 <= float(seeded_share) <= 1.0:
            raise ValueError(f"seeded_share must be in [0, 1], got {seeded_share!r}")
        self.summaries = tuple(summaries)
        self.weight = float(weight)
        self.bandwidth = float(bandwidth)
        self.recommended = tuple(tuple(r) for r in recommended)
        self.seeded_share = float(seeded_share)
        self.space = space
        self.em_steps = int(em_steps)
        self._cache: dict[Any, np.ndarray] = {}
        self._groups: dict[Any, tuple | None] = {}

    @property
    def users(self) -> int:
        """How many earlier sessions the prior is fitted from."""
        return len(self.summaries)

    def __repr__(self) -> str:
        return f"PopulationPrior(users={self.users}, weight={self.weight})"

    def _group(self, features: tuple[str, ...], thresholds: tuple[float, ...]) -> tuple | None:
        """The population's part that does not depend on a config's random draws, for the sessions
        with these features and thresholds (cached): mean selective masses, mean constraint masses
        (smoothed one threshold step), the trade-off weight points merged on a 1/80 grid of the
        simplex with their mass, and the weighted family's mass. ``None``: no such session."""
        key = (features, thresholds)
        if key in self._groups:
            return self._groups[key]
        usable = [s for s in self.summaries if s.features == features and np.allclose(s.thresholds, thresholds)]
        if len(usable) < len(self.summaries):
            logger.info("%d of %d earlier sessions have other features or thresholds; left out", len(self.summaries) - len(usable), len(self.summaries))
        group = None
        if usable:
            selective = np.mean([s.selective for s in usable], axis=0)
            constraint = np.mean([s.constraint for s in usable], axis=0)
            constraint = _smooth_constraints(constraint, len(thresholds))
            pts = np.concatenate([s.points for s in usable])
            mass = np.concatenate([s.point_mass for s in usable]) / len(usable)
            # points closer than the grid step (1/80, a fifth of the kernel's bandwidth) are one point
            cells, inverse = np.unique(np.round(pts * 80.0).astype(np.int64), axis=0, return_inverse=True)
            merged = np.bincount(inverse.reshape(-1), weights=mass, minlength=cells.shape[0])
            centre = np.zeros((cells.shape[0], pts.shape[1]))
            np.add.at(centre, inverse.reshape(-1), pts * mass[:, None])
            keep = merged > 0
            centre = centre[keep] / merged[keep][:, None]
            wtotal = float(np.mean([s.point_mass.sum() for s in usable]))
            # the target family: a session whose family had none held no mass there (zeros)
            size = max(s.target.size for s in usable)
            target = np.mean([s.target if s.target.size == size else np.zeros(size) for s in usable], axis=0) if size else np.zeros(0)
            group = (selective, constraint, centre, merged[keep], wtotal, target)
        self._groups[key] = group
        return group

    def population_distribution(self, hyp: Any, features: Sequence[str], thresholds: Sequence[float], key: Any = None) -> np.ndarray | None:
        """The population's mass on each of ``hyp``'s hypotheses (summing to 1), or ``None`` when no
        summary has these features and thresholds.

        Args:
            hyp: the hypotheses (``reward_models.posterior``'s hypothesis set of a config).
            key: what determines ``hyp`` (the config's seed, sizes and thresholds): the result is
                cached under it (``None``: not cached).
        """
        key = None if key is None else (key, tuple(features), tuple(thresholds))
        cached = None if key is None else self._cache.get(key)
        if cached is not None and cached.size == hyp.size:
            return cached
        if self.em_steps > 1:
            return self._store(key, self._em_distribution(hyp, tuple(features), tuple(float(q) for q in thresholds)))
        group = self._group(tuple(features), tuple(float(q) for q in thresholds))
        if group is None:
            return None
        selective, constraint, pts, mass, wtotal, target = group
        f = len(features)
        h_lin, h_con = hyp.weights.shape[0], hyp.objective.size
        out = np.zeros(hyp.size)
        out[:f] = selective
        if constraint.size == h_con:
            out[h_lin : h_lin + h_con] = constraint
        if target.size and target.size == hyp.size - h_lin - h_con:
            out[h_lin + h_con :] = target
        draws = hyp.weights[f:h_lin]
        if draws.shape[0] and wtotal > 0 and pts.shape[0]:
            d2 = (draws**2).sum(1)[:, None] - 2.0 * draws @ pts.T + (pts**2).sum(1)[None, :]
            density = np.exp(-np.maximum(d2, 0.0).astype(np.float32) / np.float32(2.0 * self.bandwidth**2)) @ mass.astype(np.float32)
            density = density.astype(np.float64)
            if density.sum() > 0:
                out[f:h_lin] = wtotal * density / density.sum()
        total = out.sum()
        if total <= 0:
            return None
        out /= total
        return self._store(key, out)

    def _store(self, key: Any, out: np.ndarray | None) -> np.ndarray | None:
        """Cache ``out`` under ``key`` (a few entries: one per model config in use) and return it."""
        if out is not None and key is not None:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = out
        return out

    def user_distributions(self, hyp: Any, features: Sequence[str], thresholds: Sequence[float]) -> np.ndarray | None:
        """Each earlier user's summary as a distribution over ``hyp``'s hypotheses, ``(users, h)``
        (constraints smoothed one threshold step and trade-off weights by the kernel, as in the
        mean), or ``None`` when no summary has these features and thresholds."""
        features, thresholds = tuple(features), tuple(float(q) for q in thresholds)
        usable = [s for s in self.summaries if s.features == features and np.allclose(s.thresholds, thresholds)]
        if not usable:
            return None
        f = len(features)
        h_lin, h_con = hyp.weights.shape[0], hyp.objective.size
        out = np.zeros((len(usable), hyp.size))
        draws = hyp.weights[f:h_lin]
        pts = np.concatenate([s.points for s in usable])
        owner = np.repeat(np.arange(len(usable)), [s.points.shape[0] for s in usable])
        mass = np.concatenate([s.point_mass for s in usable])
        if draws.shape[0] and pts.shape[0]:
            d2 = (draws**2).sum(1)[:, None] - 2.0 * draws @ pts.T + (pts**2).sum(1)[None, :]
            kernel = np.exp(-np.maximum(d2, 0.0).astype(np.float32) / np.float32(2.0 * self.bandwidth**2)).astype(np.float64)
            per_user = np.zeros((pts.shape[0], len(usable)))
            per_user[np.arange(pts.shape[0]), owner] = mass
            density = (kernel @ per_user).T  # (users, draws)
        else:
            density = np.zeros((len(usable), draws.shape[0]))
        for u, s in enumerate(usable):
            out[u, :f] = s.selective
            constraint = _smooth_constraints(s.constraint, len(thresholds))
            if constraint.size == h_con:
                out[u, h_lin : h_lin + h_con] = constraint
            if s.target.size and s.target.size == hyp.size - h_lin - h_con:
                out[u, h_lin + h_con :] = s.target
            if density[u].sum() > 0:
                out[u, f:h_lin] = s.point_mass.sum() * density[u] / density[u].sum()
        totals = out.sum(axis=1, keepdims=True)
        keep = totals[:, 0] > 0
        return out[keep] / totals[keep] if keep.any() else None

    def _em_distribution(self, hyp: Any, features: tuple[str, ...], thresholds: tuple[float, ...]) -> np.ndarray | None:
        q = self.user_distributions(hyp, features, thresholds)
        if q is None:
            return None
        base = np.exp(hyp.log_prior)  # the flat family prior the summaries were fitted under
        with np.errstate(divide="ignore", invalid="ignore"):
            likelihood = np.where(base > 0, q / np.where(base > 0, base, 1.0), 0.0)  # each user's, up to a constant
        pi = q.mean(axis=0)  # the first step from the flat prior
        for _ in range(self.em_steps - 1):
            joint = likelihood * pi[None, :]
            pi = (joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)).mean(axis=0)
        return pi / pi.sum()

    def initial_architectures(self, n: int, rng: np.random.Generator) -> list[str]:
        """Up to ``round(seeded_share * n)`` distinct architectures (arch strings) that earlier users
        were recommended: each user's best first, users in a random order, then their runners-up."""
        want = int(round(self.seeded_share * n))
        if want <= 0 or not self.recommended:
            return []
        order = rng.permutation(len(self.recommended))
        out: list[str] = []
        depth = max(len(r) for r in self.recommended)
        for level in range(depth):
            for u in order:
                rec = self.recommended[int(u)]
                if level < len(rec) and rec[level] not in out:
                    out.append(rec[level])
                    if len(out) == want:
                        return out
        return out


# --- the library ------------------------------------------------------------------------------------
class PreferenceLibrary:
    """Earlier users' sessions in one local SQLite file (opt-in; see the module docs).

    Args:
        path: the library file. Opening it writes nothing: a missing file is an empty library until
            :meth:`add` (which creates it and its folder); an existing file must be a library.

    Raises:
        PreferenceLibraryError: the file exists but is not a preference library (not SQLite, corrupt,
            another schema); it is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.exists():
            self._check()

    def _error(self, what: str) -> PreferenceLibraryError:
        return PreferenceLibraryError(
            f"{self.path} is not a natsbench-gym preference library ({what}); it was left as it is. "
            "Move it aside or pass another library path (--library PATH)"
        )

    def _check(self) -> None:
        if self.path.is_dir():
            raise self._error("it is a folder")
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(_MAGIC))
        except OSError as exc:
            raise self._error(f"cannot be read: {exc}") from exc
        if head == b"" and self.path.stat().st_size == 0:
            raise self._error("empty file")
        if head != _MAGIC:
            raise self._error("not an SQLite file")
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if not {"meta", "sessions"} <= tables:
                    raise self._error(f"an SQLite file without its tables (has {sorted(tables)})")
                row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None or int(row[0]) != _SCHEMA_VERSION:
                    raise self._error(f"schema version {None if row is None else row[0]}, expected {_SCHEMA_VERSION}")
                ok = con.execute("PRAGMA quick_check").fetchone()
                if not ok or ok[0] != "ok":
                    raise self._error(f"corrupt: {ok[0] if ok else 'no answer'}")
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise self._error(f"corrupt: {exc}") from exc

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        self._check()
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
        finally:
            con.close()

    def __repr__(self) -> str:
        return f"PreferenceLibrary({str(self.path)!r}, sessions={len(self)})"

    def count(self, space: str | None = None) -> int:
        """How many sessions the library holds (in ``space``)."""
        return len(self.sessions(space=space, comparisons=False))

    def add(
        self,
        posterior: Any,
        *,
        space: str,
        dataset: str,
        device: str | None,
        comparisons: Iterable[Comparison] = (),
        recommended: Sequence[str] = (),
        label: str | None = None,
    ) -> int:
        """Remember a finished session; returns its id. Creates the file (and folder) when missing.

        Args:
            posterior: the session's fitted :class:`~reward_models.posterior.MetricFamilyPosterior`.
            space, dataset, device: where the session searched.
            comparisons: its judgments (kept as records, for refitting later).
            recommended: its recommended architectures (arch strings), best first.
            label: a name for the user or session (optional).
        """
        summary = PosteriorSummary.of(posterior)
        records = [c.to_dict() for c in comparisons]
        if self.path.exists():
            self._check()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path)
            try:
                with con:
                    con.executescript(_SCHEMA)
                    con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
                    cur = con.execute(
                        "INSERT INTO sessions (created, label, space, dataset, device, judgments, comparisons, recommended, summary) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (time.time(), label, str(space), str(dataset), device, len(records), json.dumps(records), json.dumps(list(recommended)), summary.to_bytes()),
                    )
                    return int(cur.lastrowid)
            finally:
                con.close()
        except (sqlite3.Error, OSError) as exc:
            raise PreferenceLibraryError(
                f"cannot remember the session in {self.path} ({type(exc).__name__}: {exc}); the judgments are kept in "
                "the search's own files. Pass a writable library path (--library PATH) to remember it"
            ) from exc

    def add_result(self, result: Any, context: Any, *, label: str | None = None, top: int = 5) -> int:
        """Remember a personalized search's :class:`~agents.base.SearchResult` (its judgments, their
        metric-family posterior and its best ``top`` architectures under the final model). The
        posterior's family has the target structures when the session's model had them
        (``RankNetConfig.target_prior``; the interactive loop's default)."""
        from reward_models.posterior import MetricFamilyPosterior

        comparisons = list(result.info.get("comparisons") or ())
        if not comparisons:
            raise PreferenceLibraryError("this search result has no judgments to remember (was it personalized?)")
        model = result.info.get("learned_metric")
        model = getattr(model, "model", None) or model  # a DeviceChoiceModel's fitted inner model
        target = float(getattr(getattr(model, "config", None), "target_prior", 0.0) or 0.0)
        posterior = MetricFamilyPosterior(family_prior=(1.0, 1.0, 1.0, target)).fit(comparisons, context)
        ranked = sorted(range(len(result.history)), key=lambda i: (-result.scores[i], i))
        recommended: list[str] = []
        for i in ranked:
            arch = result.history[i].arch
            if arch not in recommended:
                recommended.append(arch)
            if len(recommended) == top:
                break
        return self.add(
            posterior,
            space=context.benchmark.space.kind,
            dataset=context.dataset.value,
            device=context.device,
            comparisons=comparisons,
            recommended=recommended,
            label=label,
        )

    def sessions(
        self, space: str | None = None, exclude: Iterable[int] = (), comparisons: bool = False, dataset: str | None = None
    ) -> list[LibrarySession]:
        """The remembered sessions, oldest first (in ``space``, on ``dataset``; without the ids in
        ``exclude``; with their judgment records when ``comparisons``)."""
        if not self.path.exists():
            return []
        self._check()
        skip = {int(i) for i in exclude}
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT id, created, label, space, dataset, device, judgments, recommended, summary, comparisons FROM sessions ORDER BY id"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(f"corrupt: {exc}") from exc
        finally:
            con.close()
        out = []
        for r in rows:
            if r[0] in skip or (space is not None and r[3] != space) or (dataset is not None and r[4] != dataset):
                continue
            try:
                summary = PosteriorSummary.from_bytes(r[8])
                recommended = tuple(json.loads(r[7]))
                records = tuple(json.loads(r[9])) if comparisons else ()
            except (ValueError, KeyError, OSError) as exc:
                raise self._error(f"session {r[0]} cannot be read: {exc}") from exc
            out.append(LibrarySession(r[0], r[1], r[2], r[3], r[4], r[5], r[6], recommended, summary, records))
        return out

    def population_prior(
        self, space: str | None = None, exclude: Iterable[int] = (), dataset: str | None = None, **options: Any
    ) -> PopulationPrior:
        """The :class:`PopulationPrior` of the sessions (in ``space``, without ``exclude``);
        ``options`` are its settings (``weight``, ``bandwidth``, ``seeded_share``).

        By default every dataset's sessions count: a preference over the normalised metrics (a
        trade-off, a budget at some quantile) carries over from one dataset to another, and the
        benchmark in docs/warm_start.md measures it so (each earlier session on one dataset, the
        new users on all three). ``dataset=`` keeps only the sessions on that dataset.
        """
        rows = self.sessions(space=space, exclude=exclude, dataset=dataset)
        return PopulationPrior([s.summary for s in rows], recommended=[s.recommended for s in rows], space=space, **options)
