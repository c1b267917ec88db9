"""The interactive personalization loop: rounds during the search, pairs that decide the
recommendation, how sure the model is, and the paper's one-shot protocol kept as a setting."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from agents.errors import AgentConfigError
from agents.evolution import RegularizedEvolution
from agents.personalization import Personalization, RoundSchedule, metrics_of
from agents.random_search import RandomSearch
from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import ScoringContext
from reward_models import EUBOPairSelector, SyntheticUser, recommendation_confidence
from reward_models.human_preference import (
    NON_MONOTONE_USERS,
    OUT_OF_FAMILY_USERS,
    DeviceUser,
    make_user,
)


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def env(tiny_topology):
    return gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, dataset="cifar10", budget=200)


def user_of(env, metric="accuracy"):
    return SyntheticUser(metric, env.unwrapped.context)


# --- the schedule ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 20, 40])
def test_the_interactive_schedule_spends_every_judgment_and_asks_first(n):
    counts = RoundSchedule.interactive().allocate(n)
    assert sum(counts) == n and counts[0] >= 1 and len(counts) == 4


def test_schedules_by_name_and_bad_schedules():
    assert RoundSchedule.parse("one-shot").allocate(10) == [10]
    assert RoundSchedule.parse("interactive").at == (0.0, 0.4, 0.7, 1.0)
    with pytest.raises(UnknownNameError, match="did you mean 'one-shot'"):
        RoundSchedule.parse("oneshot")
    with pytest.raises(AgentConfigError, match="must start at 0"):
        RoundSchedule(at=(0.5, 1.0), shares=(1, 1))
    with pytest.raises(AgentConfigError, match="one share per round"):
        RoundSchedule(at=(0.0, 1.0), shares=(1.0,))
    with pytest.raises(AgentConfigError, match="share must be > 0"):
        RoundSchedule(at=(0.0, 1.0), shares=(1.0, 0.0))
    with pytest.raises(AgentConfigError, match="batch_size must be >= 1"):
        Personalization(lambda pairs, rng=None: [], batch_size=0)
    with pytest.raises(AgentConfigError, match="stop_when_sure"):
        Personalization(lambda pairs, rng=None: [], stop_when_sure=0.2)


# --- the loop ----------------------------------------------------------------------------------------
def test_the_default_loop_asks_in_rounds_during_and_after_the_search(env):
    judged_at = []

    class Recording:
        """A judge that notes how many architectures the search had evaluated when asked."""

        def __init__(self, user):
            self.user = user

        def __call__(self, pairs, rng=None):
            judged_at.append(env.unwrapped.num_evaluations)
            return self.user(pairs, rng=rng)

    p = Personalization(Recording(user_of(env, "params")), num_comparisons=10)
    result = RegularizedEvolution(8, 4, seed=3, personalization=p).search(env, 50)
    rounds = result.info["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3, 4]
    assert [len(r["pairs"]) for r in rounds] == [3, 2, 2, 3] and len(result.info["comparisons"]) == 10
    # the first round after the initial population, then at 40 % and 70 % of the budget, then after it
    assert [r["evaluations"] for r in rounds] == [8, 20, 35, 50]
    assert judged_at == [8] * 3 + [20] * 2 + [35] * 2 + [50] * 3  # one pair at a time, a refit after each
    assert all(r["strategy"] == "eubo" for r in rounds) and len(result.history) == 50
    # the recommendation is the best of the history under the final model
    model = result.info["learned_metric"]
    assert env.unwrapped.reward_model is model
    final = model.score_many(metrics_of(result.history), env.unwrapped.context)
    assert result.best.index == result.history[int(np.argmax(result.scores))].index
    assert max(result.scores) == pytest.approx(max(final))
    # later rounds judge the search's own candidates, never architectures it did not evaluate
    evaluated = {ev.index for ev in result.history}
    assert {i for c in result.info["comparisons"] for i in c.indices} <= evaluated
    assert 0.5 <= result.info["confidence"].probability <= 1.0


def test_the_one_shot_protocol_is_the_paper_s(env):
    p = Personalization(user_of(env), num_comparisons=10, num_architectures=5, schedule="one-shot")
    result = RegularizedEvolution(8, 4, seed=0, personalization=p).search(env, 40)
    assert [len(r["pairs"]) for r in result.info["rounds"]] == [10]
    assert {i for c in result.info["comparisons"] for i in c.indices} == {ev.index for ev in result.history[:5]}
    assert all(c.selector == "random" for c in result.info["comparisons"])
    assert "confidence" not in result.info


def test_the_interactive_loop_is_reproducible(env, tiny_topology):
    def run(seed):
        e = gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, dataset="cifar10", budget=200)
        result = RegularizedEvolution(8, 4, seed=seed, personalization=Personalization(user_of(e, "weighted"), 8)).search(e, 40)
        return [ev.index for ev in result.history], [c.indices for c in result.info["comparisons"]], result.scores

    assert run(1) == run(1)
    assert run(1)[0] != run(2)[0]


def test_every_agent_runs_the_rounds(env):
    result = RandomSearch(seed=0, personalization=Personalization(user_of(env), 6)).search(env, 30)
    assert [len(r["pairs"]) for r in result.info["rounds"]] == [2, 1, 1, 2]
    assert [r["evaluations"] for r in result.info["rounds"]] == [5, 12, 21, 30]


def test_a_sure_model_stops_asking(env):
    p = Personalization(user_of(env, "params"), num_comparisons=10, stop_when_sure=0.5)
    result = RegularizedEvolution(8, 4, seed=0, personalization=p).search(env, 40)
    rounds = result.info["rounds"]
    assert len(result.info["comparisons"]) == 3  # only the first round: afterwards it is always >= 0.5 sure
    assert [r["strategy"] for r in rounds[1:]] == ["skipped (sure)"] * 3


def test_the_final_order_follows_the_direct_judgments(env):
    """Whatever the model, a candidate never ends above one the judge preferred to it directly."""

    class Stubborn:
        """A fitted 'model' that ranks by params (small first) whatever it is fitted on."""

        is_fitted = True

        def fit(self, comparisons, context):
            return self

        def required_metrics(self, context):
            from natsbench_gym.types import Metric

            return (Metric.PARAMS,)

        def score_many(self, metrics, context=None):
            from natsbench_gym.types import Metric

            return -np.asarray(metrics[Metric.PARAMS], dtype=float)

    user = user_of(env, "accuracy")  # judges by accuracy: larger cells, against the stubborn model
    p = Personalization(user, num_comparisons=10, make_reward_model=lambda seed: Stubborn())
    result = RegularizedEvolution(8, 4, seed=0, personalization=p).search(env, 40)
    rank = {}
    for ev, s in zip(result.history, result.scores, strict=True):
        rank[ev.index] = s
    for c in result.info["comparisons"]:
        if c.outcome.target == 0.5 or c.arch_a.index not in rank or c.arch_b.index not in rank:
            continue
        winner, loser = (c.arch_a.index, c.arch_b.index) if c.outcome.target > 0.5 else (c.arch_b.index, c.arch_a.index)
        if c in result.info["comparisons"][-3:]:  # the final round's pairs are among the final candidates
            assert rank[winner] > rank[loser]


def test_recommend_judged_keeps_the_recommendation_among_what_the_judge_has_seen(env):
    """A final refit that puts an architecture nobody judged first: ``recommend="model"`` follows
    it, ``recommend="judged"`` recommends the best candidate the judge has seen in a pair."""
    from natsbench_gym.types import Metric

    class Fickle:
        """A 'model' that ranks by accuracy but puts every architecture its judgments never showed first."""

        is_fitted = True

        def fit(self, comparisons, context):
            judged = sorted({i for c in comparisons for i in c.indices})
            self.seen = set(np.round(context.query(judged, [Metric.PARAMS, Metric.VALID_ACCURACY])[Metric.VALID_ACCURACY], 9))
            return self

        def required_metrics(self, context):
            return (Metric.VALID_ACCURACY,)

        def score_many(self, metrics, context=None):
            acc = np.asarray(metrics[Metric.VALID_ACCURACY], dtype=float)
            unseen = np.array([round(a, 9) not in self.seen for a in acc])
            return acc + 1000.0 * unseen

    user = user_of(env, "accuracy")
    best = {}
    for rule in ("model", "judged"):
        p = Personalization(user, num_comparisons=6, make_reward_model=lambda seed: Fickle(), recommend=rule)
        result = RegularizedEvolution(8, 4, seed=0, personalization=p).search(env, 40)
        seen = {i for c in result.info["comparisons"] for i in c.indices}
        best[rule] = (result.best.index, result.best.index in seen)
    assert best["model"][1] is False  # the final refit's unseen favourite
    assert best["judged"][1] is True and best["judged"][0] != best["model"][0]
    with pytest.raises(AgentConfigError, match="recommend must be one of 'model', 'judged'"):
        Personalization(user, recommend="seen")


def test_search_cli_recommend_option(tmp_path, real_data, monkeypatch):
    import agents.personalization as ap
    from natsbench_gym_cli.search import build_parser, main

    assert build_parser().parse_args([]).recommend == "model"
    made = []
    original = ap.Personalization.__post_init__
    monkeypatch.setattr(ap.Personalization, "__post_init__", lambda self: made.append(self.recommend) or original(self))
    rc = main(["--preference", "weighted", "--recommend", "judged", "--comparisons", "6", "--evaluations", "30",
               "--data", str(real_data), "--out", str(tmp_path / "out")])
    assert rc == 0 and made == ["judged"]


# --- pairs that decide the recommendation ------------------------------------------------------------
class Draws:
    """A model with fixed posterior draws over official indices 0..n-1."""

    is_fitted = True

    def __init__(self, draws):
        self.draws = np.asarray(draws, dtype=float)

    def required_metrics(self, context):
        from natsbench_gym.types import Metric

        return (Metric.PARAMS,)

    def member_scores(self, metrics, context=None):
        return self.draws[:, self._idx]

    def score_many(self, metrics, context=None):
        return self.member_scores(metrics).mean(axis=0)


class IndexContext:
    """Hands the model the indices it is asked about (what a context's query would look up)."""

    def __init__(self, model):
        self.model = model

    def query(self, archs, metrics):
        self.model._idx = np.asarray(archs)
        return {m: np.zeros(len(archs)) for m in metrics}


def test_eubo_asks_about_the_architectures_that_could_be_the_best():
    # 4 architectures: 0 and 1 are each the best under half of the draws, 2 is second everywhere, 3 last
    draws = [[1.0, 0.0, 0.5, -1.0]] * 5 + [[0.0, 1.0, 0.5, -1.0]] * 5
    model = Draws(draws)
    batch = EUBOPairSelector().select(range(4), 1, np.random.default_rng(0), model=model, context=IndexContext(model))
    assert set(batch[0]) == {0, 1} and batch.strategy == "eubo"
    # never a pair already judged; without a model, random pairs
    again = EUBOPairSelector().select(range(4), 1, np.random.default_rng(0), exclude=[(1, 0)], model=model, context=IndexContext(model))
    assert set(again[0]) != {0, 1} and {0, 1} & set(again[0])
    assert EUBOPairSelector().select(range(4), 2, np.random.default_rng(0)).strategy == "random"


def test_confidence_is_the_share_of_draws_that_rank_the_best_first():
    draws = [[1.0, 0.0, -1.0]] * 3 + [[0.0, 0.5, -1.0]]  # 0 is best on average; 1 beats it in one draw of four
    model = Draws(draws)
    c = recommendation_confidence(model, range(3), IndexContext(model))
    assert (c.best, c.runner_up, c.probability) == (0, 1, 0.75)
    assert "probability 0.75" in str(c)


# --- the users the paper never tried -----------------------------------------------------------------
def test_out_of_family_users_are_judges_with_their_own_utility(topology_bench):
    ctx = ScoringContext.create(topology_bench, "cifar10", 200)
    idx = np.arange(topology_bench.space.size)
    for name in OUT_OF_FAMILY_USERS:
        user = make_user(name, ctx)
        u = user.utilities(idx)
        assert u.shape == idx.shape and np.isfinite(u).all() and np.unique(u).size > 100, name
        (c,) = user([(11, 284)])
        assert c.judge == f"synthetic:{name}"
    assert set(NON_MONOTONE_USERS) <= {"sweet_spot", *OUT_OF_FAMILY_USERS}
    with pytest.raises(UnknownNameError, match="did you mean 'two_devices'"):
        make_user("two_device", ctx)


def test_a_device_user_reads_its_own_device_not_the_env_s(topology_bench):
    ctx = ScoringContext.create(topology_bench, "cifar10", 200)  # the env's device: 1080ti_1
    fast_on_pixel = DeviceUser("pixel", ctx, ("pixel3",), lambda acc, par, flo, lat: lat)
    fast_on_gpu = DeviceUser("gpu", ctx, ("1080ti_1",), lambda acc, par, flo, lat: lat)
    idx = np.arange(topology_bench.space.size)
    from natsbench_gym.types import Metric

    pixel = topology_bench.query_many(idx, "cifar10", 200, [Metric.LATENCY], "pixel3")[Metric.LATENCY]
    assert int(np.argmax(fast_on_pixel.utilities(idx))) == int(np.argmin(pixel))
    assert np.corrcoef(fast_on_pixel.utilities(idx), fast_on_gpu.utilities(idx))[0, 1] < 0.999


def test_search_cli_knows_every_user_and_device():
    from natsbench_gym.rewards import FIXED_METRICS
    from natsbench_gym.types import LATENCY_DEVICES
    from natsbench_gym_cli.search import USERS, build_parser
    from reward_models.human_preference import EXTRA_USERS

    assert USERS == (*FIXED_METRICS, *EXTRA_USERS, *OUT_OF_FAMILY_USERS)
    assert len(LATENCY_DEVICES) == 27
    args = build_parser().parse_args(["--schedule", "one-shot", "--device", "pixel3", "--stop-when-sure", "0.9"])
    assert (args.schedule, args.device, args.stop_when_sure, args.judged_architectures) == ("one-shot", "pixel3", 0.9, None)


def test_the_reported_confidence_is_about_the_recommendation(env):
    p = Personalization(user_of(env, "weighted"), num_comparisons=8)
    result = RegularizedEvolution(8, 4, seed=5, personalization=p).search(env, 40)
    assert result.info["confidence"].best == result.best.index


def test_the_judge_is_told_which_round_of_the_search_each_pair_belongs_to(env):
    """With one pair asked at a time, an interface can still say "round 2 of 4" (PairBatch.round)."""
    user = user_of(env)
    seen = []

    def judge(pairs, *, rng=None):
        seen.extend((pairs.round, pairs.rounds) for _ in pairs)
        return user(pairs, rng=rng)

    RegularizedEvolution(10, 5, seed=0, personalization=Personalization(judge, 8)).search(env, 40)
    assert seen == [(1, 4), (1, 4), (2, 4), (2, 4), (3, 4), (3, 4), (4, 4), (4, 4)]
