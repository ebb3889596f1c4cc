"""The device service's ASGI application: the v3 API, the token endpoint, Server-Sent Events
and the admin page, in one process, sharing one ``FaceEngine`` with the camera loop.

``Gate`` (outermost) enforces what every API call shares before any handler runs: the body
size limit, the access token, and the key's QPS and daily limits, each answered in the v3
envelope. Any failure a handler did not foresee is logged with its traceback and answered as
the v3 "system error" (222302): a client never sees a 500 page or a traceback.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, StreamingResponse

from .. import errors as E
from ..outputs.broadcast import Broadcast
from . import schemas as S
from .auth import AdminAccount, Busy, KeyStore, SecretChecks, Throttle, TokenError, Tokens
from .device import Device
from .envelope import ApiError, body, error_response
from .limits import Limits
from .live import LiveView
from .service import FaceService

log = logging.getLogger("edge.api")
API_PREFIXES = ("/rest/", "/face-api/")
SSE_KEEPALIVE = 15.0


@dataclass
class State:
    cfg: object
    service: FaceService
    keys: KeyStore
    tokens: Tokens
    limits: Limits
    hub: Broadcast
    live: LiveView
    device: Device
    admin: AdminAccount
    sessions: object = None
    token_throttle: Throttle = field(default_factory=Throttle)
    secret_checks: SecretChecks = None      # scrypt checks, one at a time (token endpoint, login)
    unexpected: int = 0         # failures no handler foresaw (tests assert none)


def _field_error(errors: list) -> ApiError:
    """A validation failure as the v3 code of the first field that failed."""
    whole = ("missing", "model_attributes_type", "model_type", "dict_type", "list_type")
    for err in errors:
        kind = err.get("type", "")
        names = [x for x in err.get("loc", ()) if isinstance(x, str) and x != "body"]
        if kind == "json_invalid" or (not names and kind in whole):
            # not JSON, or not the object / array this call takes (an element that is no object too)
            return ApiError(222200, f"the body is not the JSON this call takes: {err.get('msg')}")
        if not names and kind in ("too_short", "too_long"):
            return ApiError(222208, err.get("msg", ""))
        if not names:
            continue
        if kind == "missing":
            return ApiError(222001, f"{names[-1]} is required", field=names[-1])
        return ApiError(S.FIELD_CODES.get(names[-1], 222001), f"{names[-1]}: {err.get('msg')}", field=names[-1])
    return ApiError(222200, "the body could not be read")


class Gate:
    """Body size, access token and per-key limits for API paths (pure ASGI, outermost)."""

    def __init__(self, app, state: State):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        limit = int(self.state.cfg.serve.max_body_mb * 2**20)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _send(send, _too_big(limit))
        # read the whole body here, with the cap, and hand it on: no handler sees more than the limit
        chunks, size = [], 0
        if scope["method"] in ("POST", "PUT", "PATCH"):
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return await _send(send, _too_big(limit))
                chunks.append(chunk)
                if not msg.get("more_body"):
                    break
        data = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        if path.startswith(API_PREFIXES) or path == "/events":
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            token = (query.get("access_token") or [""])[0]
            if not token and path == "/events" and self.state.sessions is not None and \
                    self.state.sessions.from_scope(scope) is not None:
                return await self.app(scope, replay, send)     # the admin page's own event list
            code = 0
            try:
                key = self.state.tokens.check(token)
            except TokenError as e:
                code = e.code
            if not code:
                s = self.state.cfg.serve
                code = self.state.limits.admit(key.api_key, key.qps if key.qps is not None else s.qps,
                                               key.daily_limit if key.daily_limit is not None else s.daily_limit)
            if code:
                return await _send(send, error_response(ApiError(code, path), path))
        return await self.app(scope, replay, send)


def _too_big(limit: int) -> JSONResponse:
    return error_response(ApiError(222304, f"request body over {limit} bytes", status=413))


async def _send(send, response):
    await response({"type": "http"}, _no_receive, send)


async def _no_receive():
    return {"type": "http.disconnect"}


def create_app(cfg, engine=None, *, camera: bool = False, source=None, clock=time.time) -> FastAPI:
    """The application for ``cfg``. ``engine`` is built on first use (after the licence check)
    unless given; with ``camera`` the configured camera loop (or ``source``: a URI or a
    ``sources.Source``) runs in this process from startup to shutdown, sharing the engine."""
    from contextlib import asynccontextmanager

    from . import admin, v3

    service = FaceService(cfg, engine)
    keys = KeyStore(cfg.home)
    hub = Broadcast()
    live = LiveView(cfg)
    state = State(cfg, service, keys, Tokens(cfg.home, keys, cfg.serve.token_ttl, clock), Limits(), hub, live,
                  Device(cfg, service, hub, live), AdminAccount(cfg.home))
    @asynccontextmanager
    async def lifespan(app):
        import asyncio

        from ..systemd import Notifier

        if camera:
            state.device.start_camera(source)
        notifier = Notifier()
        notifier.tick()                   # READY=1: the API answers (the camera may still be opening)

        async def watchdog():
            # pinged from the event loop itself, so a blocked event loop stops the pings too
            while True:
                await asyncio.sleep(notifier.interval)
                if state.device.healthy():
                    notifier.tick()
                else:
                    log.error("the camera loop is stuck: no more watchdog pings, systemd restarts the service")
        task = asyncio.create_task(watchdog()) if notifier.interval else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            notifier.stopping()
            state.device.stop()

    app = FastAPI(title="edge device service", lifespan=lifespan,
                  description="Baidu face v3 compatible API of an edge terminal (offline). Every call but "
                              "/oauth/2.0/token needs ?access_token=. Errors come in the same envelope with "
                              "the seed's error_code (HTTP 200).",
                  version="3.0", docs_url="/docs", redoc_url=None)
    app.state.edge = state
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc, request.url.path)

    @app.exception_handler(E.EdgeError)
    async def _edge_error(request: Request, exc: E.EdgeError):
        # the engine's and library's errors carry their v3 code (errors.CODES / http_code)
        return error_response(ApiError.from_edge(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if request.url.path.startswith("/admin"):
            return admin.bad_request(request)
        return error_response(_field_error(exc.errors()), request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if request.url.path.startswith("/admin") and exc.status_code in (303, 400, 401, 403):
            return await admin.http_error(request, exc)
        if exc.status_code == 400:     # a body the JSON parser could not even read (binary, bad UTF-8)
            return error_response(ApiError(222200, str(exc.detail)), request.url.path)
        return error_response(ApiError(3, f"{request.method} {request.url.path}: {exc.detail}",
                                       status=exc.status_code), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        state.unexpected += 1
        log.error("unexpected failure on %s", request.url.path, exc_info=exc)
        return error_response(ApiError(222302, f"unexpected {type(exc).__name__}"), request.url.path)

    state.secret_checks = SecretChecks(state.token_throttle)

    async def token(request: Request, grant_type: str | None = None, client_id: str | None = None,
                    client_secret: str | None = None):
        return await _token(state, request, grant_type, client_id, client_secret)

    for method in ("GET", "POST"):       # the SDKs GET it; the seed's curl example POSTs
        app.add_api_route("/oauth/2.0/token", token, methods=[method], response_model=S.TokenOut,
                          response_model_exclude_none=True, tags=["auth"], name=f"token_{method.lower()}",
                          summary="An access_token for an API key/secret pair (grant_type=client_credentials)",
                          responses={400: {"model": S.TokenOut}, 401: {"model": S.TokenOut},
                                     429: {"model": S.TokenOut}})

    @app.get("/events", tags=["events"], summary="Server-Sent Events: the camera loop's events as they happen",
             responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
             response_class=StreamingResponse)
    async def events(request: Request, last: int = 0):
        return _sse(state, request, max(0, min(last, 50)))

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/admin/", status_code=303)

    base_openapi = app.openapi

    def openapi():
        # every v3 error, bad input included, is an envelope with HTTP 200 (as the cloud's), never
        # FastAPI's 422; say so in the document schemathesis checks answers against
        if app.openapi_schema is None:
            spec = base_openapi()
            for ops in spec["paths"].values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                spec.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    app.openapi = openapi
    app.include_router(v3.router)
    app.include_router(admin.router)
    admin.mount(app, state)
    app.add_middleware(Gate, state=state)
    return app


async def _token(state: State, request: Request, grant_type, client_id, client_secret):
    def fail(status, error, desc):
        return JSONResponse({"error": error, "error_description": desc}, status_code=status)

    if grant_type is None:
        return fail(400, "unsupported_grant_type", "grant_type is missing")
    if grant_type != "client_credentials":
        return fail(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    if not client_id or not client_secret:
        return fail(400, "invalid_request", "client_id and client_secret are required")
    # failures are counted per address (README): counted per address and client id, a spray of
    # made-up client ids was never throttled
    who = request.client.host if request.client else "?"
    try:
        key = await state.secret_checks.run(who, state.keys.verify, client_id, client_secret)
    except Busy as e:
        if e.reason == "busy":
            return fail(429, "invalid_client", "the device is busy checking other credentials: retry in a moment")
        return fail(401, "invalid_client", "too many failed attempts: wait a minute")
    if key is None:
        state.token_throttle.failed(who)
        return fail(401, "invalid_client", "unknown client id or wrong client secret")
    state.token_throttle.succeeded(who)
    tok, ttl = state.tokens.issue(key)
    # the SDKs use the token only when the scope names brain_all_scope; otherwise they sign requests
    return {"access_token": tok, "expires_in": ttl, "scope": "public brain_all_scope"}


def _sse(state: State, request: Request, last: int):
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    sub = state.hub.subscribe(lambda: loop.call_soon_threadsafe(wake.set))
    if sub is None:
        return JSONResponse(body(4, None, "too many event subscribers"), status_code=503)

    def frame(ev: dict) -> str:
        return f"event: {ev.get('type', 'event')}\ndata: {json.dumps(ev, ensure_ascii=False, default=str)}\n\n"

    async def stream():
        try:
            yield "retry: 2000\n\n"
            for ev in state.hub.last(last) if last else []:
                yield frame(ev)
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), SSE_KEEPALIVE)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                wake.clear()
                for ev in sub.drain():
                    yield frame(ev)
        finally:
            state.hub.unsubscribe(sub)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
