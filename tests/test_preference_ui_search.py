"""preference_ui.SearchJudge: a person judges the pairs a running search asks about (rounds, resume).

The person is played by a thread that reads what the page shows (Flask's test client, or the real
server over HTTP) and answers by a fixed rule: the architecture with the higher validation accuracy
shown on the page wins. The search is Alg. 1 (regularized evolution with personalization) on a tiny
table.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from agents import RegularizedEvolution
from agents.personalization import Personalization
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from preference_ui import (
    ElicitationSession,
    InvalidRequestError,
    JudgingStoppedError,
    NothingToUndoError,
    SearchJudge,
)
from reward_models import PreferenceDataset, SyntheticUser
from reward_models.human_preference import Judge

pytest.importorskip("flask", reason="the web app needs the 'ui' extra: pip install -e '.[ui]'")
from preference_ui.web import create_app  # noqa: E402


@pytest.fixture(scope="module")
def bench(tiny_tables: Path) -> natsbench_gym.Benchmark:
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def env(bench):
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10")
    yield env
    env.close()


def preferred(pair: dict) -> str:
    """The person's rule, from what the page shows: the higher validation accuracy wins."""
    acc = {side: next(m["value"] for m in pair[side]["metrics"] if m["key"] == "valid_accuracy") for side in ("a", "b")}
    return "a" if acc["a"] > acc["b"] else "b" if acc["b"] > acc["a"] else "tie"


class Person(threading.Thread):
    """Answers every pair the page shows, through Flask's test client, until told to go (or after
    ``limit`` answers); records the pairs it saw."""

    def __init__(self, session: ElicitationSession, limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.client = create_app(session).test_client()
        self.limit = limit
        self.seen: list[tuple[int, int]] = []
        self.done = threading.Event()
        self.gone = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            state = self.client.get("/api/state").get_json()
            pair = state["pair"]
            if pair is None:
                time.sleep(0.01)
                continue
            if self.limit is not None and len(self.seen) >= self.limit:
                self.gone.set()
                return
            self.seen.append((pair["a"]["index"], pair["b"]["index"]))
            response = self.client.post("/api/judge", json={"pair_id": pair["id"], "outcome": preferred(pair)})
            assert response.status_code == 200, response.get_json()


def personalized_search(env, judge, seed=0):
    p = Personalization(judge, num_comparisons=10, num_architectures=5, schedule="one-shot")
    return RegularizedEvolution(population_size=8, sample_size=4, seed=seed, personalization=p).search(env, 20)


def test_a_person_judges_the_search_s_own_candidates(tmp_path, env):
    judge = SearchJudge.open(tmp_path / "s.jsonl", env.unwrapped.context, seed=1)
    assert isinstance(judge, Judge)
    person = Person(judge.session)
    person.start()
    result = personalized_search(env, judge)
    person.done.set()
    person.join()
    comparisons = result.info["comparisons"]
    # the page showed exactly the search's pairs, in the order asked, among its first 5 evaluations
    assert person.seen == [c.indices for c in comparisons] and len(comparisons) == 10
    first_five = {ev.index for ev in result.history[:5]}
    assert {i for pair in person.seen for i in pair} <= first_five
    # the answers are the person's, recorded as theirs, and durable in the session file
    rule = SyntheticUser(lambda m: m[Metric.VALID_ACCURACY], env.unwrapped.context)
    assert [c.outcome for c in comparisons] == [c.outcome for c in rule.judge_many(person.seen, np.random.default_rng(0))]
    assert all(c.judge == "human" and c.selector == "random" and c.dataset == "cifar10" for c in comparisons)
    assert [c.id for c in PreferenceDataset.open(tmp_path / "s.jsonl")] == [c.id for c in comparisons]
    assert result.info["learned_metric"].is_fitted and len(result.history) == 20
    # between rounds the page says it waits for the search
    assert judge.session.state()["search"] == {"waiting": True, "stopped": None, "round": None, "rounds": None, "asked": 0, "left": 0}


def test_a_restarted_search_replays_the_stored_answers_and_asks_only_the_rest(tmp_path, env):
    path = tmp_path / "s.jsonl"
    first = SearchJudge.open(path, env.unwrapped.context, seed=1)
    person = Person(first.session, limit=4)
    person.start()
    threading.Thread(target=lambda: (person.gone.wait(30), first.stop("closed the page")), daemon=True).start()
    with pytest.raises(JudgingStoppedError, match="closed the page"):
        personalized_search(env, first)
    person.join()
    assert len(person.seen) == 4 and len(PreferenceDataset.open(path)) == 4
    stored = PreferenceDataset.open(path).comparisons

    # the same seed and session: the 4 answers come from the file, the person sees only the other 6
    second = SearchJudge.open(path, env.unwrapped.context)
    person2 = Person(second.session)
    person2.start()
    resumed = personalized_search(env, second)
    person2.done.set()
    person2.join()
    comparisons = resumed.info["comparisons"]
    assert [c.id for c in comparisons[:4]] == [c.id for c in stored]
    assert person2.seen == [c.indices for c in comparisons[4:]] and len(person2.seen) == 6
    assert set(person.seen).isdisjoint(person2.seen)

    # a third run finds every answer in the file: nobody is asked, and the search is the same
    third = SearchJudge.open(path, env.unwrapped.context)
    again = personalized_search(env, third)
    assert [c.id for c in again.info["comparisons"]] == [c.id for c in comparisons]
    assert [ev.index for ev in again.history] == [ev.index for ev in resumed.history]
    assert third.session.state()["progress"]["judged"] == 10


def test_rounds_skip_undo_and_their_limits(tmp_path, bench):
    ctx = ScoringContext.create(bench, "cifar10")
    session = ElicitationSession.open_for_search(tmp_path / "s.jsonl", ctx, seed=0)
    assert session.pending is None and session.state()["search"]["waiting"]
    with pytest.raises(NothingToUndoError):
        session.undo()
    round_ = session.ask([(1, 2), (3, 4), (2, 1), (5, 6)], "active:disagreement")
    assert round_.todo == [(1, 2), (3, 4), (5, 6)]  # (2, 1) is the pair (1, 2): asked once
    assert session.state()["progress"] == {"judged": 0, "target": 3, "skipped": 0}
    with pytest.raises(InvalidRequestError, match="round 1 is still open"):
        session.ask([(7, 8)])
    p = session.pending
    assert (p.a, p.b, p.selector) == (1, 2, "active:disagreement")
    assert round_.todo == [(1, 2), (3, 4), (5, 6)]
    session.skip(p.id)  # shown again after the round's other pairs
    assert (session.pending.a, session.pending.b) == (3, 4) and round_.todo == [(3, 4), (5, 6), (1, 2)]
    session.judge(session.pending.id, "a")
    assert (session.pending.a, session.pending.b) == (5, 6)
    session.undo()  # the judgment: (3, 4) again
    assert (session.pending.a, session.pending.b) == (3, 4) and session.state()["progress"]["judged"] == 0
    session.undo()  # the skip: (1, 2) again, first
    assert (session.pending.a, session.pending.b) == (1, 2)
    for outcome in ("a", "b", "tie"):
        session.judge(session.pending.id, outcome)
    answers = session.wait(round_, timeout=5)
    assert [c.indices for c in answers] == [(1, 2), (3, 4), (1, 2), (5, 6)]
    assert [c.outcome.value for c in answers] == ["a", "b", "a", "tie"] and answers[0] is answers[2]
    with pytest.raises(NothingToUndoError, match="the search already has the earlier answers"):
        session.undo()
    # the next round asks only what is new; a round of known pairs is answered at once
    assert session.ask([(3, 4), (1, 2)]).done
    second = session.ask([(4, 3), (8, 9)])
    assert second.todo == [(8, 9)] and second.replayed == 1 and session.state()["search"]["round"] == 3
    shown = session.pending
    session.skip(shown.id)  # the round's only pair: asked again at once (a round needs every answer)
    assert (session.pending.a, session.pending.b) == (8, 9) and session.pending.id != shown.id
    with pytest.raises(TimeoutError, match="1 pair"):
        session.wait(second, timeout=0.05)
    session.stop("enough")
    with pytest.raises(JudgingStoppedError, match="enough"):
        session.wait(second)
    with pytest.raises(InvalidRequestError, match="not two different architectures"):
        ElicitationSession.open_for_search(tmp_path / "t.jsonl", ctx).ask([(1, 1)])
    own = ElicitationSession.open(tmp_path / "own.jsonl", bench, "cifar10", population=6, seed=0)
    with pytest.raises(InvalidRequestError, match="open_for_search"):
        own.ask([(1, 2)])
    with pytest.raises(ValueError, match="open_for_search"):
        SearchJudge(own)
