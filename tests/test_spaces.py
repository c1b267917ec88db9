"""Search spaces: strings, encodings, codes, and random choices from an explicit Generator."""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.errors import InvalidArchitectureError, UnknownNameError
from natsbench_gym.spaces import SIZE_WIDTHS, TOPOLOGY_OPS, SizeSpace, TopologySpace, make_space
from natsbench_gym.types import SpaceKind

ARCH_11472 = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


@pytest.fixture(params=["topology", "size"])
def space(request):
    return make_space(request.param)


# --- shape of the spaces ------------------------------------------------------------------------
def test_sizes_and_choices():
    topo, size = TopologySpace(), SizeSpace()
    assert (topo.size, topo.num_decisions, topo.num_choices) == (15625, 6, 5)
    assert (size.size, size.num_decisions, size.num_choices) == (32768, 5, 8)
    assert topo.choice_names == TOPOLOGY_OPS
    assert size.choice_names == tuple(str(w) for w in SIZE_WIDTHS)
    assert topo.kind is SpaceKind.TOPOLOGY and size.kind is SpaceKind.SIZE


@pytest.mark.parametrize("name,cls", [("topology", TopologySpace), ("tss", TopologySpace), ("size", SizeSpace), ("sss", SizeSpace)])
def test_make_space_accepts_names_and_aliases(name, cls):
    assert type(make_space(name)) is cls
    assert type(make_space(SpaceKind.parse(name))) is cls


def test_make_space_rejects_unknown_name():
    with pytest.raises(UnknownNameError, match=r"unknown search space 'topolgy'; did you mean 'topology'\?"):
        make_space("topolgy")


def test_decision_names():
    assert [TopologySpace().decision_name(i) for i in range(6)] == [
        "edge 0->1", "edge 0->2", "edge 1->2", "edge 0->3", "edge 1->3", "edge 2->3",
    ]
    assert SizeSpace().decision_name(4) == "layer 4"


# --- strings and encodings ----------------------------------------------------------------------
def test_every_string_round_trips(space):
    encodings = space.all_encodings()
    strings = [space.format(enc) for enc in encodings]
    assert len(set(strings)) == space.size
    for enc, arch_str in zip(encodings.tolist(), strings, strict=True):
        assert space.parse(arch_str) == tuple(enc)


def test_known_encodings():
    topo, size = TopologySpace(), SizeSpace()
    assert topo.parse(ARCH_11472) == (3, 0, 3, 1, 0, 1)
    assert topo.format((3, 0, 3, 1, 0, 1)) == ARCH_11472
    assert size.parse("8:16:32:64:64") == (0, 1, 3, 7, 7)
    assert size.format([0, 1, 3, 7, 7]) == "8:16:32:64:64"
    # the size code is NATS-Bench's index: the widths read as a base-8 number
    assert size.code(size.parse("8:16:32:64:64")) == 1 * 8**3 + 3 * 8**2 + 7 * 8 + 7


def test_parse_tolerates_surrounding_whitespace():
    assert TopologySpace().parse(f"  {ARCH_11472}\n") == (3, 0, 3, 1, 0, 1)
    assert SizeSpace().parse(" 8:16:32:64:64 ") == (0, 1, 3, 7, 7)


def test_all_encodings_are_compact_and_in_code_order(space):
    encodings = space.all_encodings()
    assert encodings.shape == (space.size, space.num_decisions)
    assert encodings.dtype == np.int8
    assert encodings.min() == 0 and encodings.max() == space.num_choices - 1
    np.testing.assert_array_equal(space.codes(encodings), np.arange(space.size))


def test_code_and_decode_are_inverse(space):
    encodings = space.all_encodings()
    rng = np.random.default_rng(0)
    for code in [0, space.size - 1, *rng.integers(0, space.size, size=200).tolist()]:
        enc = space.decode(code)
        assert enc == tuple(encodings[code].tolist())
        assert space.code(enc) == code
        assert all(type(x) is int for x in enc)


def test_first_decision_is_most_significant(space):
    assert space.code((1,) + (0,) * (space.num_decisions - 1)) == space.num_choices ** (space.num_decisions - 1)
    assert space.code((0,) * (space.num_decisions - 1) + (1,)) == 1


def test_to_encoding_accepts_strings_sequences_and_arrays():
    space = TopologySpace()
    expected = (3, 0, 3, 1, 0, 1)
    assert space.to_encoding(ARCH_11472) == expected
    assert space.to_encoding(list(expected)) == expected
    assert space.to_encoding(np.array(expected, dtype=np.int8)) == expected
    with pytest.raises(InvalidArchitectureError, match="got scalar"):
        space.to_encoding(np.array(3))


# --- random choices -----------------------------------------------------------------------------
def test_sample_is_reproducible_from_the_generator(space):
    first = [space.sample(np.random.default_rng(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [space.sample(rng_a) for _ in range(20)] == [space.sample(rng_b) for _ in range(20)]
    draws = {space.sample(np.random.default_rng(seed)) for seed in range(20)}
    assert len(draws) > 1
    for enc in draws:
        assert space.validate(enc) == enc


def test_sample_many_is_reproducible_and_unique_when_asked(space):
    a = space.sample_many(np.random.default_rng(3), 500)
    b = space.sample_many(np.random.default_rng(3), 500)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500, space.num_decisions)
    assert a.min() >= 0 and a.max() < space.num_choices
    unique = space.sample_many(np.random.default_rng(3), 2000, unique=True)
    assert len(np.unique(space.codes(unique))) == 2000
    with pytest.raises(ValueError, match="cannot draw"):
        space.sample_many(np.random.default_rng(0), space.size + 1, unique=True)


def test_mutate_changes_exactly_one_decision(space):
    rng = np.random.default_rng(11)
    positions = set()
    for _ in range(300):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        changed = [i for i, (p, c) in enumerate(zip(parent, child, strict=True)) if p != c]
        assert len(changed) == 1
        positions.add(changed[0])
        assert space.validate(child) == child
    assert positions == set(range(space.num_decisions))


def test_mutate_is_reproducible_from_the_generator(space):
    parent = space.decode(space.size // 3)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    children_a = [space.mutate(parent, rng_a) for _ in range(20)]
    children_b = [space.mutate(parent, rng_b) for _ in range(20)]
    assert children_a == children_b
    assert len(set(children_a)) > 1


def test_mutate_reaches_every_neighbour(space):
    parent = space.decode(space.size // 2)
    rng = np.random.default_rng(0)
    seen = {space.mutate(parent, rng) for _ in range(3000)}
    assert seen == set(space.neighbours(parent))


@pytest.mark.parametrize("kind,count", [("topology", 6 * 4), ("size", 5 * 7)])
def test_neighbours_differ_in_exactly_one_decision(kind, count):
    space = make_space(kind)
    enc = space.decode(1234)
    neighbours = space.neighbours(enc)
    assert len(neighbours) == len(set(neighbours)) == count
    assert enc not in neighbours
    for n in neighbours:
        assert sum(a != b for a, b in zip(enc, n, strict=True)) == 1


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arch_str,error,match",
    [
        ("", InvalidArchitectureError, "is empty"),
        ("   ", InvalidArchitectureError, "is empty"),
        (
            "|conv_5x5~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
            UnknownNameError,
            r"unknown op 'conv_5x5'.*expected one of: none, skip_connect",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x4~1|+|skip_connect~0|none~1|skip_connect~2|",
            UnknownNameError,
            r"unknown op 'nor_conv_3x4'; did you mean 'nor_conv_3x3'\?",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|+|skip_connect~0|none~1|skip_connect~2|",
            InvalidArchitectureError,
            "node 2 has 1 incoming edges; expected 2",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|none~3|",
            InvalidArchitectureError,
            "node 3 has 4 incoming edges; expected 3",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|",
            InvalidArchitectureError,
            "has 2 nodes separated by '\\+'; expected 3",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|+|none~0|",
            InvalidArchitectureError,
            "has 4 nodes",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~2|+|skip_connect~0|none~1|skip_connect~2|",
            InvalidArchitectureError,
            "edge 'nor_conv_3x3~2' of node 2 must read '<op>~1'",
        ),
        (
            "|nor_conv_3x3|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
            InvalidArchitectureError,
            "edge 'nor_conv_3x3' of node 1 must read '<op>~0'",
        ),
        (
            "nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
            InvalidArchitectureError,
            "must start and end with '\\|'",
        ),
    ],
)
def test_bad_topology_strings(arch_str, error, match):
    with pytest.raises(error, match=match):
        TopologySpace().parse(arch_str)


@pytest.mark.parametrize(
    "arch_str,match",
    [
        ("", "is empty"),
        ("8:12:32:64:64", "width 12 of layer 1 is not one of 8, 16, 24, 32, 40, 48, 56, 64"),
        ("8:16:32:64", "has 4 widths; expected 5"),
        ("8:16:32:64:64:64", "has 6 widths; expected 5"),
        ("8:16:x:64:64", "width 'x' of layer 2 is not an integer"),
        ("8,16,32,64,64", "has 1 widths"),
    ],
)
def test_bad_size_strings(arch_str, match):
    with pytest.raises(InvalidArchitectureError, match=match):
        SizeSpace().parse(arch_str)


@pytest.mark.parametrize("value", [None, 123])
def test_non_strings_are_rejected(space, value):
    with pytest.raises(InvalidArchitectureError, match=f"string {value!r}"):
        space.parse(value)


@pytest.mark.parametrize(
    "encoding,match",
    [
        ((0, 1, 2), "has 3 choices; expected 6"),
        ((0, 1, 2, 3, 4, 5), "choice 5 at edge 2->3 is outside 0..4"),
        ((0, -1, 0, 0, 0, 0), "choice -1 at edge 0->2 is outside 0..4"),
        (("a", 0, 0, 0, 0, 0), "is not a sequence of 6 ints"),
        (7, "is not a sequence of 6 ints"),
    ],
)
def test_bad_encodings(encoding, match):
    with pytest.raises(InvalidArchitectureError, match=match):
        TopologySpace().validate(encoding)


def test_format_validates(space):
    with pytest.raises(InvalidArchitectureError, match="outside"):
        space.format((space.num_choices,) * space.num_decisions)


@pytest.mark.parametrize("code", [-1, 15625])
def test_decode_rejects_codes_outside_the_space(code):
    with pytest.raises(InvalidArchitectureError, match=f"code {code} is outside 0..15624"):
        TopologySpace().decode(code)


def test_errors_are_one_hierarchy():
    from natsbench_gym.errors import NATSBenchGymError

    assert issubclass(InvalidArchitectureError, NATSBenchGymError) and issubclass(InvalidArchitectureError, ValueError)
    assert issubclass(UnknownNameError, NATSBenchGymError) and issubclass(UnknownNameError, ValueError)


# --- NATS-Bench's official index order ------------------------------------------------------------
def test_official_topology_order_is_a_permutation_with_nats_bench_anchors():
    from natsbench_gym.spaces import official_topology_order

    space = TopologySpace()
    order = official_topology_order()
    assert order.shape == (space.size,) and np.array_equal(np.sort(order), np.arange(space.size))
    assert not order.flags.writeable and official_topology_order() is order  # computed once
    arch = lambda index: space.format(space.decode(order[index]))  # noqa: E731
    # the three indices NATS-Bench's generate_meta_info asserts after its seeded shuffle
    assert arch(0) == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert arch(9) == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert arch(123) == "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    assert arch(11472) == ARCH_11472  # the ResNet-like cell of the README
    assert int(np.flatnonzero(order == 631)[0]) == 758  # the dense code 631 is official #758
    np.testing.assert_array_equal(SizeSpace().official_index_order(), np.arange(SizeSpace().size))


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["topology", "size"])
def test_official_order_equals_the_genuine_meta_file(official_dir, kind):
    import bz2
    import pickle

    space = make_space(kind)
    folder = {"topology": "NATS-tss-v1_0-3ffb9-simple", "size": "NATS-sss-v1_0-50262-simple"}[kind]
    with bz2.open(official_dir / folder / "meta.pickle.pbz2", "rb") as fh:
        meta_archs = pickle.load(fh)["meta_archs"]
    order = space.official_index_order()
    assert len(meta_archs) == space.size
    assert [space.format(space.decode(code)) for code in order.tolist()] == list(meta_archs)
