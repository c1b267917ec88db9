"""Benchmark backends and the resolution chain behind :func:`load_benchmark`.

Resolution, first match wins:

1. an explicit ``path`` (a table directory or official NATS-Bench files) or a :class:`Benchmark`;
2. ``$NATSBENCH_DATA`` (a table directory, or one holding official files);
3. official NATS-Bench files under ``$TORCH_HOME`` (default ``~/.torch``), where ``nats_bench`` looks;
4. the fallbacks registered with :func:`register_fallback`; by default the live-training backend
   (:class:`natsbench_gym.live.LiveBenchmark`: real NATS-Bench networks trained here on offline
   data), registered by the string entry point :data:`LIVE_FALLBACK` and imported (with torch)
   only when it fires -- this package imports nothing from :mod:`natsbench_gym.live`;
5. otherwise a :class:`~natsbench_gym.errors.DataNotFoundError` that says how to get data.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from natsbench_gym.benchmarks.base import ArchLike, Benchmark, BenchmarkCapabilities, QuerySpec
from natsbench_gym.benchmarks.official import NATSBenchAPIBenchmark, find_official_dir
from natsbench_gym.benchmarks.table import TableBenchmark
from natsbench_gym.errors import DataNotFoundError, InvalidConfigError
from natsbench_gym.types import SpaceKind

__all__ = [
    "ArchLike",
    "Benchmark",
    "BenchmarkCapabilities",
    "QuerySpec",
    "TableBenchmark",
    "NATSBenchAPIBenchmark",
    "load_benchmark",
    "open_benchmark_path",
    "register_fallback",
    "LIVE_FALLBACK",
]

logger = logging.getLogger(__name__)

#: A fallback: ``factory(space_kind) -> Benchmark``, or the string ``"module:attribute"`` naming one
#: (imported only when the fallback fires, so registering it costs nothing).
Fallback = Callable[[SpaceKind], Benchmark] | str

#: Entry point of the default fallback, the live-training backend (a class called with the space kind).
LIVE_FALLBACK = "natsbench_gym.live.benchmark:LiveBenchmark"

_FALLBACKS: list[tuple[str, Fallback]] = [("live", LIVE_FALLBACK)]
_LOADED: dict[tuple[str, str], Benchmark] = {}


def register_fallback(name: str, factory: Fallback) -> None:
    """Add a backend tried after every data source is missing (e.g. live training).

    Args:
        name: the fallback's name (registering a name again replaces the earlier one).
        factory: ``factory(space_kind) -> Benchmark``, or ``"module:attribute"`` naming such a
            callable (a :class:`Benchmark` subclass qualifies), imported when the fallback fires.

    Raises:
        InvalidConfigError: ``factory`` is neither callable nor a ``"module:attribute"`` string.
    """
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        if not module or not attribute:
            raise InvalidConfigError(
                f"fallback {name!r}: entry point {factory!r} is not of the form 'module:attribute' "
                f"(e.g. {LIVE_FALLBACK!r})"
            )
    elif not callable(factory):
        raise InvalidConfigError(
            f"fallback {name!r}: expected a factory(space_kind) -> Benchmark or a 'module:attribute' string, "
            f"got {type(factory).__name__}"
        )
    _FALLBACKS[:] = [(n, f) for n, f in _FALLBACKS if n != name]
    _FALLBACKS.append((name, factory))


def _fallback_factory(name: str, factory: Fallback) -> Callable[[SpaceKind], Benchmark]:
    if not isinstance(factory, str):
        return factory
    module, _, attribute = factory.partition(":")
    try:
        target = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise DataNotFoundError(
            f"no NATS-Bench data found, and the {name!r} fallback {factory!r} cannot be loaded ({exc}); "
            "install what it needs (the live backend needs torch) or set NATSBENCH_DATA to a table directory"
        ) from exc
    return target


def open_benchmark_path(path: str | os.PathLike, space: SpaceKind | str, cache_dir=None) -> Benchmark:
    """Open a table directory or official NATS-Bench files at ``path`` for ``space``."""
    kind = SpaceKind.parse(space)
    p = Path(path)
    if (p / f"{kind.short}.csv.gz").is_file():
        return TableBenchmark(p, kind, cache_dir=cache_dir)
    if find_official_dir(p, kind) is not None:
        return NATSBenchAPIBenchmark(p, kind, cache_dir=cache_dir)
    raise DataNotFoundError(
        f"{str(p)!r} holds neither a {kind.short}.csv.gz table nor official NATS-Bench {kind.short} files"
        + ("" if p.exists() else " (the path does not exist)")
    )


def load_benchmark(space: SpaceKind | str = "topology", path: str | os.PathLike | Benchmark | None = None, *, cache_dir=None) -> Benchmark:
    """Return the benchmark for ``space`` following the resolution chain of this module.

    Loaded benchmarks are shared per (space, source), so repeated calls (one per env, say) are free.

    Args:
        space: ``"topology"`` (``"tss"``) or ``"size"`` (``"sss"``).
        path: a :class:`Benchmark` (returned as is), a table directory or official files.
        cache_dir: where the table backend may write its ``.npz`` cache.

    Raises:
        DataNotFoundError: nothing was found and no fallback is registered.
    """
    kind = SpaceKind.parse(space)
    if isinstance(path, Benchmark):
        if path.space.kind is not kind:
            raise ValueError(f"benchmark {path!r} covers the {path.space.kind.value} space, not {kind.value}")
        return path
    sources: list[tuple[str, Path]] = []
    if path is not None:
        sources.append(("explicit path", Path(path)))
    elif os.environ.get("NATSBENCH_DATA"):
        sources.append(("NATSBENCH_DATA", Path(os.environ["NATSBENCH_DATA"])))
    else:
        torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".torch"))
        if find_official_dir(torch_home, kind) is not None:
            sources.append(("TORCH_HOME", torch_home))
    for origin, src in sources:
        key = (kind.value, str(src.resolve()))
        if key not in _LOADED:
            _LOADED[key] = open_benchmark_path(src, kind, cache_dir=cache_dir)
            logger.info("benchmark for %s: %s (from %s)", kind.value, _LOADED[key].describe(), origin)
        return _LOADED[key]
    for name, factory in _FALLBACKS:
        key = (kind.value, f"fallback:{name}")
        if key not in _LOADED:
            _LOADED[key] = _fallback_factory(name, factory)(kind)
            logger.warning(
                "no NATS-Bench data found (NATSBENCH_DATA unset, no official files under $TORCH_HOME); "
                "benchmark for %s: %s (fallback %r)", kind.value, _LOADED[key].describe(), name
            )
        return _LOADED[key]
    raise DataNotFoundError(
        f"no NATS-Bench data found for the {kind.value} space: set NATSBENCH_DATA to a table directory "
        "(natsbench-gym-convert writes one), pass path=..., or put the official NATS-Bench files "
        f"({'NATS-tss-v1_0-3ffb9-simple' if kind is SpaceKind.TOPOLOGY else 'NATS-sss-v1_0-50262-simple'}) under "
        "$TORCH_HOME; README.md's \"Get the NATS-Bench data\" says where to download them"
    )
