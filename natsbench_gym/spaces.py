"""The NATS-Bench search spaces: strings, compact encodings, sampling and mutation.

An architecture is held in one compact form everywhere: its **encoding**, a tuple of choice ids,
one per decision (6 op ids for a topology cell, 5 width ids for a size configuration). The official
string is for people and files; the **code** is the encoding read as a base-``num_choices`` number
(first decision most significant), a dense id in ``range(space.size)``.

For the size space the code *is* NATS-Bench's index. For the topology space it is not: NATS-Bench
numbered its cells by shuffling them (see :func:`official_topology_order`, derived from NATS-Bench's
own generation rule and checked against its meta file). Every benchmark maps indices to codes
(:meth:`natsbench_gym.benchmarks.Benchmark.index`); by default in that official order.

Example:
    >>> from natsbench_gym.spaces import TopologySpace
    >>> space = TopologySpace()
    >>> enc = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
    >>> enc
    (3, 0, 3, 1, 0, 1)
    >>> space.format(enc) == space.format(space.decode(space.code(enc)))
    True
"""

from __future__ import annotations

import functools
import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from natsbench_gym.errors import InvalidArchitectureError, UnknownNameError
from natsbench_gym.types import SpaceKind

__all__ = [
    "SearchSpace",
    "TopologySpace",
    "SizeSpace",
    "make_space",
    "official_topology_order",
    "TOPOLOGY_OPS",
    "SIZE_WIDTHS",
]

TOPOLOGY_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
SIZE_WIDTHS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)

#: The 6 edges of a topology cell as (to_node, from_node), in the order of the official string.
TOPOLOGY_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

Encoding = tuple[int, ...]


class SearchSpace(ABC):
    """A discrete space of ``num_decisions`` choices among ``num_choices`` each."""

    kind: SpaceKind
    num_decisions: int
    num_choices: int

    def __init__(self) -> None:
        self._weights = self.num_choices ** np.arange(self.num_decisions - 1, -1, -1, dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of architectures in the space."""
        return int(self.num_choices**self.num_decisions)

    @property
    @abstractmethod
    def choice_names(self) -> tuple[str, ...]:
        """Human-readable name of each choice id."""

    @abstractmethod
    def parse(self, arch_str: str) -> Encoding:
        """Parse an official architecture string into an encoding."""

    @abstractmethod
    def format(self, encoding: Sequence[int]) -> str:
        """Format an encoding as the official architecture string."""

    def decision_name(self, position: int) -> str:
        """Name of decision ``position`` (an edge or a layer)."""
        return f"decision {position}"

    # --- encodings and codes -------------------------------------------------------------
    def validate(self, encoding: Sequence[int]) -> Encoding:
        """Return ``encoding`` as a tuple of ints, or raise if it is not in the space."""
        try:
            enc = tuple(int(x) for x in encoding)
        except (TypeError, ValueError) as exc:
            raise InvalidArchitectureError(
                f"{self.kind.value} encoding {encoding!r} is not a sequence of {self.num_decisions} ints"
            ) from exc
        if len(enc) != self.num_decisions:
            raise InvalidArchitectureError(
                f"{self.kind.value} encoding {encoding!r} has {len(enc)} choices; "
                f"expected {self.num_decisions}"
            )
        for pos, choice in enumerate(enc):
            if not 0 <= choice < self.num_choices:
                raise InvalidArchitectureError(
                    f"{self.kind.value} encoding {encoding!r}: choice {choice} at {self.decision_name(pos)} "
                    f"is outside 0..{self.num_choices - 1}"
                )
        return enc

    def to_encoding(self, arch: str | Sequence[int]) -> Encoding:
        """Accept an official string or an encoding; return a validated encoding."""
        if isinstance(arch, str):
            return self.parse(arch)
        if isinstance(arch, np.ndarray) and arch.ndim == 0:
            raise InvalidArchitectureError(f"expected an architecture string or encoding, got scalar {arch!r}")
        return self.validate(arch)

    def code(self, encoding: Sequence[int]) -> int:
        """Dense id of an encoding: its base-``num_choices`` number (first decision most significant)."""
        return int(np.dot(self.validate(encoding), self._weights))

    def codes(self, encodings: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`code` over an ``(n, num_decisions)`` int array."""
        return np.asarray(encodings, dtype=np.int64) @ self._weights

    def decode(self, code: int) -> Encoding:
        """Inverse of :meth:`code`."""
        code = int(code)
        if not 0 <= code < self.size:
            raise InvalidArchitectureError(f"code {code} is outside 0..{self.size - 1}")
        return tuple(int(x) for x in (code // self._weights) % self.num_choices)

    def official_index_order(self) -> np.ndarray:
        """Code of each official NATS-Bench index (``order[index] == code``), read-only."""
        order = np.arange(self.size, dtype=np.int64)
        order.flags.writeable = False
        return order

    def all_encodings(self) -> np.ndarray:
        """Every encoding of the space as an ``(size, num_decisions)`` array, in code order."""
        codes = np.arange(self.size, dtype=np.int64)
        return ((codes[:, None] // self._weights[None, :]) % self.num_choices).astype(np.int8)

    # --- random choices (always from an explicit Generator) -----------------------------
    def sample(self, rng: np.random.Generator) -> Encoding:
        """Draw one architecture uniformly at random."""
        return tuple(int(x) for x in rng.integers(0, self.num_choices, size=self.num_decisions))

    def sample_many(self, rng: np.random.Generator, n: int, unique: bool = False) -> np.ndarray:
        """Draw ``n`` encodings (``(n, num_decisions)``), optionally without repeats."""
        if unique:
            if n > self.size:
                raise ValueError(f"cannot draw {n} unique architectures from a space of {self.size}")
            codes = rng.choice(self.size, size=n, replace=False)
        else:
            codes = rng.integers(0, self.size, size=n)
        return ((codes[:, None] // self._weights[None, :]) % self.num_choices).astype(np.int64)

    def neighbours(self, encoding: Sequence[int]) -> list[Encoding]:
        """Every architecture that differs from ``encoding`` in exactly one decision."""
        enc = self.validate(encoding)
        out = []
        for pos in range(self.num_decisions):
            for choice in range(self.num_choices):
                if choice != enc[pos]:
                    out.append(enc[:pos] + (choice,) + enc[pos + 1 :])
        return out

    def mutate(self, encoding: Sequence[int], rng: np.random.Generator) -> Encoding:
        """Change one uniformly chosen decision to a different, uniformly chosen choice."""
        enc = list(self.validate(encoding))
        pos = int(rng.integers(self.num_decisions))
        new = int(rng.integers(self.num_choices - 1))
        enc[pos] = new if new < enc[pos] else new + 1
        return tuple(enc)


class TopologySpace(SearchSpace):
    """NATS-Bench's topology search space (NAS-Bench-201): 5 ops on the 6 edges of a 4-node cell.

    The official string lists, for nodes 1, 2 and 3, the op on each incoming edge and the node it
    comes from: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. The encoding holds the 6 op ids
    (indices into :data:`TOPOLOGY_OPS`) in that order.
    """

    kind = SpaceKind.TOPOLOGY
    num_decisions = 6
    num_choices = len(TOPOLOGY_OPS)
    ops = TOPOLOGY_OPS
    edges = TOPOLOGY_EDGES

    @property
    def choice_names(self) -> tuple[str, ...]:
        return TOPOLOGY_OPS

    def official_index_order(self) -> np.ndarray:
        """NATS-Bench's topology index order: see :func:`official_topology_order`."""
        return official_topology_order()

    def decision_name(self, position: int) -> str:
        to_node, from_node = TOPOLOGY_EDGES[position]
        return f"edge {from_node}->{to_node}"

    def parse(self, arch_str: str) -> Encoding:
        if not isinstance(arch_str, str) or not arch_str.strip():
            raise InvalidArchitectureError(
                f"topology string {arch_str!r} is empty; expected e.g. "
                "'|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'"
            )
        nodes = arch_str.strip().split("+")
        if len(nodes) != 3:
            raise InvalidArchitectureError(
                f"topology string {arch_str!r} has {len(nodes)} nodes separated by '+'; expected 3 "
                "('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|')"
            )
        enc: list[int] = []
        for node_id, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise InvalidArchitectureError(
                    f"topology string {arch_str!r}: node {node_id} {node!r} must start and end with '|'"
                )
            edges = [e for e in node[1:-1].split("|")]
            if len(edges) != node_id:
                raise InvalidArchitectureError(
                    f"topology string {arch_str!r}: node {node_id} has {len(edges)} incoming edges; "
                    f"expected {node_id}"
                )
            for from_node, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or src != str(from_node):
                    raise InvalidArchitectureError(
                        f"topology string {arch_str!r}: edge {edge!r} of node {node_id} must read "
                        f"'<op>~{from_node}'"
                    )
                if op not in TOPOLOGY_OPS:
                    raise UnknownNameError("op", op, TOPOLOGY_OPS)
                enc.append(TOPOLOGY_OPS.index(op))
        return tuple(enc)

    def format(self, encoding: Sequence[int]) -> str:
        enc = self.validate(encoding)
        ops = [TOPOLOGY_OPS[i] for i in enc]
        return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


class SizeSpace(SearchSpace):
    """NATS-Bench's size search space: the channel width of each of 5 layers, in {8, 16, ..., 64}.

    The official string joins the widths with ``:`` (``8:16:32:64:64``); the code (first layer most
    significant, base 8) equals NATS-Bench's index.
    """

    kind = SpaceKind.SIZE
    num_decisions = 5
    num_choices = len(SIZE_WIDTHS)
    widths = SIZE_WIDTHS

    @property
    def choice_names(self) -> tuple[str, ...]:
        return tuple(str(w) for w in SIZE_WIDTHS)

    def decision_name(self, position: int) -> str:
        return f"layer {position}"

    def parse(self, arch_str: str) -> Encoding:
        if not isinstance(arch_str, str) or not arch_str.strip():
            raise InvalidArchitectureError(f"size string {arch_str!r} is empty; expected e.g. '8:16:32:64:64'")
        parts = arch_str.strip().split(":")
        if len(parts) != self.num_decisions:
            raise InvalidArchitectureError(
                f"size string {arch_str!r} has {len(parts)} widths; expected {self.num_decisions} "
                "separated by ':' (e.g. '8:16:32:64:64')"
            )
        enc = []
        for pos, part in enumerate(parts):
            try:
                width = int(part)
            except ValueError:
                raise InvalidArchitectureError(
                    f"size string {arch_str!r}: width {part!r} of layer {pos} is not an integer"
                ) from None
            if width not in SIZE_WIDTHS:
                raise InvalidArchitectureError(
                    f"size string {arch_str!r}: width {width} of layer {pos} is not one of "
                    f"{', '.join(map(str, SIZE_WIDTHS))}"
                )
            enc.append(SIZE_WIDTHS.index(width))
        return tuple(enc)

    def format(self, encoding: Sequence[int]) -> str:
        enc = self.validate(encoding)
        return ":".join(str(SIZE_WIDTHS[i]) for i in enc)


#: SHA-256 of :func:`official_topology_order` as little-endian int16, as NATS-Bench's
#: ``meta.pickle.pbz2`` lists it (checked by the real-data tests against the genuine file).
_OFFICIAL_TOPOLOGY_SHA256 = "1d3bb98de011b645ca1cf0585b09293d60b9456cac5d10e6ca296bbb3c55513e"


@functools.cache
def official_topology_order() -> np.ndarray:
    """Code of the topology cell with each official NATS-Bench index (``order[index] == code``).

    NATS-Bench (and NAS-Bench-201 before it) generated its 15,625 cells in code order -- every op of
    the first edge, then of the second ..., ops in :data:`TOPOLOGY_OPS` order (``CellStructure.gen_all``)
    -- and numbered them after ``random.seed(88); random.shuffle(archs)`` (``generate_meta_info`` in
    AutoDL-Projects' ``exps/NAS-Bench-201/main.py``). Python's seeded shuffle is reproducible, so the
    order is derived here instead of shipped; a checksum guards the result (the real-data tests compare
    it with the ``meta_archs`` of the genuine meta file). Computed once, on first use (~10 ms).

    Example:
        >>> order = official_topology_order()
        >>> TopologySpace().format(TopologySpace().decode(order[0]))
        '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
    """
    codes = list(range(TopologySpace.num_choices**TopologySpace.num_decisions))
    random.Random(88).shuffle(codes)
    order = np.array(codes, dtype=np.int64)
    digest = hashlib.sha256(order.astype("<i2").tobytes()).hexdigest()
    if digest != _OFFICIAL_TOPOLOGY_SHA256:  # pragma: no cover - only if Python's shuffle ever changed
        raise RuntimeError(
            "this Python's random.shuffle no longer reproduces NATS-Bench's topology index order "
            f"(checksum {digest[:12]}); load a table or the official files, whose order is their own"
        )
    order.flags.writeable = False
    return order


def make_space(kind: SpaceKind | str) -> SearchSpace:
    """Return the search space for ``"topology"``/``"tss"`` or ``"size"``/``"sss"``."""
    kind = SpaceKind.parse(kind)
    return TopologySpace() if kind is SpaceKind.TOPOLOGY else SizeSpace()


