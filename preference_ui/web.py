"""The web page: a small Flask app over one :class:`~preference_ui.core.ElicitationSession`.

Routes (every response of ``/api`` is JSON, errors as ``{"error": message}`` with a 4xx status):

=============================  ===========================================================================
``GET  /``                     the page (plain HTML, CSS and JS, all served from ``preference_ui/static``)
``GET  /api/state``            the session: pending pair, progress, fitted model summary
``POST /api/judge``            ``{"pair_id": "7", "outcome": "a" | "b" | "tie"}``
``POST /api/skip``             ``{"pair_id": "7"}``
``POST /api/undo``             ``{}``: take back the last judgment or skip
``POST /api/fit``              ``{}`` or ``{"top_k": 10}``: train RankNet on the judgments
``GET  /api/export/judgments`` the judgments, JSONL (a download)
``GET  /api/export/model``     the fitted reward model file (a download)
=============================  ===========================================================================

Safety: every body is checked before anything is written (a JSON object with exactly the expected
fields, ``Content-Type: application/json``, at most 4 KiB), and a bad one gets a 4xx that says what
was wrong. Requiring JSON also keeps other web sites out: a cross-site form cannot send it. Bound to
a loopback address the app answers only requests addressed to that name (a guard against DNS
rebinding); bound to any other address it also requires ``token``, given once as ``?token=`` (then
kept in a cookie) or in the ``X-Elicit-Token`` header.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from preference_ui.core import ElicitationSession
from preference_ui.errors import ElicitationError, InvalidRequestError
from reward_models.preferences import OUTCOMES

__all__ = ["create_app", "start_server", "RunningServer", "LOOPBACK_HOSTS", "TOKEN_HEADER", "TOKEN_COOKIE"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_HEADER = "X-Elicit-Token"
TOKEN_COOKIE = "elicit_token"
MAX_BODY_BYTES = 4096


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
        if token is None:
            return None
        given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or request.args.get("token")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
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

    @app.post("/api/fit")
    def fit():
        body = _json_body(optional={"top_k": int})
        top_k = body.get("top_k", session.top_k)
        if not 1 <= top_k <= 100:
            raise InvalidRequestError(f"top_k must be between 1 and 100, got {top_k}")
        return jsonify(session.fit(top_k=top_k))

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

    Raises:
        InvalidRequestError: ``host`` is not a loopback address and no ``token`` is given.
    """
    from werkzeug.serving import make_server

    if host not in LOOPBACK_HOSTS and not token:
        raise InvalidRequestError(f"serving on {host!r} makes the page reachable from other machines: pass a token")
    server = make_server(host, port, create_app(session, token=token, bind_host=host), threaded=True)
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


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = int(status)
    return response


def _hostname(host: str) -> str:
    """``host`` without its port (``"[::1]:5000"`` -> ``"::1"``)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
