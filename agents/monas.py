"""A MONAS-style controller (Hsu et al., 2018): an LSTM that emits an architecture, trained by REINFORCE.

Each episode the controller emits the env's decisions one at a time (6 ops of a topology cell, 5
widths of a size configuration): an LSTM cell reads an embedding of the previous decision and a
per-decision linear head gives the logits of the next one. The finished architecture is evaluated
through the env, and the policy gradient ``-(R - b) * log p(arch) - c * entropy`` is taken with a
moving-average baseline ``b`` (Zoph & Le, ENAS, MONAS). The reward ``R`` is whatever the env gives:
a fixed metric (MONAS's own mixed reward :class:`MONASReward` among them) or a learned RankNet.

Determinism: the controller's weights are initialised from ``seed`` (inside ``torch.random.fork_rng``,
so torch's global generator is left alone), actions are drawn with the agent's numpy generator, and
the search runs on one torch thread. The same seed gives the same history.

Episodes side by side (``n_envs=N``): the policy is fixed within an update, so the episodes of one
update are drawn first and built ``N`` at a time in a Gymnasium vector env
(:class:`~natsbench_gym.envs.vector.PrefetchingVectorEnv` over a ``SyncVectorEnv`` of the search's env
and ``N - 1`` copies sharing its benchmark), which hands the architectures they finish on one step
to the benchmark together: a live backend on a parallel executor trains them concurrently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import BudgetExhausted, Evaluation, SearchAgent
from agents.errors import AgentConfigError, EpisodeError, InfeasibleSearchError
from agents.personalization import Personalization, PersonalizedSearch
from agents.shaping import RankShaping, check_reward_shaping
from natsbench_gym.envs.vector import PrefetchingVectorEnv
from reward_models.fixed import MONASReward  # MONAS's own reward, importable beside its controller

__all__ = ["MONAS", "MONASReward", "Controller"]


class Controller(nn.Module):
    """LSTM policy over a sequence of ``num_decisions`` categorical choices.

    ``temperature`` divides the logits (of the policy that is sampled *and* differentiated, so the
    gradient stays the policy's own): above 1 the policy stays closer to uniform for longer.
    """

    def __init__(self, num_decisions: int, num_choices: int, hidden_size: int = 32, temperature: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise AgentConfigError(f"temperature must be > 0, got {temperature}; 1 is the plain policy")
        self.num_decisions = num_decisions
        self.num_choices = num_choices
        self.temperature = float(temperature)
        self.embedding = nn.Embedding(num_choices + 1, hidden_size)  # the last id is the start token
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, num_choices) for _ in range(num_decisions))

    def forward(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over decisions) of a batch of action sequences ``(n, d)``."""
        n = actions.shape[0]
        prev = torch.full((n,), self.num_choices, dtype=torch.long)
        state = None
        log_prob = torch.zeros(n)
        entropy = torch.zeros(n)
        for t in range(self.num_decisions):
            state = self.cell(self.embedding(prev), state)
            dist = torch.distributions.Categorical(logits=self.heads[t](state[0]) / self.temperature)
            log_prob = log_prob + dist.log_prob(actions[:, t])
            entropy = entropy + dist.entropy()
            prev = actions[:, t]
        return log_prob, entropy

    @torch.no_grad()
    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """One action sequence, each decision drawn with ``rng`` from the policy's probabilities."""
        prev = torch.tensor([self.num_choices])
        state = None
        out = []
        for t in range(self.num_decisions):
            state = self.cell(self.embedding(prev), state)
            probs = torch.softmax(self.heads[t](state[0]) / self.temperature, dim=-1)[0].double().numpy()
            a = int(rng.choice(self.num_choices, p=probs / probs.sum()))
            out.append(a)
            prev = torch.tensor([a])
        return tuple(out)


class MONAS(PersonalizedSearch, SearchAgent):
    """REINFORCE with an LSTM controller and a moving-average baseline (MONAS-style).

    Args:
        hidden_size: LSTM units (one layer).
        learning_rate: Adam step size.
        baseline_decay: the baseline is ``decay * b + (1 - decay) * R`` after each episode.
        entropy_coef: weight of the entropy bonus.
        episodes_per_update: episodes averaged in one policy-gradient step.
        temperature: divides the controller's logits (see :class:`Controller`); 1 is the plain policy.
        reward_shaping: ``"none"`` (MONAS: the policy gradient follows the env's reward) or ``"rank"``
            (it follows the reward's quantile among the distinct architectures evaluated so far,
            :class:`~agents.shaping.RankShaping`; the history keeps the env's reward).
        seed: seeds the weights and the sampled actions.
        personalization: learn the reward from preferences first (random architectures, then RankNet).
        n_envs: episodes built side by side in a Gymnasium vector env
            (:class:`~natsbench_gym.envs.vector.PrefetchingVectorEnv`: the search's env and
            ``n_envs - 1`` copies made from its spec, sharing its benchmark); the architectures they
            finish together are evaluated together, so the live backend on a parallel executor trains
            ``n_envs`` at a time (set it to the executor's workers). An update's
            ``episodes_per_update`` episodes run in rounds of ``n_envs`` (the last round of an update
            holds the rest when it is not a multiple), so ``n_envs <= episodes_per_update``; a round
            builds only what the budget still allows. The same seed and ``n_envs`` give the same
            history; on an env without ``noise`` (each sub-env draws its own seeds) the controller's
            draws, rewards and updates are even those of ``n_envs=1``, and only ``total_train_time``
            in the history is each sub-env's own. A personalization round that refits the reward
            model mid-round applies from the next round. Needs an env made with ``gym.make`` and a
            budget in evaluations. ``1`` (the default): one episode at a time through the env, the
            update's episodes handed to the benchmark together up front.

    A controller resamples architectures it has already built; under
    ``SearchBudget(count_repeats=False)`` those episodes are free and still train the policy.

    After a search, :attr:`controller` is the trained policy and the result's ``info`` holds
    ``baseline`` (the final baseline).
    """

    name = "monas"

    def __init__(
        self,
        hidden_size: int = 32,
        learning_rate: float = 5e-3,
        baseline_decay: float = 0.9,
        entropy_coef: float = 1e-3,
        episodes_per_update: int = 1,
        seed: int | None = None,
        personalization: Personalization | None = None,
        temperature: float = 1.0,
        reward_shaping: str = "none",
        n_envs: int = 1,
    ) -> None:
        check_reward_shaping(reward_shaping)
        if not temperature > 0:
            raise AgentConfigError(f"temperature must be > 0, got {temperature}; 1 is the plain policy")
        if not 0.0 <= baseline_decay < 1.0:
            raise AgentConfigError(f"baseline_decay must be in [0, 1), got {baseline_decay}; MONAS's default is 0.9")
        if episodes_per_update < 1:
            raise AgentConfigError(
                f"episodes_per_update must be >= 1, got {episodes_per_update}; 1 takes a gradient step per episode"
            )
        if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
            raise AgentConfigError(f"n_envs must be a positive integer, got {n_envs!r}; e.g. the executor's workers")
        if n_envs > episodes_per_update:
            raise AgentConfigError(
                f"n_envs={n_envs} > episodes_per_update={episodes_per_update}: only the episodes of one policy update "
                f"run side by side; set episodes_per_update to a multiple of n_envs, e.g. "
                f"MONAS(n_envs={n_envs}, episodes_per_update={n_envs})"
            )
        super().__init__(seed=seed)
        self.hidden_size = int(hidden_size)
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.entropy_coef = float(entropy_coef)
        self.episodes_per_update = int(episodes_per_update)
        self.temperature = float(temperature)
        self.reward_shaping = reward_shaping
        self.personalization = personalization
        self.n_envs = n_envs
        self.controller: Controller | None = None
        self.baseline: float | None = None

    def _search(self) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny networks: one thread is fastest, and results do not depend on it
        try:
            self._reinforce()
        finally:
            torch.set_num_threads(threads)

    def _reinforce(self) -> None:
        space = self.space
        if self.n_envs > 1:
            self._check_side_by_side()
        torch_seed = int(self.rng.integers(2**31))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            self.controller = Controller(space.num_decisions, space.num_choices, self.hidden_size, self.temperature)
        optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.learning_rate)
        if self.personalization is not None:
            self._warm_start()
        self.baseline = None
        batch: list[tuple[tuple[int, ...], float]] = []
        shaping = RankShaping() if self.reward_shaping == "rank" else None
        if self.n_envs > 1:
            self._reinforce_side_by_side(optimizer, shaping)
            return
        pending: deque[tuple[int, ...]] = deque()
        while True:
            if not pending:
                # The policy is fixed within an update: draw its episodes first (the same draws, in the
                # same order, as one at a time) so a parallel live backend trains them together.
                pending.extend(self._feasible_sample() for _ in range(self.episodes_per_update - len(batch)))
                self.prefetch(list(pending))
            actions = pending.popleft()
            self._learn_from(actions, self.evaluate(actions), shaping, batch)
            if len(batch) == self.episodes_per_update:
                self._update(optimizer, batch)

    def _learn_from(self, actions: tuple[int, ...], evaluation: Evaluation, shaping, batch: list) -> None:
        """The episode's advantage against the moving-average baseline, added to ``batch``."""
        reward = evaluation.reward if shaping is None else shaping(evaluation.index, evaluation.reward)
        if self.baseline is None:
            self.baseline = reward
        # Adam rescales the steps, but the reward's scale still sets its weight against the entropy
        # bonus; rank shaping makes that balance the same on every dataset and metric.
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * reward
        batch.append((actions, advantage))

    def _update(self, optimizer: torch.optim.Optimizer, batch: list) -> None:
        """One policy-gradient step on the episodes of ``batch``, then empty it."""
        acts = torch.tensor([a for a, _ in batch], dtype=torch.long)
        adv = torch.tensor([w for _, w in batch], dtype=torch.float32)
        log_prob, entropy = self.controller(acts)
        loss = -(adv * log_prob).mean() - self.entropy_coef * entropy.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch.clear()

    # --- episodes side by side (n_envs > 1) ----------------------------------------------------------
    def _check_side_by_side(self) -> None:
        if self.env.unwrapped.spec is None:
            raise AgentConfigError(
                f"n_envs={self.n_envs} copies the env from its spec, and this env has none; make it with gym.make(...)"
            )
        if self._budget.train_time is not None:
            raise AgentConfigError(
                f"n_envs={self.n_envs} with a train_time budget: each sub-env counts its own simulated time; "
                "give the budget in evaluations (SearchBudget(evaluations=...)) or use n_envs=1"
            )

    def _reinforce_side_by_side(self, optimizer: torch.optim.Optimizer, shaping) -> None:
        """The serial loop's draws, rewards and updates, with each update's episodes built ``n_envs``
        at a time in a :class:`~natsbench_gym.envs.vector.PrefetchingVectorEnv`."""
        base = self.env.unwrapped
        spec = base.spec  # not self.env.spec: a wrapper's spec is a deep copy, its benchmark with it
        subenvs = [_FinishedEpisode(self.env)]
        for _ in range(self.n_envs - 1):  # copies sharing the benchmark (its cache, its executor's workers)
            subenvs.append(_FinishedEpisode(gym.make(spec.id, **{**spec.kwargs, "benchmark": base.benchmark})))
        batch: list[tuple[tuple[int, ...], float]] = []
        while True:
            episodes = [self._feasible_sample() for _ in range(self.episodes_per_update)]
            for start in range(0, len(episodes), self.n_envs):
                chunk = episodes[start : start + self.n_envs]
                # only what the budget still allows is built: no architecture is trained for nothing
                chunk = chunk[: self._affordable(chunk)]
                if not chunk:
                    raise BudgetExhausted
                for actions, (reward, info) in zip(
                    chunk, self._side_by_side(subenvs[: len(chunk)], chunk), strict=True
                ):
                    if self.exhausted:  # a callback stopped the search within the round
                        raise BudgetExhausted
                    self._learn_from(actions, self.record(reward, info, actions), shaping, batch)
            self._update(optimizer, batch)

    def _side_by_side(
        self, subenvs: list[_FinishedEpisode], chunk: Sequence[tuple[int, ...]]
    ) -> list[tuple[float, dict]]:
        """Build ``chunk`` in ``subenvs`` (one episode each) through a vector env; each episode's reward and info."""
        model = self.env.unwrapped.reward_model
        for sub in subenvs[1:]:  # a personalization round may have given the search's env a new reward model
            if sub.unwrapped.reward_model is not model:
                sub.unwrapped.set_reward_model(model)
        envs = PrefetchingVectorEnv(
            gym.vector.SyncVectorEnv([lambda sub=sub: sub for sub in subenvs]), prefetch=self.prefetch
        )
        seed, self._reset_seed = self._reset_seed, None  # seed the first reset only, like Gymnasium
        envs.reset(seed=seed)
        actions = np.array(chunk, dtype=np.int64)
        for t in range(actions.shape[1]):
            envs.step(actions[:, t])
        out = []
        for sub, encoding in zip(subenvs, chunk, strict=True):
            if sub.finished is None:
                raise EpisodeError(
                    f"the env did not terminate after the {len(encoding)} decisions of {tuple(encoding)}; "
                    f"an encoding needs one decision per step ({sub.unwrapped.num_decisions} here)"
                )
            out.append(sub.finished)
        return out

    def _affordable(self, encodings: Sequence[tuple[int, ...]]) -> int:
        """How many of ``encodings``, evaluated in order, the budget (in evaluations) still allows."""
        budget, spent, repeats = self._budget, self.evaluations_spent, self._repeats
        seen = {ev.encoding for ev in self.history}
        n = 0
        for encoding in encodings:
            if self._stopped or budget.spent(spent, self._spent_time(), repeats):
                break
            n += 1
            if budget.count_repeats or encoding not in seen:
                spent += 1
                seen.add(encoding)
            else:
                repeats += 1
        return n

    def _feasible_sample(self) -> tuple[int, ...]:
        base = self.env.unwrapped
        for _ in range(10_000):
            actions = self.controller.sample(self.rng)
            if not base.constrained or base.is_feasible(actions):
                return actions
        raise InfeasibleSearchError(
            f"the controller proposed no feasible architecture in 10000 draws under {base.constraints}; "
            "loosen the constraints (or use an agent that proposes only feasible ones, e.g. 'maskable_ppo')"
        )

    def _result_info(self) -> dict[str, Any]:
        return {**super()._result_info(), "baseline": self.baseline}


class _FinishedEpisode(gym.Wrapper):
    """Keeps the reward and ``info`` of the step that finished the episode (``None`` until then)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.finished: tuple[float, dict[str, Any]] | None = None

    def reset(self, **kwargs):
        self.finished = None
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            self.finished = (float(reward), info)
        return obs, reward, terminated, truncated, info
