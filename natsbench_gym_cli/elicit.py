"""Say which of two networks you prefer, in a browser (default) or a terminal (``--tui``), and learn your reward.

Usage (``python scripts/elicit.py ...`` runs the same)::

    natsbench-gym elicit --space topology --dataset cifar10 [--session FILE] [--pairs N] [--active]
                             [--host H] [--port P] [--no-browser] [--tui] [--evidence-data FILE.npz]

Starts a local web server (127.0.0.1 by default) and opens the page: two architectures side by side
with their metrics; choose A, B or tie (keys a / b / t, s to skip, u to undo, f to fit, e for what
each network does: its predictions, per-class accuracy and Grad-CAM). Each judgment is saved to the
session file (JSON Lines) before the next pair appears, and running the same command again resumes
the session. "Fit" trains RankNet on the judgments in the background and saves it beside the
session (``<session>.ranknet.pt``); use it as ``reward_model=RankNetRewardModel.load(path)``.

On a table backend (no trained weights) the evidence panel trains the two networks here, on the live
backend's data: scikit-learn's digits, or ``--evidence-data FILE.npz`` with arrays ``images``
``(n, H, W)`` or ``(n, C, H, W)`` and ``labels`` ``(n,)`` of your own.

Bound to any address other than loopback (``--host 0.0.0.0``), the server requires a token, printed
at start as part of the URL to open; it is kept beside the session (``<session>.token``, 0600) and
stays the same on every start of that session.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import threading
import webbrowser
from pathlib import Path

import natsbench_gym
from natsbench_gym.errors import NATSBenchGymError


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=["topology", "size"], default=None, help="search space (default: the session's, else topology)")
    parser.add_argument("--dataset", default=None, help="cifar10, cifar100 or ImageNet16-120 (default: the session's, else cifar10)")
    parser.add_argument("--budget", type=int, default=None, help="training epochs of the accuracies shown (topology: 12/200; size: 90)")
    parser.add_argument("--device", default=None, help="latency device (default: 1080ti_1 where there is latency)")
    parser.add_argument("--session", type=Path, default=None, help="judgments file, JSONL (default: preferences-<space>-<dataset>.jsonl)")
    parser.add_argument("--pairs", type=int, default=None, help="how many judgments to aim at (default 20)")
    parser.add_argument("--population", type=int, default=30, help="random architectures the pairs are drawn among (new sessions)")
    parser.add_argument("--active", action="store_true", default=None, help="after a fit, ask about the pairs the model is least sure of")
    parser.add_argument("--seed", type=int, default=None, help="seed of the candidates and pairs (new sessions; default random)")
    parser.add_argument("--judge", default="human", help="your name, recorded with every judgment")
    parser.add_argument("--top-k", type=int, default=10, help="top architectures shown after a fit")
    parser.add_argument("--data", default=None, help="benchmark path (default: NATSBENCH_DATA, then $TORCH_HOME)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need the token)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--tui", action="store_true", help="judge in the terminal instead of a browser")
    parser.add_argument("--evidence-data", type=Path, default=None,
                        help="images to train the evidence networks on (a table has no weights): .npz with 'images' and 'labels'")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from preference_ui.core import ElicitationSession

    session_path = args.session
    stored = ElicitationSession.stored_settings(session_path) if session_path else None
    space = args.space or (stored or {}).get("space") or "topology"
    if session_path is None:
        session_path = Path(f"preferences-{space}-{args.dataset or 'cifar10'}.jsonl")
    try:
        bench = natsbench_gym.load_benchmark(space, args.data)
        session = ElicitationSession.open(
            session_path, bench, args.dataset, budget=args.budget, device=args.device, population=args.population,
            pairs=args.pairs, active=args.active, seed=args.seed, judge=args.judge, top_k=args.top_k,
        )
        if args.evidence_data is not None:
            from preference_ui.evidence import EvidenceProvider

            session.evidence = EvidenceProvider(session.context, data=read_evidence_data(args.evidence_data),
                                                seed=session.seed)
    except NATSBenchGymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.tui:
        from preference_ui.tui import ElicitationApp

        ElicitationApp(session).run()
        print(f"judgments saved in {session.path}")
        return 0
    return serve(session, args.host, args.port, open_browser=not args.no_browser)


def read_evidence_data(path: Path):
    """``(images, labels)`` from an ``.npz`` file with arrays ``images`` and ``labels``.

    Raises:
        LiveConfigError: the file cannot be read or lacks one of the arrays.
    """
    import numpy as np

    from natsbench_gym.live.config import LiveConfigError

    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("images", "labels") if k not in npz.files]
            if missing:
                raise LiveConfigError(f"{path} lacks the array(s) {', '.join(missing)}; it has {', '.join(npz.files) or 'none'}")
            return npz["images"], npz["labels"]
    except (OSError, ValueError) as exc:
        raise LiveConfigError(f"cannot read evidence data {path}: {exc}; expected an .npz with 'images' and 'labels'") from exc


def token_for(host: str, session_path: Path | None = None) -> str | None:
    """The access token when ``host`` is reachable from other machines; ``None`` on loopback.

    With ``session_path`` it is the session's stored token (``<session>.token``, 0600: the same on
    every start); without, a fresh random one.
    """
    from preference_ui.web import LOOPBACK_HOSTS, session_token

    if host in LOOPBACK_HOSTS:
        return None
    if session_path is None:
        return secrets.token_urlsafe(32)
    from preference_ui.core import ElicitationSession

    return session_token(ElicitationSession.token_path_for(session_path))


def serve(session, host: str, port: int, open_browser: bool = True) -> int:
    """Serve ``session`` until interrupted; print the URL (with the token when one is needed)."""
    from werkzeug.serving import make_server

    from preference_ui.web import create_app

    token = token_for(host, session.path)
    server = make_server(host, port, create_app(session, token=token, bind_host=host), threaded=True)
    server.daemon_threads = True
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{server.server_port}/" + (f"?token={token}" if token else "")
    print(f"Serving the preference page for {session.path} on {url}", flush=True)
    if token:
        print("This address is reachable from other machines: the token in the URL is required.", flush=True)
    print("Press Ctrl+C to stop; every judgment is already saved.", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"judgments saved in {session.path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
