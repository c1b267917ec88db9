"""``NATSBench-Topology-v0``: choose the op of each of the 6 edges of a NAS-Bench-201 cell."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from natsbench_gym.envs.base import NATSBenchEnv
from natsbench_gym.envs.config import EnvConfig
from natsbench_gym.errors import UnknownNameError
from natsbench_gym.spaces import TOPOLOGY_EDGES, TOPOLOGY_OPS, Encoding
from natsbench_gym.types import SpaceKind

__all__ = ["NATSBenchTopologyEnv"]


class NATSBenchTopologyEnv(NATSBenchEnv):
    """
    ## Description

    Neural architecture search in NATS-Bench's topology space (the NAS-Bench-201 space): a cell is a
    4-node DAG whose 6 edges each carry one of 5 ops, 15,625 cells in all. An episode builds one cell,
    one edge per step, in the order of the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``
    (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3). The finished cell is scored by a reward model from its
    NATS-Bench metrics, looked up in a benchmark (a table, the official ``nats_bench`` files, or live
    training), so an agent searches the space at the cost of a table lookup.

    ## Action Space

    ``Discrete(5)``: the op of the current edge.

    | Num | Op             |
    |-----|----------------|
    | 0   | `none`         |
    | 1   | `skip_connect` |
    | 2   | `nor_conv_1x1` |
    | 3   | `nor_conv_3x3` |
    | 4   | `avg_pool_3x3` |

    With constraints (``forbidden_ops``, ``max_params``, ``max_flops``, ``max_latency``),
    ``env.action_masks()`` tells which ops of the current edge still lead to an architecture that meets
    them; sb3-contrib's ``MaskablePPO`` uses it. A masked action raises ``InvalidActionError``.

    ## Observation Space

    ``Box(0, 1, (42,), float32)``, the partial cell and the position, all one-hot:

    * ``obs[6 * e : 6 * e + 6]`` for edge ``e`` in 0..5: entries 0-4 one-hot the chosen op, entry 5 is 1
      while the edge is undecided;
    * ``obs[36:42]``: one-hot of the edge decided next (all zero once the cell is complete).

    A flat one-hot vector is what SB3's ``MlpPolicy`` handles best (no embedding needed).

    ## Rewards

    0 on every step but the last; on the last, the reward model's score of the finished cell
    (higher is better). The default, ``reward_model="accuracy"``, is the validation accuracy at the
    search budget, normalised to [0, 1] over the space (test accuracy is for reporting, as NATS-Bench's
    authors advise). Any fixed metric of :mod:`natsbench_gym.rewards` can be named (``"latency"``,
    ``"params"``, ``"flops"``, ``"weighted"``, ``"flop_constraint"``, ``"accuracy_constraint"``), and any
    object with ``score_many(metrics, context)`` (a trained RankNet) or function of a ``{Metric: value}``
    dict can be given.

    ## Starting State

    Every edge undecided, the position on edge 0->1. ``reset`` draws nothing; ``np_random`` is used
    only by noisy evaluation.

    ## Episode End

    The episode terminates after the 6th step (``terminated=True``); it is never truncated. Its
    ``info`` then holds ``arch`` (official string), ``index`` (official NATS-Bench index),
    ``encoding`` (op ids), ``metrics`` (``{metric name: value}`` at the search budget, ``nan`` where the
    data has none), ``reward``, ``train_time`` (simulated seconds this cell cost, counted as NATS-Bench's
    ``simulate_train_eval`` counts them: ``metrics["train_time"]`` plus ``valid_time``, one validation
    pass), ``valid_time`` (``nan`` where the backend has none), ``total_train_time`` (of every cell this
    env evaluated; ``reset`` keeps it, ``env.unwrapped.reset_time()`` clears it), ``dataset``,
    ``trained_on`` (what the accuracies were trained on when that is not ``dataset``: the live
    backend's digits; else ``None``), ``budget`` and ``benchmark``. Other steps' ``info`` holds ``total_train_time`` only. A ``step`` after the end raises
    ``ResetNeededError``.

    ## Arguments

    ```python
    import gymnasium as gym
    import natsbench_gym

    gym.make("NATSBench-Topology-v0", forbidden_ops=(), dataset="cifar10", reward_model="accuracy",
             benchmark=None, budget=None, noise=False, device=None, accuracy_metric="valid_accuracy",
             max_params=None, max_flops=None, max_latency=None, render_mode=None, precompute=None)
    ```

    * ``forbidden_ops``: op names no edge may take (e.g. ``("none",)``).
    * The shared arguments, documented once in :class:`~natsbench_gym.envs.EnvConfig` (pass them as
      keywords, or all at once as ``config=EnvConfig(...)``): ``dataset``, ``reward_model`` (see
      Rewards), ``benchmark``, ``budget`` (here 12, the default, or 200 epochs), ``noise``, ``device``,
      ``accuracy_metric``, the caps ``max_params`` / ``max_flops`` / ``max_latency``, ``render_mode``
      (``"ansi"``: ``render()`` returns the cell as text; ``"human"``: prints it) and ``precompute``.

    ## Version History

    * v0: Initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import natsbench_gym
    >>> env = gym.make("NATSBench-Topology-v0", dataset="cifar10", budget=200)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (42,)
    >>> for op in (3, 3, 3, 1, 3, 2):  # conv3x3 conv3x3 conv3x3 skip conv3x3 conv1x1
    ...     obs, reward, terminated, truncated, info = env.step(op)
    >>> terminated, info["index"], info["arch"]
    (True, 6111, '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|')
    >>> info["metrics"]["valid_accuracy"], info["metrics"]["test_accuracy"], reward
    (91.6067, 94.3733, 1.0)
    """

    space_kind = SpaceKind.TOPOLOGY
    own_arguments = ("forbidden_ops",)

    def __init__(self, config: EnvConfig | None = None, *, forbidden_ops: Iterable[str] = (), **options: Any) -> None:
        if isinstance(forbidden_ops, str):
            forbidden_ops = (forbidden_ops,)
        allowed = np.ones(len(TOPOLOGY_OPS), dtype=bool)
        for op in forbidden_ops:
            if op not in TOPOLOGY_OPS:
                raise UnknownNameError("op", op, TOPOLOGY_OPS)
            allowed[TOPOLOGY_OPS.index(op)] = False
        self.forbidden_ops = tuple(op for op, ok in zip(TOPOLOGY_OPS, allowed, strict=True) if not ok)
        super().__init__(config, allowed_choices=allowed, **options)

    def _draw(self, partial: Encoding) -> str:
        lines = [f"NATS-Bench topology cell ({len(partial)}/6 edges decided)"]
        for pos, (to_node, from_node) in enumerate(TOPOLOGY_EDGES):
            op = TOPOLOGY_OPS[partial[pos]] if pos < len(partial) else "?"
            marker = "  <- next" if pos == len(partial) else ""
            lines.append(f"  node {from_node} -> node {to_node}: {op}{marker}")
        if len(partial) == len(TOPOLOGY_EDGES):
            lines.append(self.space.format(partial))
        return "\n".join(lines)
