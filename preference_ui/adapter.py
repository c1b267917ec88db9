"""The one place the interface touches :mod:`reward_models`: judgments, pair selection, RankNet.

Nothing here stores, selects or learns by itself. Judgments go to
:class:`reward_models.PreferenceDataset` (append-only JSON Lines, one fsync per judgment, an undo is
an appended retraction), pairs come from :class:`reward_models.RandomPairSelector` (the paper's
Alg. 2) or :class:`reward_models.ActivePairSelector`, and the reward model is
:class:`reward_models.RankNetRewardModel`. Keeping the calls in one module keeps the interface's core
readable and makes it the only file to change if those APIs do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from natsbench_gym.fileio import atomic_path
from natsbench_gym.rewards import ScoringContext, as_reward_model
from natsbench_gym.types import Metric
from preference_ui.errors import NotFittedError, SessionMismatchError
from reward_models.errors import ModelFileError, PairSelectionError, PreferenceDataError
from reward_models.preferences import Comparison, Outcome, PreferenceDataset, pair_key
from reward_models.selection import ActivePairSelector, RandomPairSelector

__all__ = [
    "JudgmentStore",
    "pair_key", "select_pair", "fit_model", "save_model", "load_model", "model_metrics", "held_out_agreement",
    "MODEL_SUFFIX", "HELD_OUT_LIMIT"]

logger = logging.getLogger(__name__)

#: Extension of the fitted model's file (what ``RankNetRewardModel.save`` writes).
MODEL_SUFFIX = ".pt"
#: At most this many judgments are held out, one at a time, to check a fit (evenly spread beyond).
HELD_OUT_LIMIT = 40


class JudgmentStore:
    """A session's judgments: a :class:`~reward_models.PreferenceDataset` opened on its file.

    Args:
        path: the JSON Lines file (created on the first judgment).
        context: where the architectures come from (their space, dataset and official strings).
        judge: who judges, recorded in every comparison.
    """

    def __init__(self, path: Path, context: ScoringContext, judge: str = "human") -> None:
        self.context = context
        self.judge = judge
        try:
            self.dataset = PreferenceDataset.open(path)
        except PreferenceDataError as exc:
            raise SessionMismatchError(f"cannot resume {str(path)!r}: {exc}") from exc
        kind = context.benchmark.space.kind
        if self.dataset.space is not None and self.dataset.space is not kind:
            raise SessionMismatchError(
                f"{str(path)!r} holds judgments of the {self.dataset.space.value} space, not {kind.value}; "
                "use another session file"
            )

    def count(self) -> int:
        """Judgments in force (retracted ones left out)."""
        return len(self.dataset)

    def comparisons(self) -> tuple[Comparison, ...]:
        return self.dataset.comparisons

    def pairs(self) -> list[tuple[int, int]]:
        """``(a, b)`` official indices of the judgments in force, oldest first."""
        return [c.indices for c in self.dataset.comparisons]

    def judged_pairs(self) -> set[tuple[int, int]]:
        return self.dataset.judged_pairs()

    def append(self, a: int, b: int, outcome: str, selector: str) -> None:
        """Record one judgment durably (written and fsynced before this returns)."""
        comparison = Comparison.create(
            self.context.benchmark, a, b, Outcome.parse(outcome), self.judge, selector=selector,
            dataset=self.context.dataset.value,
        )
        self.dataset.append(comparison)

    def retract_last(self) -> tuple[int, int] | None:
        """Retract the latest judgment in force (an appended record); its pair, or ``None``."""
        retracted = self.dataset.undo(judge=self.judge)
        return None if retracted is None else retracted.indices

    def in_force(self, a: int, b: int) -> Comparison | None:
        """The judgment in force of the pair ``{a, b}`` (the latest), or ``None``."""
        key = pair_key(a, b)
        found = [c for c in self.dataset.comparisons if c.key == key]
        return found[-1] if found else None

    def retract_pair(self, a: int, b: int, reason: str = "undo") -> Comparison | None:
        """Retract the judgment in force of the pair ``{a, b}`` (an appended record); it, or ``None``."""
        current = self.in_force(a, b)
        if current is None:
            return None
        return self.dataset.retract(current.id, judge=self.judge, reason=reason)

    def find(self, comparison_id: str) -> Comparison | None:
        """The comparison with this id, retracted or not (``None``: no such id)."""
        return next((c for c in self.dataset.history if c.id == comparison_id), None)

    def is_retracted(self, comparison_id: str) -> bool:
        return self.dataset.is_retracted(comparison_id)

    def history(self) -> tuple[Comparison, ...]:
        """Every judgment ever recorded, retracted ones included, oldest first."""
        return self.dataset.history

    def export_jsonl(self) -> bytes:
        """The judgments in force as JSON Lines that ``PreferenceDataset.open`` reads back."""
        export = PreferenceDataset(self.dataset.comparisons)
        return "".join(_json_line(c.to_dict()) for c in export.comparisons).encode()


def select_pair(
    population: np.ndarray,
    context: ScoringContext,
    rng: np.random.Generator,
    *,
    exclude: set[tuple[int, int]],
    model: Any = None,
) -> tuple[int, int, str] | None:
    """One new pair ``(a, b, strategy)`` among ``population`` not in ``exclude``; ``None`` if none is left.

    With a fitted ``model`` the pair is the one it is least sure about (active selection); without,
    a random pair (Alg. 2).
    """
    selector = ActivePairSelector() if model is not None else RandomPairSelector()
    try:
        batch = selector.select(population, 1, rng, exclude=exclude, model=model, context=context)
    except PairSelectionError:
        return None
    (a, b), = batch.pairs
    return int(a), int(b), batch.strategy


def fit_model(comparisons: Sequence[Comparison], context: ScoringContext, seed: int) -> Any:
    """A RankNet reward model fitted on ``comparisons`` (the paper's Alg. 3)."""
    from reward_models import RankNetRewardModel  # torch is imported only when a person fits

    model = RankNetRewardModel(seed=seed)
    try:
        model.fit(list(comparisons), context)
    except PreferenceDataError as exc:
        raise NotFittedError(f"cannot fit the reward model yet: {exc}") from exc
    return model


def save_model(model: Any, path: Path) -> None:
    """Save ``model`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path: Path) -> Any | None:
    """The model saved at ``path``, or ``None`` (with a warning) if it cannot be read.

    An unreadable model must not lock a person out of their judgments: the session resumes and
    the model is fitted again from them.
    """
    from reward_models import RankNetRewardModel

    try:
        return RankNetRewardModel.load(path)
    except ModelFileError as exc:
        logger.warning("ignoring the saved reward model (fit again to replace it): %s", exc)
        return None


def held_out_agreement(
    comparisons: Sequence[Comparison], context: ScoringContext, seed: int, progress: Any = None,
    limit: int = HELD_OUT_LIMIT,
) -> dict[str, int] | None:
    """How often a model fitted without one judgment agrees with it (leave-one-out).

    Each held-out judgment (every one, or ``limit`` evenly spread ones) is predicted by a RankNet
    fitted on all the others; it agrees when the model scores the preferred architecture higher.
    Ties are held out too but cannot agree or disagree: they are counted apart.

    Args:
        progress: called as ``progress(done, total)`` after each held-out fit.

    Returns:
        ``{"agree": k, "held_out": m, "ties": t}`` (``m`` counts the non-tie judgments held out), or
        ``None`` with fewer than two judgments.
    """
    cs = list(comparisons)
    if len(cs) < 2:
        return None
    chosen = np.unique(np.linspace(0, len(cs) - 1, min(limit, len(cs))).round().astype(int)).tolist()
    agree = held = ties = 0
    for done, i in enumerate(chosen, start=1):
        held_out = cs[i]
        if held_out.outcome is Outcome.TIE:
            ties += 1
        else:
            rest = cs[:i] + cs[i + 1 :]
            try:
                model = fit_model(rest, context, seed=int(np.random.default_rng([seed, 7, i]).integers(2**31)))
            except NotFittedError:
                model = None
            if model is not None:
                metrics = model_metrics(model, context)
                values = context.query(list(held_out.indices), list(metrics))
                score_a, score_b = np.asarray(model.score_many(values, context), dtype=np.float64).reshape(-1)
                preferred_a = held_out.outcome is Outcome.A
                agree += bool(score_a > score_b) if preferred_a else bool(score_b > score_a)
                held += 1
        if progress is not None:
            progress(done, len(chosen))
    return {"agree": agree, "held_out": held, "ties": ties}


def model_metrics(model: Any, context: ScoringContext, available: Sequence[Metric] | None = None) -> tuple[Metric, ...]:
    """The metrics ``model`` reads in ``context``: its ``required_metrics`` under the reward-model
    protocol (a model that does not say reads every metric the context has).

    ``available`` (the metrics the page shows) is no longer needed: the protocol answers for every model.
    """
    return tuple(as_reward_model(model).required_metrics(context))


def _json_line(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
