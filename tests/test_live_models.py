"""The live networks are NATS-Bench's: parameter and FLOP counts match the official records."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import REAL_DATA_SKIP_REASON  # noqa: E402

import natsbench_gym  # noqa: E402
from natsbench_gym.errors import InvalidArchitectureError  # noqa: E402
from natsbench_gym.live.cost import SIZE_SPACE_CELL, nats_cost, network_cost, space_costs  # noqa: E402
from natsbench_gym.live.models import (  # noqa: E402
    DynamicShapeTinyNet,
    FactorizedReduce,
    TinyNetwork,
    Zero,
    build_nats_network,
    build_network,
    count_flops,
    count_params,
)
from natsbench_gym.spaces import SizeSpace, TopologySpace  # noqa: E402
from natsbench_gym.types import Dataset, Metric  # noqa: E402

DATA = os.environ.get("NATSBENCH_DATA")
needs_data = pytest.mark.skipif(not DATA, reason=REAL_DATA_SKIP_REASON)

# Official records (NATS-Bench v1.0 "simple" files, arch_config/params/flop), all datasets.
OFFICIAL = [
    # space, arch string, dataset, params (M), flops (M)
    ("topology", "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     "cifar10", 0.129306, 15.64737),
    ("topology", "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     "cifar100", 0.135156, 15.65322),
    ("topology", "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     "ImageNet16-120", 0.136456, 3.91948),
    ("topology", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
     "cifar10", 0.802426, 113.95137),
    ("size", "8:8:8:8:8", "cifar10", 0.011714, 4.481114),
    ("size", "8:8:8:8:8", "ImageNet16-120", 0.012704, 1.121336),
    ("size", "8:8:8:16:32", "cifar10", 0.049202, 6.84065),
    ("size", "8:8:8:16:32", "cifar100", 0.052172, 6.84362),
    ("size", "8:8:8:16:32", "ImageNet16-120", 0.052832, 1.71404),
]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny forward passes: one thread is fastest and immune to oversubscription on shared CI."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _sig6(x: float) -> float:
    return float(f"{x:.6g}")


@pytest.mark.parametrize("space, arch, dataset, params, flops", OFFICIAL)
def test_official_records(space, arch, dataset, params, flops):
    enc = natsbench_gym.make_space(space).parse(arch)
    model = build_nats_network(space, enc, dataset)
    ds = Dataset.parse(dataset)
    assert count_params(model) / 1e6 == pytest.approx(params, rel=1e-9, abs=5e-7)
    assert count_flops(model, ds.image_size) / 1e6 == pytest.approx(flops, rel=1e-9, abs=5e-7)
    cost = nats_cost(space, enc, dataset)
    assert (cost.params, cost.flops) == (count_params(model), count_flops(model, ds.image_size))


def test_size_space_cell_is_the_official_one():
    # arch_config["genotype"] of every record in NATS-sss-v1_0-50262
    assert SIZE_SPACE_CELL == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_closed_form_matches_hooks_on_random_networks():
    rng = np.random.default_rng(7)
    for space, n in ((TopologySpace(), 4), (SizeSpace(), 8)):
        for enc in space.sample_many(rng, n):
            for ds in Dataset:
                model = build_nats_network(space.kind, enc, ds)
                cost = nats_cost(space.kind, enc, ds)
                assert cost.params == count_params(model)
                assert cost.flops == count_flops(model, ds.image_size)


def test_small_configs_match_closed_form():
    enc = (3, 2, 4, 1, 0, 3)
    for channels, cells, size in ((8, 1, 16), (4, 2, 8), (16, 3, 32)):
        model = build_network("topology", enc, 10, channels, cells)
        cost = network_cost("topology", enc, 10, size, channels, cells)
        assert (cost.params, cost.flops) == (count_params(model), count_flops(model, size))
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 10)


def test_official_module_names_and_structure():
    net = build_network("topology", TopologySpace().parse(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"), 10)
    assert isinstance(net, TinyNetwork)
    assert len(net.cells) == 17  # 3 stages x 5 cells + 2 residual blocks
    keys = set(net.state_dict())
    for key in ("stem.0.weight", "stem.1.running_mean", "cells.0.layers.0.op.1.weight",
                "cells.5.conv_a.op.1.weight", "cells.5.downsample.1.weight", "lastact.0.weight",
                "classifier.weight", "classifier.bias"):
        assert key in keys, key
    sizes = build_network("size", SizeSpace().parse("8:16:24:32:40"), 100)
    assert isinstance(sizes, DynamicShapeTinyNet)
    assert [c.out_dim for c in sizes.cells] == [8, 16, 24, 32, 40]
    assert sizes.classifier.out_features == 100
    # a cell whose width changes: skip_connect becomes FactorizedReduce(stride 1), none makes zeros
    assert isinstance(sizes.cells[2].layers[3], FactorizedReduce)
    zero = Zero(8, 16, 1)
    assert zero(torch.ones(2, 8, 4, 4)).shape == (2, 16, 4, 4)
    assert FactorizedReduce(8, 16, 2)(torch.ones(2, 8, 4, 4)).shape == (2, 16, 2, 2)


def test_bad_input_size():
    with pytest.raises(InvalidArchitectureError, match="multiple of 4"):
        network_cost("size", (0, 0, 0, 0, 0), 10, input_size=30)


def test_import_natsbench_gym_does_not_import_torch():
    code = (
        "import sys, natsbench_gym, natsbench_gym.live, natsbench_gym.live.cost\n"
        "natsbench_gym.live.register_live_fallback()\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- against the real tables --------------------------------------------------------------------------
def _check_against_table(space_name: str, n: int, seed: int) -> None:
    bench = natsbench_gym.load_benchmark(space_name)
    rng = np.random.default_rng(seed)
    indices = rng.choice(bench.space.size, size=n, replace=False)
    encodings = bench.encodings(indices)
    tables = {ds: bench.query_many(indices, ds, metrics=["params", "flops"]) for ds in Dataset}
    for i, enc in enumerate(encodings):
        model = build_network(space_name, enc, 10)
        for ds in Dataset:
            # only the classifier depends on the dataset's classes: swap it rather than rebuild
            model.classifier = torch.nn.Linear(model.classifier.in_features, ds.num_classes)
            params = count_params(model) / 1e6
            flops = count_flops(model, ds.image_size) / 1e6
            want_p, want_f = tables[ds][Metric.PARAMS][i], tables[ds][Metric.FLOPS][i]
            # the table keeps 6 significant digits of the official values
            assert _sig6(params) == want_p, (indices[i], ds, params, want_p)
            assert _sig6(flops) == want_f, (indices[i], ds, flops, want_f)


@needs_data
@pytest.mark.realdata
@pytest.mark.parametrize("space_name", ["topology", "size"])
def test_networks_match_table_quick(space_name):
    _check_against_table(space_name, 20, seed=0)


@needs_data
@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["topology", "size"])
def test_networks_match_table_500(space_name):
    _check_against_table(space_name, 500, seed=2024)


@needs_data
@pytest.mark.realdata
@pytest.mark.parametrize("space_name", ["topology", "size"])
def test_closed_form_matches_whole_table(space_name):
    bench = natsbench_gym.load_benchmark(space_name)
    for ds in Dataset:
        params, flops = space_costs(bench.space, ds.num_classes, ds.image_size)
        codes = bench._index_to_code
        table = bench.query_many(None, ds, metrics=["params", "flops"])
        for ours, theirs in ((params[codes], table[Metric.PARAMS]), (flops[codes], table[Metric.FLOPS])):
            assert np.array_equal(np.array([_sig6(v) for v in ours]), theirs)
