"""The human preference interface (the paper's Sec. III-C): pairwise judgments in a browser or a terminal.

A person is shown two architectures side by side -- a drawing of each, every metric with its unit and
percentile in the whole space, and on request what each network does (predictions on validation
images, per-class accuracy, Grad-CAM: the paper's Fig. 2) -- and says which one they prefer (or a
tie, or skip); any earlier answer can be changed. The judgments train their personal reward model
(RankNet, in the background, with how sure it is), which the environments and agents accept as
``reward_model=RankNetRewardModel.load(path)``.

* :class:`~preference_ui.core.ElicitationSession` -- the loop both interfaces share, with durable,
  resumable sessions;
* :class:`~preference_ui.evidence.EvidenceProvider` -- the networks' predictions and Grad-CAM
  (the ``evidence`` extra, Captum);
* :class:`~preference_ui.judge.SearchJudge` -- a person as the judge of a running search
  (``agents.personalization.Personalization(judge)``): the interfaces show the pairs the search asks
  about, round by round, and a restarted search replays the answers already given;
* :func:`preference_ui.web.create_app` -- the web page (Flask; needs the ``ui`` extra);
* :class:`preference_ui.tui.ElicitationApp` -- the terminal UI (Textual; needs the ``ui`` extra).

Start either with ``python scripts/elicit.py`` (add ``--tui`` for the terminal), or judge a search's own
candidates with ``python scripts/search.py --human``.
"""

from __future__ import annotations

from preference_ui.core import ElicitationSession, Pair, Round
from preference_ui.errors import (
    AnswerLockedError,
    ElicitationError,
    EvidenceUnavailableError,
    InvalidRequestError,
    JudgingStoppedError,
    NotFittedError,
    NothingToUndoError,
    SessionMismatchError,
    StalePairError,
    UnknownPairError,
)
from preference_ui.judge import SearchJudge

__all__ = [
    "ElicitationSession",
    "Pair",
    "Round",
    "SearchJudge",
    "ElicitationError",
    "InvalidRequestError",
    "UnknownPairError",
    "StalePairError",
    "NothingToUndoError",
    "NotFittedError",
    "SessionMismatchError",
    "JudgingStoppedError",
    "AnswerLockedError",
    "EvidenceUnavailableError",
]
