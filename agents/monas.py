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
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.base import SearchAgent
from agents.errors import AgentConfigError, InfeasibleSearchError
from agents.personalization import Personalization, PersonalizedSearch
from agents.shaping import RankShaping, check_reward_shaping
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
        super().__init__(seed=seed)
        self.hidden_size = int(hidden_size)
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.entropy_coef = float(entropy_coef)
        self.episodes_per_update = int(episodes_per_update)
        self.temperature = float(temperature)
        self.reward_shaping = reward_shaping
        self.personalization = personalization
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
        pending: deque[tuple[int, ...]] = deque()
        while True:
            if not pending:
                # The policy is fixed within an update: draw its episodes first (the same draws, in the
                # same order, as one at a time) so a parallel live backend trains them together.
                pending.extend(self._feasible_sample() for _ in range(self.episodes_per_update - len(batch)))
                self.prefetch(list(pending))
            actions = pending.popleft()
            evaluation = self.evaluate(actions)
            reward = evaluation.reward if shaping is None else shaping(evaluation.index, evaluation.reward)
            if self.baseline is None:
                self.baseline = reward
            # Adam rescales the steps, but the reward's scale still sets its weight against the entropy
            # bonus; rank shaping makes that balance the same on every dataset and metric.
            advantage = reward - self.baseline
            self.baseline = self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * reward
            batch.append((actions, advantage))
            if len(batch) < self.episodes_per_update:
                continue
            acts = torch.tensor([a for a, _ in batch], dtype=torch.long)
            adv = torch.tensor([w for _, w in batch], dtype=torch.float32)
            log_prob, entropy = self.controller(acts)
            loss = -(adv * log_prob).mean() - self.entropy_coef * entropy.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch.clear()

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
