"""``NATSBench-Size-v0``: choose the channel width of each of the 5 layers of a NATS-Bench network."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from natsbench_gym.envs.base import NATSBenchEnv
from natsbench_gym.envs.config import EnvConfig
from natsbench_gym.errors import InvalidArchitectureError
from natsbench_gym.spaces import SIZE_WIDTHS, Encoding
from natsbench_gym.types import SpaceKind

__all__ = ["NATSBenchSizeEnv"]


class NATSBenchSizeEnv(NATSBenchEnv):
    """
    ## Description

    Neural architecture search in NATS-Bench's size space: a fixed network whose 5 layers each take
    a channel width in {8, 16, ..., 64}, 32,768 configurations in all. An episode builds one
    configuration, one layer per step (first layer first, as in the official string
    ``8:16:32:64:64``). The finished configuration is scored by a reward model from its NATS-Bench
    metrics, looked up in a benchmark (a table, the official ``nats_bench`` files, or live training).

    ## Action Space

    ``Discrete(8)``: the width of the current layer, action ``i`` meaning ``8 * (i + 1)`` channels.

    With constraints (``allowed_widths``, ``max_params``, ``max_flops``), ``env.action_masks()`` tells
    which widths of the current layer still lead to a configuration that meets them; sb3-contrib's
    ``MaskablePPO`` uses it. A masked action raises ``InvalidActionError``.

    ## Observation Space

    ``Box(0, 1, (50,), float32)``, the partial configuration and the position, all one-hot:

    * ``obs[9 * l : 9 * l + 9]`` for layer ``l`` in 0..4: entries 0-7 one-hot the chosen width, entry 8
      is 1 while the layer is undecided;
    * ``obs[45:50]``: one-hot of the layer decided next (all zero once the configuration is complete).

    A flat one-hot vector is what SB3's ``MlpPolicy`` handles best (no embedding needed).

    ## Rewards

    0 on every step but the last; on the last, the reward model's score of the finished configuration
    (higher is better). The default, ``reward_model="accuracy"``, is the validation accuracy at the
    search budget (90 epochs), normalised to [0, 1] over the space. Any fixed metric of
    :mod:`natsbench_gym.rewards` the backend has data for can be named (the project's size table has
    accuracy, params and FLOPs), as can any object with ``score_many(metrics, context)`` (a trained
    RankNet) or function of a ``{Metric: value}`` dict.

    ## Starting State

    Every layer undecided, the position on layer 0. ``reset`` draws nothing; ``np_random`` is used only
    by noisy evaluation.

    ## Episode End

    The episode terminates after the 5th step (``terminated=True``); it is never truncated. Its
    ``info`` then holds ``arch`` (official string), ``index`` (official NATS-Bench index, which for this
    space is the base-8 number of the width choices), ``encoding``, ``metrics`` (``{metric name:
    value}``), ``reward``, ``train_time`` (training plus one validation pass, as for the topology env;
    ``nan`` when the backend has no training time, as the project's size table), ``valid_time``,
    ``total_train_time`` (``reset`` keeps it, ``env.unwrapped.reset_time()`` clears it), ``dataset``,
    ``trained_on``, ``budget`` and ``benchmark``. Other steps' ``info`` holds
    ``total_train_time`` only. A ``step`` after the end raises ``ResetNeededError``.

    ## Arguments

    ```python
    import gymnasium as gym
    import natsbench_gym

    gym.make("NATSBench-Size-v0", allowed_widths=None, dataset="cifar10", reward_model="accuracy",
             benchmark=None, budget=None, noise=False, device=None, accuracy_metric="valid_accuracy",
             max_params=None, max_flops=None, max_latency=None, render_mode=None, precompute=None)
    ```

    * ``allowed_widths``: widths every layer must take (e.g. ``(16, 32, 64)``); default all.
    * The shared arguments, documented once in :class:`~natsbench_gym.envs.EnvConfig` (pass them as
      keywords, or all at once as ``config=EnvConfig(...)``): ``dataset``, ``reward_model`` (see
      Rewards), ``benchmark``, ``budget`` (NATS-Bench's size space has 90 epochs), ``noise``,
      ``device`` (where the backend measures latency), ``accuracy_metric``, the caps ``max_params`` /
      ``max_flops`` / ``max_latency``, ``render_mode`` (``"ansi"``: ``render()`` returns the widths as
      bars; ``"human"``: prints them) and ``precompute``.

    ## Version History

    * v0: Initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import natsbench_gym
    >>> env = gym.make("NATSBench-Size-v0", dataset="cifar10", max_params=0.5)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (50,)
    >>> env.unwrapped.action_masks().all()  # the first layer alone cannot break the cap
    np.True_
    >>> for layer in range(5):
    ...     masks = env.unwrapped.action_masks()
    ...     obs, reward, terminated, truncated, info = env.step(int(masks.nonzero()[0].max()))  # widest allowed
    >>> info["arch"], info["metrics"]["params"] <= 0.5
    ('64:64:64:40:8', True)
    """

    space_kind = SpaceKind.SIZE
    own_arguments = ("allowed_widths",)

    def __init__(
        self, config: EnvConfig | None = None, *, allowed_widths: Iterable[int] | None = None, **options: Any
    ) -> None:
        allowed = np.ones(len(SIZE_WIDTHS), dtype=bool)
        if allowed_widths is not None:
            allowed[:] = False
            for width in allowed_widths:
                if width not in SIZE_WIDTHS:
                    raise InvalidArchitectureError(
                        f"allowed width {width!r} is not a NATS-Bench size-space width; expected some of "
                        f"{', '.join(map(str, SIZE_WIDTHS))}"
                    )
                allowed[SIZE_WIDTHS.index(width)] = True
        self.allowed_widths = tuple(w for w, ok in zip(SIZE_WIDTHS, allowed, strict=True) if ok)
        super().__init__(config, allowed_choices=allowed, **options)

    def _draw(self, partial: Encoding) -> str:
        lines = [f"NATS-Bench size configuration ({len(partial)}/5 layers decided)"]
        for pos in range(5):
            if pos < len(partial):
                width = SIZE_WIDTHS[partial[pos]]
                lines.append(f"  layer {pos}  {'#' * (width // 8):<8}  {width:>2}")
            else:
                marker = "  <- next" if pos == len(partial) else ""
                lines.append(f"  layer {pos}  {'.' * 8}   ?{marker}")
        if len(partial) == 5:
            lines.append(self.space.format(partial))
        return "\n".join(lines)
