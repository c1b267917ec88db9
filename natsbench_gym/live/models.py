"""The NATS-Bench networks in torch, as the official code defines them.

Written after the official definitions of Xuanyi Dong's AutoDL-Projects / xautodl (MIT), the code
NATS-Bench trained its networks with:

* ``xautodl/models/cell_operations.py``: :class:`ReLUConvBN`, :class:`ResNetBasicblock`,
  :class:`Pooling` (``POOLING``), :class:`Identity`, :class:`Zero`, :class:`FactorizedReduce` and the
  ``OPS`` table (here :func:`make_op`);
* ``xautodl/models/cell_infers/cells.py``: :class:`InferCell`;
* ``xautodl/models/cell_infers/tiny_network.py``: :class:`TinyNetwork` (the topology space,
  ``C=16, N=5``);
* ``xautodl/models/shape_infers/InferTinyCellNet.py``: :class:`DynamicShapeTinyNet` (the size
  space: 5 widths, one cell per stage, with the fixed cell :data:`~natsbench_gym.live.cost.SIZE_SPACE_CELL`
  read from the official sss records);
* ``xautodl/utils/flop_benchmark.py``: :func:`count_flops` and :func:`count_params` follow
  ``get_model_infos`` (convolutions and linear layers only; parameters in units of 10^6).

Module and attribute names match the official ones, so a ``state_dict`` has the same keys
(``stem.0.weight``, ``cells.3.layers.2.op.1.weight``, ``classifier.bias`` ...). The one deliberate
difference: ``forward`` returns the logits only (the official networks return
``(features, logits)``); :meth:`CellNetwork.forward_features` gives the pooled features.

Importing this module imports torch; nothing outside :mod:`natsbench_gym.live` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from natsbench_gym.live.cost import (
    NATS_CELLS_PER_STAGE,
    NATS_CHANNELS,
    SIZE_SPACE_CELL_OPS,
    check_input_size,
    macro_layout,
)
from natsbench_gym.spaces import SIZE_WIDTHS, TOPOLOGY_EDGES, TOPOLOGY_OPS, make_space
from natsbench_gym.types import Dataset, SpaceKind

__all__ = [
    "ReLUConvBN",
    "ResNetBasicblock",
    "Pooling",
    "Identity",
    "Zero",
    "FactorizedReduce",
    "make_op",
    "InferCell",
    "CellNetwork",
    "TinyNetwork",
    "DynamicShapeTinyNet",
    "build_network",
    "build_nats_network",
    "count_params",
    "count_flops",
]


class ReLUConvBN(nn.Module):
    """ReLU, a bias-free convolution, batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResNetBasicblock(nn.Module):
    """The residual block between stages (stride 2: avg-pool + 1x1 conv shortcut)."""

    def __init__(self, inplanes: int, planes: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"invalid stride {stride}; expected 1 or 2")
        self.conv_a = ReLUConvBN(inplanes, planes, 3, stride, 1, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(planes, planes, 3, 1, 1, 1, affine, track_running_stats)
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(inplanes, planes, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif inplanes != planes:
            self.downsample = ReLUConvBN(inplanes, planes, 1, 1, 0, 1, affine, track_running_stats)
        else:
            self.downsample = None
        self.in_dim = inplanes
        self.out_dim = planes
        self.stride = stride
        self.num_conv = 2

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        block = self.conv_b(self.conv_a(inputs))
        residual = inputs if self.downsample is None else self.downsample(inputs)
        return residual + block


class Pooling(nn.Module):
    """3x3 average (or max) pooling; a 1x1 ReLUConvBN first when the width changes (``POOLING``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, mode: str = "avg", affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.preprocess = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats)
        if mode == "avg":
            self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        elif mode == "max":
            self.op = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise ValueError(f"invalid pooling mode {mode!r}; expected 'avg' or 'max'")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs if self.preprocess is None else self.preprocess(inputs)
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (``x * 0`` when the shape is unchanged, as officially)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.C_in = c_in
        self.C_out = c_out
        self.stride = stride
        self.is_zero = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.C_in == self.C_out:
            if self.stride == 1:
                return x.mul(0.0)
            return x[:, :, :: self.stride, :: self.stride].mul(0.0)
        shape = list(x.shape)
        shape[1] = self.C_out
        return x.new_zeros(shape)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """``skip_connect`` between different widths or with stride 2."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.C_in = c_in
        self.C_out = c_out
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            c_outs = [c_out // 2, c_out - c_out // 2]
            self.convs = nn.ModuleList(
                nn.Conv2d(c_in, c, 1, stride=stride, padding=0, bias=not affine) for c in c_outs
            )
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        elif stride == 1:
            self.conv = nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=not affine)
        else:
            raise ValueError(f"invalid stride {stride}; expected 1 or 2")
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = self.relu(x)
            y = self.pad(x)
            out = torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1)
        else:
            out = self.conv(x)  # no ReLU at stride 1, exactly as the official code
        return self.bn(out)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


def make_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True,
            track_running_stats: bool = True) -> nn.Module:
    """The official ``OPS[name](C_in, C_out, stride, affine, track_running_stats)`` for the NATS-Bench ops."""
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return Identity()
        return FactorizedReduce(c_in, c_out, stride, affine, track_running_stats)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0, 1, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1, 1, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return Pooling(c_in, c_out, stride, "avg", affine, track_running_stats)
    raise ValueError(f"unknown op {name!r}; expected one of {', '.join(TOPOLOGY_OPS)}")


class InferCell(nn.Module):
    """The 4-node NAS-Bench-201 cell: node ``j`` sums its incoming edges' ops over nodes ``< j``.

    Args:
        ops: the 6 op names (or ids into :data:`~natsbench_gym.spaces.TOPOLOGY_OPS`) in the order of
            the official string (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3).
        c_in, c_out: input and output width; edges from the input node map ``c_in -> c_out``.
    """

    def __init__(self, ops: Sequence[str | int], c_in: int, c_out: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        names = [TOPOLOGY_OPS[o] if isinstance(o, (int, np.integer)) else str(o) for o in ops]
        if len(names) != len(TOPOLOGY_EDGES):
            raise ValueError(f"a cell has {len(TOPOLOGY_EDGES)} edges; got {len(names)} ops")
        self.layers = nn.ModuleList()
        self.node_IN: list[list[int]] = []  # noqa: N815 - official attribute names
        self.node_IX: list[list[int]] = []  # noqa: N815
        edge = 0
        for node in range(1, 4):
            index, inputs = [], []
            for src in range(node):
                if src == 0:
                    layer = make_op(names[edge], c_in, c_out, stride, affine, track_running_stats)
                else:
                    layer = make_op(names[edge], c_out, c_out, 1, affine, track_running_stats)
                index.append(len(self.layers))
                inputs.append(src)
                self.layers.append(layer)
                edge += 1
            self.node_IX.append(index)
            self.node_IN.append(inputs)
        self.ops = tuple(names)
        self.nodes = 4
        self.in_dim = c_in
        self.out_dim = c_out

    def extra_repr(self) -> str:
        return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*self.ops) + f", inC={self.in_dim}, outC={self.out_dim}"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        nodes = [inputs]
        for layer_ids, input_ids in zip(self.node_IX, self.node_IN, strict=True):
            nodes.append(sum(self.layers[li](nodes[ii]) for li, ii in zip(layer_ids, input_ids, strict=True)))
        return nodes[-1]


class CellNetwork(nn.Module):
    """The shared macro skeleton: stem, cells with two stride-2 residual blocks, BN-ReLU, pool, linear.

    Args:
        widths: output width of each of the ``3N + 2`` layers (``widths[0]`` is also the stem's).
        ops: the cell every non-reduction layer uses (6 op names or ids).
        num_classes: classifier outputs.
    """

    def __init__(self, widths: Sequence[int], ops: Sequence[str | int], num_classes: int) -> None:
        super().__init__()
        widths, reductions = macro_layout([int(w) for w in widths])
        self._widths = tuple(widths)
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(widths[0]))
        c_prev = widths[0]
        self.cells = nn.ModuleList()
        for c_curr, reduction in zip(widths, reductions, strict=True):
            cell = ResNetBasicblock(c_prev, c_curr, 2, True) if reduction else InferCell(ops, c_prev, c_curr, 1)
            self.cells.append(cell)
            c_prev = cell.out_dim
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_features(self, inputs: torch.Tensor) -> torch.Tensor:
        feature = self.stem(inputs)
        for cell in self.cells:
            feature = cell(feature)
        out = self.global_pooling(self.lastact(feature))
        return out.view(out.size(0), -1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(inputs))


class TinyNetwork(CellNetwork):
    """A topology-space network: ``N`` cells per stage at widths ``C, 2C, 4C`` (NATS-Bench: 16, 5)."""

    def __init__(self, C: int, N: int, ops: Sequence[str | int], num_classes: int) -> None:  # noqa: N803
        super().__init__([C] * N + [2 * C] * (N + 1) + [4 * C] * (N + 1), ops, num_classes)
        self._C, self._layerN = C, N


class DynamicShapeTinyNet(CellNetwork):
    """A size-space network: 5 layer widths (stem+cell, block, cell, block, cell), the fixed cell."""

    def __init__(self, channels: Sequence[int], num_classes: int, ops: Sequence[str | int] = SIZE_SPACE_CELL_OPS) -> None:
        super().__init__(channels, ops, num_classes)
        self._channels = tuple(channels)


def build_network(
    space: SpaceKind | str,
    encoding: Sequence[int],
    num_classes: int,
    channels: int = NATS_CHANNELS,
    cells_per_stage: int = NATS_CELLS_PER_STAGE,
) -> CellNetwork:
    """The network of ``encoding`` (topology: with ``C=channels, N=cells_per_stage``; size: its widths)."""
    space_obj = make_space(space)
    enc = space_obj.validate(encoding)
    if space_obj.kind is SpaceKind.TOPOLOGY:
        return TinyNetwork(int(channels), int(cells_per_stage), enc, int(num_classes))
    return DynamicShapeTinyNet([SIZE_WIDTHS[i] for i in enc], int(num_classes))


def build_nats_network(space: SpaceKind | str, encoding: Sequence[int], dataset: Dataset | str) -> CellNetwork:
    """The exact network NATS-Bench trained for ``dataset``."""
    return build_network(space, encoding, Dataset.parse(dataset).num_classes)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (divide by 10^6 for NATS-Bench's ``params``)."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: nn.Module, input_size: int, in_channels: int = 3) -> int:
    """FLOPs of one image by NATS-Bench's convention, measured with forward hooks (``get_model_infos``).

    Counts ``k_h*k_w*C_in*C_out/groups`` per output position for every ``Conv2d`` and
    ``in*out (+out for the bias)`` for every ``Linear``; nothing else. Divide by 10^6 for
    NATS-Bench's ``flop``.
    """
    input_size = check_input_size(input_size)
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        positions = output.shape[0] * output.shape[2] * output.shape[3]
        total += kh * kw * module.in_channels * module.out_channels // module.groups * positions
        if module.bias is not None:
            total += module.out_channels * positions

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        rows = inputs[0].shape[0]
        total += rows * module.in_features * module.out_features
        if module.bias is not None:
            total += rows * module.out_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
