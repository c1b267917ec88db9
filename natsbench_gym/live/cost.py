"""Exact parameter and FLOP counts of the NATS-Bench networks, in closed form (no torch).

The counts follow NATS-Bench's own convention (``xautodl/utils/flop_benchmark.py``,
``get_model_infos``): parameters are every trainable tensor (convolutions, batch-norm affine
weights, the classifier), in millions (10^6, what NATS-Bench calls "MB"); FLOPs count only
convolutions and the linear classifier, one multiply-accumulate per weight per output position
(``k*k*C_in*C_out*H_out*W_out``; the classifier adds its bias), in millions. Pooling, batch norm,
ReLU and additions are not counted. The networks are those of :mod:`natsbench_gym.live.models`;
the test suite checks both against each other and against every sampled NATS-Bench record.

Every function takes numpy arrays as well as scalars (op ids, widths), so the costs of a whole
search space are a handful of vectorised expressions (:func:`space_costs`).

Example:
    >>> from natsbench_gym.live.cost import network_cost
    >>> cost = network_cost("size", (0, 0, 0, 1, 3), num_classes=10, input_size=32)  # 8:8:8:16:32
    >>> round(cost.params_m, 6), round(cost.flops_m, 6)
    (0.049202, 6.84065)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from natsbench_gym.errors import InvalidArchitectureError
from natsbench_gym.spaces import SIZE_WIDTHS, TOPOLOGY_EDGES, TOPOLOGY_OPS, SearchSpace, TopologySpace, make_space
from natsbench_gym.types import Dataset, SpaceKind

__all__ = [
    "NetworkCost",
    "NATS_CHANNELS",
    "NATS_CELLS_PER_STAGE",
    "SIZE_SPACE_CELL",
    "SIZE_SPACE_CELL_OPS",
    "network_cost",
    "nats_cost",
    "space_costs",
    "macro_layout",
    "check_input_size",
]

#: Stem width ``C`` and cells per stage ``N`` of every topology-space network in NATS-Bench.
NATS_CHANNELS = 16
NATS_CELLS_PER_STAGE = 5

#: The fixed cell of every size-space network, as recorded in the official NATS-Bench sss records
#: (``arch_config["genotype"]`` of ``NATS-sss-v1_0-50262``).
SIZE_SPACE_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SIZE_SPACE_CELL_OPS: tuple[int, ...] = TopologySpace().parse(SIZE_SPACE_CELL)

_NONE, _SKIP, _CONV1, _CONV3, _AVG = (TOPOLOGY_OPS.index(n) for n in TOPOLOGY_OPS)


@dataclass(frozen=True)
class NetworkCost:
    """Parameter count and FLOPs of one network (exact integers)."""

    params: int
    flops: int

    @property
    def params_m(self) -> float:
        """Parameters in millions (NATS-Bench's ``params``, "MB")."""
        return self.params / 1e6

    @property
    def flops_m(self) -> float:
        """FLOPs in millions (NATS-Bench's ``flop``)."""
        return self.flops / 1e6


def check_input_size(input_size: int) -> int:
    """Input side; the two stride-2 reductions need it to be a positive multiple of 4."""
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)) or input_size < 4 or input_size % 4:
        raise InvalidArchitectureError(
            f"input size {input_size!r} is not a positive multiple of 4; the networks halve it twice "
            "(NATS-Bench uses 32 for CIFAR and 16 for ImageNet16-120)"
        )
    return int(input_size)


def macro_layout(widths: Sequence[int]) -> tuple[list[int], list[bool]]:
    """Per-layer output widths and reduction flags of the skeleton for ``3N + 2`` widths.

    ``widths[0]`` is also the stem width; layer ``N`` and ``2N + 1`` are the stride-2 residual
    blocks, every other layer a cell (``DynamicShapeTinyNet``; ``TinyNetwork`` is the case
    ``[C]*N + [2C]*(N+1) + [4C]*(N+1)``).
    """
    if len(widths) % 3 != 2:
        raise InvalidArchitectureError(f"{len(widths)} layer widths; expected 3N + 2 (N cells per stage)")
    n = len(widths) // 3
    reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
    return list(widths), reductions


def _topology_widths(channels, cells_per_stage: int) -> list:
    c = channels
    return [c] * cells_per_stage + [2 * c] * (cells_per_stage + 1) + [4 * c] * (cells_per_stage + 1)


def _edge_cost(op, c_in, c_out, hw):
    """Params and FLOPs of one cell edge (``OPS[op](c_in, c_out, stride=1)``), elementwise."""
    k2 = np.where(op == _CONV3, 9, np.where(op == _CONV1, 1, 0))
    # ReLUConvBN: a bias-free k x k conv and an affine batch norm.
    params = k2 * c_in * c_out + np.where(k2 > 0, 2 * c_out, 0)
    flops = k2 * c_in * c_out * hw
    # skip_connect / avg_pool_3x3 between different widths: FactorizedReduce(stride 1) or
    # POOLING's ReLUConvBN preprocess -- both a 1x1 conv and a batch norm.
    adapt = ((op == _SKIP) | (op == _AVG)) & (c_in != c_out)
    params = params + np.where(adapt, c_in * c_out + 2 * c_out, 0)
    flops = flops + np.where(adapt, c_in * c_out * hw, 0)
    return params, flops


def _cell_cost(ops, c_in, c_out, hw):
    """Params and FLOPs of an ``InferCell``; ``ops`` is a sequence of 6 op ids (or id arrays)."""
    params = flops = 0
    for op, (_to, frm) in zip(ops, TOPOLOGY_EDGES, strict=True):
        p, f = _edge_cost(op, c_in if frm == 0 else c_out, c_out, hw)
        params, flops = params + p, flops + f
    return params, flops


def _skeleton_cost(widths, reductions, ops, num_classes: int, input_size: int):
    h = input_size
    c0 = widths[0]
    params = 27 * c0 + 2 * c0  # stem: 3x3 conv from RGB, batch norm
    flops = 27 * c0 * h * h
    c_prev = c0
    for c, reduce in zip(widths, reductions, strict=True):
        if reduce:
            h //= 2
            # ResNetBasicblock(stride 2): two ReLUConvBN 3x3, and avg-pool + 1x1 conv shortcut.
            params = params + 9 * c_prev * c + 2 * c + 9 * c * c + 2 * c + c_prev * c
            flops = flops + (9 * c_prev * c + 9 * c * c + c_prev * c) * h * h
        else:
            p, f = _cell_cost(ops, c_prev, c, h * h)
            params, flops = params + p, flops + f
        c_prev = c
    params = params + 2 * c_prev + c_prev * num_classes + num_classes  # last BN, classifier
    flops = flops + c_prev * num_classes + num_classes
    return params, flops


def network_cost(
    space: SpaceKind | str,
    encoding: Sequence[int],
    num_classes: int,
    input_size: int = 32,
    channels: int = NATS_CHANNELS,
    cells_per_stage: int = NATS_CELLS_PER_STAGE,
) -> NetworkCost:
    """Exact cost of one network.

    Args:
        space: ``"topology"`` or ``"size"``.
        encoding: the architecture's encoding (see :mod:`natsbench_gym.spaces`).
        num_classes: classifier outputs.
        input_size: side of the square input.
        channels, cells_per_stage: ``C`` and ``N`` of a topology network (a size network's widths
            are its architecture, with one cell per stage, as in NATS-Bench; these are ignored).
    """
    space_obj = make_space(space)
    enc = space_obj.validate(encoding)
    input_size = check_input_size(input_size)
    if space_obj.kind is SpaceKind.TOPOLOGY:
        widths, reductions = macro_layout(_topology_widths(channels, cells_per_stage))
        ops = enc
    else:
        widths, reductions = macro_layout([SIZE_WIDTHS[i] for i in enc])
        ops = SIZE_SPACE_CELL_OPS
    params, flops = _skeleton_cost(widths, reductions, ops, int(num_classes), input_size)
    return NetworkCost(int(params), int(flops))


def nats_cost(space: SpaceKind | str, encoding: Sequence[int], dataset: Dataset | str) -> NetworkCost:
    """Cost of the network NATS-Bench trains for ``dataset`` (its classes and image size, C=16, N=5)."""
    ds = Dataset.parse(dataset)
    return network_cost(space, encoding, ds.num_classes, ds.image_size)


def space_costs(
    space: SearchSpace | SpaceKind | str,
    num_classes: int,
    input_size: int = 32,
    channels: int = NATS_CHANNELS,
    cells_per_stage: int = NATS_CELLS_PER_STAGE,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact params and FLOPs (both in millions) of every architecture, in code order."""
    space_obj = space if isinstance(space, SearchSpace) else make_space(space)
    input_size = check_input_size(input_size)
    enc = space_obj.all_encodings().astype(np.int64)
    if space_obj.kind is SpaceKind.TOPOLOGY:
        widths, reductions = macro_layout(_topology_widths(channels, cells_per_stage))
        ops = [enc[:, j] for j in range(enc.shape[1])]
    else:
        widths, reductions = macro_layout([np.asarray(SIZE_WIDTHS, dtype=np.int64)[enc[:, j]] for j in range(enc.shape[1])])
        ops = SIZE_SPACE_CELL_OPS
    params, flops = _skeleton_cost(widths, reductions, ops, int(num_classes), input_size)
    n = space_obj.size
    params = np.broadcast_to(np.asarray(params, dtype=np.float64), (n,)) / 1e6
    flops = np.broadcast_to(np.asarray(flops, dtype=np.float64), (n,)) / 1e6
    return params.copy(), flops.copy()
