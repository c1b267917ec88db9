"""The web page: a small Flask app over one :class:`~preference_ui.core.ElicitationSession`.

Routes (every response of ``/api`` is JSON, errors as ``{"error": message}`` with a 4xx status):

=============================  ===========================================================================
``GET  /``                     the page (plain HTML, CSS and JS, all served from ``preference_ui/static``)
``GET  /api/state``            the session: pending pair, progress, history, fitted model summary, fit running
``POST /api/judge``            ``{"pair_id": "7", "outcome": "a" | "b" | "tie"}``
``POST /api/skip``             ``{"pair_id": "7"}``
``POST /api/undo``             ``{}``: take back the last judgment, skip or change (``undone`` says which)
``POST /api/change``           ``{"id": "<comparison id>", "outcome": "a" | "b" | "tie"}``: change an earlier answer
``POST /api/compare``          ``{"a": 12, "b": 345}``: show that pair next (e.g. two of the top architectures)
``POST /api/fit``              ``{}`` or ``{"top_k": 10}``: train RankNet in the background (202; poll the state)
``POST /api/start``            ``{"start": "warm" | "fresh"}``: a search's start, from earlier users or fresh (the offer)
``GET  /api/evidence``         ``?a=12&b=345``: what the two networks do (predictions, per-class accuracy)
``GET  /api/gradcam``          ``?arch=12&image=40&target=predicted|true``: Grad-CAM of one network, one image
``GET  /api/export/judgments`` the judgments, JSONL (a download)
``GET  /api/export/model``     the fitted reward model file (a download)
=============================  ===========================================================================

Safety: every body is checked before anything is written (a JSON object with exactly the expected
fields, ``Content-Type: application/json``, at most 4 KiB), and a bad one gets a 4xx that says what
was wrong. A request another web site makes the browser send is refused with 403 before anything is
written: one with a ``Sec-Fetch-Site`` other than ``same-origin`` or ``none`` (any ``/api`` request
and any state-changing one) or with an ``Origin`` that is not the page's own. Bound to a loopback
address the app answers only requests addressed to that name (a guard against DNS rebinding); bound
to any other address it also requires ``token``, given once as ``?token=`` on a page address (then
kept in a cookie) or in the ``X-Elicit-Token`` header, never in a POST's query (refused: addresses
end up in logs). The token of a session is stable across restarts (:func:`session_token`, kept
beside the session with permissions 0600), so an open tab keeps working; a browser without it gets
an HTML page that says how to open the page, an API client a JSON 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from natsbench_gym.fileio import atomic_path
from preference_ui.core import ElicitationSession
from preference_ui.errors import ElicitationError, InvalidRequestError
from reward_models.preferences import OUTCOMES

__all__ = [
    "create_app", "start_server", "session_token", "RunningServer", "LOOPBACK_HOSTS", "TOKEN_HEADER", "TOKEN_COOKIE",
    "SAFE_FETCH_SITES",
]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_HEADER = "X-Elicit-Token"
TOKEN_COOKIE = "elicit_token"
MAX_BODY_BYTES = 4096
#: ``Sec-Fetch-Site`` values of requests the page itself makes (``none``: the person typed the address).
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_UNAUTHORIZED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Token needed · natsbench-gym</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main class="gate"><h1>This page needs its access token</h1>
<p>The preference page is served on an address other machines can reach, so it asks for the token the
server printed when it started: open the address it printed, the one ending in <code>?token=…</code>.
Once opened, this browser keeps the token in a cookie.</p>
<p>The token stays the same when the server is restarted with the same session; it is kept in the
session's <code>.token</code> file beside the judgments.</p></main></body></html>
"""


def session_token(path: str | os.PathLike) -> str:
    """The access token kept in ``path`` (``<session>.token``), created on first use.

    The file is written atomically with permissions 0600 (read and write for its owner only); a
    file found with wider permissions is narrowed to 0600, with a warning. The same session gets
    the same token on every start, so a page left open keeps working after a restart.
    """
    path = Path(path)
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("%s was readable by others (mode %o); narrowed to 0600", path, mode)
            os.chmod(path, 0o600)
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
        logger.warning("%s holds no usable token; writing a new one", path)
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    return token


def create_app(session: ElicitationSession, *, token: str | None = None, bind_host: str = "127.0.0.1") -> Flask:
    """Build the app for ``session``.

    Args:
        session: the elicitation session every request reads and writes.
        token: when set, every request must carry it (query ``?token=``, cookie or header).
        bind_host: the address the server listens on; a loopback one enables the Host-header guard.
    """
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    loopback = bind_host in LOOPBACK_HOSTS

    @app.before_request
    def guard() -> Response | None:
        if loopback and _hostname(request.host) not in LOOPBACK_HOSTS:
            return _error(HTTPStatus.FORBIDDEN, f"this server answers only requests to {bind_host}, not {request.host!r}")
        refused = _cross_site(request)
        if refused is not None:
            return _error(HTTPStatus.FORBIDDEN, refused)
        if request.method in _UNSAFE_METHODS and "token" in request.args:
            return _error(
                HTTPStatus.BAD_REQUEST,
                f"never put the token in a {request.method}'s address (addresses end up in logs and history); "
                f"send it in the {TOKEN_HEADER} header or the cookie the page sets",
            )
        if token is None or request.path.startswith("/static/"):  # the page's own files are no secret
            return None
        given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
        if request.method == "GET":
            given = given or request.args.get("token")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            if _wants_html(request):
                return Response(_UNAUTHORIZED_PAGE, status=HTTPStatus.UNAUTHORIZED, mimetype="text/html")
            return _error(
                HTTPStatus.UNAUTHORIZED,
                "a token is required: open the URL with ?token=... that the server printed at start",
            )
        if request.method == "GET" and "token" in request.args:
            # Keep the token out of the address bar and history: set the cookie and reload clean.
            response = redirect(request.path)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response
        return None

    @app.after_request
    def no_cache(response: Response) -> Response:
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        )
        return response

    @app.errorhandler(ElicitationError)
    def elicitation_error(exc: ElicitationError):
        return _error(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
            return _error(exc.code, f"the request body is larger than {MAX_BODY_BYTES} bytes")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/state")
    def state():
        return jsonify(session.state())

    @app.post("/api/judge")
    def judge():
        body = _json_body(required={"pair_id": str, "outcome": str})
        outcome = body["outcome"]
        if outcome not in OUTCOMES:
            raise InvalidRequestError(f"outcome {outcome!r} is not one of {', '.join(map(repr, OUTCOMES))}")
        return jsonify(session.judge(body["pair_id"], outcome))

    @app.post("/api/skip")
    def skip():
        body = _json_body(required={"pair_id": str})
        return jsonify(session.skip(body["pair_id"]))

    @app.post("/api/undo")
    def undo():
        _json_body()
        return jsonify(session.undo())

    @app.post("/api/change")
    def change():
        body = _json_body(required={"id": str, "outcome": str})
        outcome = body["outcome"]
        if outcome not in OUTCOMES:
            raise InvalidRequestError(f"outcome {outcome!r} is not one of {', '.join(map(repr, OUTCOMES))}")
        return jsonify(session.change(body["id"], outcome))

    @app.post("/api/compare")
    def compare():
        body = _json_body(required={"a": int, "b": int})
        return jsonify(session.compare(body["a"], body["b"]))

    @app.post("/api/fit")
    def fit():
        body = _json_body(optional={"top_k": int})
        top_k = body.get("top_k", session.top_k)
        if not 1 <= top_k <= 100:
            raise InvalidRequestError(f"top_k must be between 1 and 100, got {top_k}")
        response = jsonify(session.start_fit(top_k=top_k))
        response.status_code = HTTPStatus.ACCEPTED
        return response

    @app.post("/api/start")
    def start():
        body = _json_body(required={"start": str})
        return jsonify(session.choose_start(body["start"]))

    @app.get("/api/evidence")
    def evidence():
        args = _query(required={"a": int, "b": int})
        view = session.evidence_for_pair(args["a"], args["b"])
        response = jsonify(view)
        response.status_code = HTTPStatus.OK if view.get("ready") else HTTPStatus.ACCEPTED  # poll until ready
        return response

    @app.get("/api/gradcam")
    def gradcam():
        args = _query(required={"arch": int, "image": int}, optional={"target": str})
        view = session.gradcam(args["arch"], args["image"], args.get("target", "predicted"))
        response = jsonify(view)
        response.status_code = HTTPStatus.OK if view.get("state") == "ready" else HTTPStatus.ACCEPTED
        return response

    @app.get("/api/export/judgments")
    def export_judgments():
        data = session.export_judgments()
        return Response(
            data,
            mimetype="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{session.export_name("judgments")}"'},
        )

    @app.get("/api/export/model")
    def export_model():
        path = session.model_path_for_export()
        return send_file(path, as_attachment=True, download_name=session.export_name("model"), max_age=0)

    return app


class RunningServer:
    """The page, served by werkzeug in a background thread (see :func:`start_server`).

    Attributes:
        url: the address to open (with ``?token=`` when a token is required).
    """

    def __init__(self, server: Any, url: str) -> None:
        self._server = server
        self.url = url
        self._thread = threading.Thread(target=server.serve_forever, name="preference-page", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_server(session: ElicitationSession, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> RunningServer:
    """Serve :func:`create_app` of ``session`` on ``host:port`` (``port=0``: a free one) in a thread.

    Off loopback a token is required: ``token``, else the session's own (:func:`session_token` of
    ``session.token_path``, the same on every start).
    """
    from werkzeug.serving import make_server

    if host not in LOOPBACK_HOSTS and not token:
        token = session_token(session.token_path)
    server = make_server(host, port, create_app(session, token=token, bind_host=host), threaded=True)
    server.daemon_threads = True  # a request waiting on a slow training must not hold up stop()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/" + (f"?token={token}" if token else "")
    return RunningServer(server, url)


def _json_body(required: Mapping[str, type] | None = None, optional: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The request's JSON object, checked field by field; raises before anything is written."""
    required = dict(required or {})
    optional = dict(optional or {})
    if request.mimetype != "application/json":
        raise InvalidRequestError(
            f"send the body as JSON with Content-Type: application/json (got {request.mimetype or 'no content type'!r})"
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        body: Any = {}
    else:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidRequestError(f"the body must be a JSON object, got {type(body).__name__}")
    missing = [k for k in required if k not in body]
    if missing:
        raise InvalidRequestError(f"missing field(s): {', '.join(missing)}")
    unexpected = sorted(set(body) - set(required) - set(optional))
    if unexpected:
        expected = ", ".join([*required, *optional]) or "none"
        raise InvalidRequestError(f"unexpected field(s): {', '.join(unexpected)}; expected: {expected}")
    for key, kind in {**required, **optional}.items():
        if key in body and (not isinstance(body[key], kind) or isinstance(body[key], bool)):
            raise InvalidRequestError(f"field {key!r} must be a {kind.__name__}, got {type(body[key]).__name__}")
    return body


def _query(required: Mapping[str, type], optional: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The request's query arguments, checked: exactly the expected ones, integers where asked."""
    optional = dict(optional or {})
    missing = [k for k in required if k not in request.args]
    if missing:
        raise InvalidRequestError(f"missing query argument(s): {', '.join(missing)}")
    unexpected = sorted(set(request.args) - set(required) - set(optional))
    if unexpected:
        raise InvalidRequestError(f"unexpected query argument(s): {', '.join(unexpected)}; expected: {', '.join([*required, *optional])}")
    out: dict[str, Any] = {}
    for key, kind in {**required, **optional}.items():
        if key not in request.args:
            continue
        raw = request.args[key]
        if kind is int:
            if not raw.isdigit() or len(raw) > 9:
                raise InvalidRequestError(f"query argument {key!r} must be a non-negative integer, got {raw!r}")
            out[key] = int(raw)
        else:
            out[key] = raw
    return out


def _cross_site(req) -> str | None:
    """Why ``req`` is refused as coming from another site (``None``: it is not).

    Browsers say where a request comes from in ``Sec-Fetch-Site`` (every request) and ``Origin``
    (every POST); a request the page makes says ``same-origin``. ``/api`` requests and
    state-changing ones from anywhere else (another site, or another port of this host) are refused;
    a person following a link to the page itself is not.
    """
    if req.method not in _UNSAFE_METHODS and not req.path.startswith("/api/"):
        return None
    site = req.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in SAFE_FETCH_SITES:
        return f"refused a {site} request: only this page may use the API (Sec-Fetch-Site: {site})"
    origin = req.headers.get("Origin")
    if origin is not None and origin.rstrip("/") != f"{req.scheme}://{req.host}":
        return f"refused a request from origin {origin!r}: only this page ({req.scheme}://{req.host}) may use the API"
    return None


def _wants_html(req) -> bool:
    """A browser opening a page (it asks for HTML first), not the page's script asking for JSON."""
    best = req.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and not req.path.startswith("/api/")


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = int(status)
    return response


def _hostname(host: str) -> str:
    """``host`` without its port (``"[::1]:5000"`` -> ``"::1"``)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
