"""HTTP hardening for every response the server sends (pages, API, files, websocket).

Pure ASGI middlewares, installed on the outermost app (the FastAPI app Reflex
mounts itself under), so they see the pages and the event websocket as well:

* :class:`RequestContext` — a request id per request (``X-Request-ID``, taken
  from a trusted proxy when well-formed), one JSON access-log line with method,
  path, status, duration and client address.
* :class:`SecurityHeaders` — CSP that the Reflex frontend works with, HSTS over
  HTTPS, ``X-Content-Type-Options``, ``Referrer-Policy``, ``frame-ancestors``.
* :class:`BodyLimit` — request size limits (uploads included), 413 otherwise.
* :class:`StrictCors` — wraps even Reflex's own CORS layer (it is the last
  ``api_transformer``): cross-origin use only from ``CORS_ORIGIN``/``PUBLIC_URL``.
* :class:`RateLimit` — per-address limits on the API backed by Redis
  (:mod:`fibernode.services.ratelimit`), stricter on login, receipts, imports
  and bulk sends; 429 with ``Retry-After``. Per-user limits are applied where the
  user is known (:func:`fibernode.api.deps.user_actor`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread

from fibernode import cookies as cookie_header
from fibernode import logs
from fibernode.api.deps import error_body
from fibernode.config import get_settings
from fibernode.services import auth, devices, ratelimit, web_login

log = logging.getLogger("fibernode.http")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Reflex's compiled pages run inline bootstrap scripts, its server-sent scripts
# (rx.call_script: toasts after an await, downloads, focus) are evaluated with
# eval, and Radix/Emotion inject styles at run time, hence 'unsafe-inline' and
# 'unsafe-eval'; everything else is same-origin only (no plugins, no framing, no
# foreign form targets or connections). QR codes and previews use data:/blob:.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    # 'self' covers the app's own ws:/wss: websocket (CSP 3); nothing else.
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HSTS = "max-age=31536000; includeSubDomains"
# The trusted-device cookie of the login lockout (set with the session cookie).
DEVICE_COOKIE = devices.DEVICE_COOKIE


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return ""


def client_ip(scope: Scope) -> str:
    """The client address as the server saw it (a proxy sets it via uvicorn's options)."""
    client = scope.get("client")
    return client[0] if client else ""


def is_https(scope: Scope) -> bool:
    """Whether the browser talks HTTPS to us (directly or through the TLS proxy)."""
    forwarded = _header(scope, b"x-forwarded-proto").split(",")[0].strip().lower()
    return scope.get("scheme") in ("https", "wss") or forwarded == "https"


async def _json_error(send: Send, status: int, code: str, message: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestContext:
    """Request id in and out, and one structured access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = logs.request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            log.exception("unhandled error")
            raise
        finally:
            log.info("%s %s %s", scope.get("method", "WS"), scope.get("path", ""), status,
                     extra={"method": scope.get("method", "WS"), "path": scope.get("path", ""),
                            "status": status, "client": client_ip(scope),
                            "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
            logs.request_id_var.reset(token)


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"content-security-policy", self.csp.encode()),
        ]
        if is_https(scope):
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class BodyRule:
    """Largest request body accepted on paths starting with ``prefix``."""

    prefix: str
    max_bytes: int


MB = 1024 * 1024
# Most specific first. Uploads get room for the multipart envelope.
BODY_RULES = (
    BodyRule("/_upload", 12 * MB),  # Reflex uploads: CSV imports, logos, proof photos
    BodyRule("/api/customers/import", 12 * MB),
    BodyRule("/api/settings/upload-logo", 3 * MB),
    BodyRule("/api/invoices/", 12 * MB),  # payment-proof photos
    BodyRule("/api/", 1 * MB),
)
TOO_LARGE = "Ukuran data terlalu besar."


class BodyLimit:
    """413 for bodies over the path's limit (declared length or counted while reading)."""

    def __init__(self, app: ASGIApp, rules: tuple[BodyRule, ...] = BODY_RULES,
                 default: int = 1 * MB) -> None:
        self.app = app
        self.rules = rules
        self.default = default

    def limit_for(self, path: str) -> int:
        """The byte limit of ``path``."""
        return next((r.max_bytes for r in self.rules if path.startswith(r.prefix)),
                    self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("path", ""))
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            return await _json_error(send, 413, "PayloadTooLarge", TOO_LARGE)
        received = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _json_error(send, 413, "PayloadTooLarge", TOO_LARGE)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class RateRule:
    """``limit`` requests per ``window_s`` seconds per address on matching API paths."""

    name: str
    prefix: str
    limit: int
    window_s: int
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


# The first matching rule applies, then the general one. Bucket names are the
# middleware's own ("api-…"), apart from "login", which the web login shares on
# purpose; routes that count themselves (the receipt pages) keep their buckets.
RATE_RULES = (
    RateRule("login", "/api/auth/login", ratelimit.LOGIN_PER_MINUTE, 60, frozenset({"POST"})),
    RateRule("api-refresh", "/api/auth/refresh", 30, 60, frozenset({"POST"})),
    RateRule("api-receipt", "/api/receipt", 60, 60),
    RateRule("api-import", "/api/customers/import", 10, 300, frozenset({"POST"})),
    RateRule("api-bulk-send", "/api/wa/send-bulk", 5, 300, frozenset({"POST"})),
)
GENERAL = RateRule("api", "/api/", 300, 60)


def _scaled(rule: RateRule, factor: float) -> RateRule:
    return RateRule(rule.name, rule.prefix, max(1, round(rule.limit * factor)), rule.window_s,
                    rule.methods)


class RateLimit:
    """Per-address limits on ``/api`` (Redis-backed; in-process without Redis).

    Without explicit rules the defaults apply, scaled by ``RATE_LIMIT_FACTOR``.
    """

    def __init__(self, app: ASGIApp, rules: tuple[RateRule, ...] | None = None,
                 general: RateRule | None = None) -> None:
        self.app = app
        factor = get_settings().rate_limit_factor
        self.rules = rules if rules is not None else tuple(_scaled(r, factor)
                                                          for r in RATE_RULES)
        self.general = general or _scaled(GENERAL, factor)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path == "/api/health":
            return await self.app(scope, receive, send)
        method = scope.get("method", "GET")
        ip = client_ip(scope) or "unknown"
        applicable = [r for r in self.rules if path.startswith(r.prefix) and method in r.methods]
        for rule in (*applicable[:1], self.general):
            # A Redis round trip: off the event loop, which also serves the websocket.
            decision = await anyio.to_thread.run_sync(
                ratelimit.hit, rule.name, ip, rule.limit, rule.window_s)
            if not decision.allowed:
                return await _json_error(
                    send, 429, "RateLimited",
                    "Terlalu banyak permintaan. Coba lagi sebentar lagi.",
                    [(b"retry-after", str(decision.retry_after).encode())])
        await self.app(scope, receive, send)


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def allowed_origins() -> frozenset[str]:
    """Origins from ``CORS_ORIGIN`` (comma-separated) and ``PUBLIC_URL``."""
    settings = get_settings()
    found = {_origin_of(u) for u in settings.cors_origin.split(",")}
    found.add(_origin_of(settings.public_url))
    return frozenset(found - {""})


def origin_allowed(scope: Scope, origin: str, origins: frozenset[str] | None = None) -> bool:
    """Whether ``origin`` is absent, the server itself (as addressed) or configured."""
    if not origin or origin.lower() in (origins if origins is not None else allowed_origins()):
        return True
    host = _header(scope, b"host").lower()
    scheme = "https" if is_https(scope) else "http"
    return origin.lower() in (f"{scheme}://{host}", f"http://{host}", f"https://{host}")


class StrictCors:
    """Cross-origin access only for configured origins; same-origin always works.

    Reflex answers every origin (``cors_allowed_origins`` defaults to ``*``) and a
    fixed list would also have to guess the address users type (IP, hostname).
    This wraps the whole app, outside Reflex's own CORS layer: a request whose
    ``Origin`` is neither the server itself nor configured gets its preflight
    refused, its websocket closed, and every ``Access-Control-*`` header removed
    from its response, so the browser does not let that page read it.
    """

    def __init__(self, app: ASGIApp, origins: frozenset[str] | None = None) -> None:
        self.app = app
        self.origins = origins if origins is not None else allowed_origins()

    def _allowed(self, scope: Scope, origin: str) -> bool:
        return origin_allowed(scope, origin, self.origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        origin = _header(scope, b"origin")
        if self._allowed(scope, origin):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        if scope.get("method") == "OPTIONS" and _header(scope, b"access-control-request-method"):
            return await _json_error(send, 403, "Forbidden",
                                     "Asal permintaan (origin) tidak diizinkan.")

        async def without_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if not k.lower().startswith(b"access-control-")]
            await send(message)

        await self.app(scope, receive, without_cors)


def websocket_cookie(header: str) -> str:
    """The Cookie header the websocket (and so the page state) gets instead of the browser's.

    The raw session token never reaches Reflex: the state manager pickles the
    connection's headers to disk or Redis. The session cookie becomes its
    server-side reference (its SHA-256, :data:`web_login.REFERENCE_COOKIE`); a
    reference the browser sent itself is dropped, so only a real cookie makes one.
    The signed device cookie (trusted-device logins) passes through unchanged;
    every other cookie is left out.
    """
    cookies = cookie_header.parse(header)
    kept = []
    raw = cookies.get(auth.SESSION_COOKIE) or cookies.get(auth.REMEMBER_COOKIE)
    if raw:
        kept.append(f"{web_login.REFERENCE_COOKIE}={web_login.reference(raw)}")
    if device := cookies.get(DEVICE_COOKIE):
        kept.append(f"{DEVICE_COOKIE}={device}")
    return "; ".join(kept)


class SessionReference:
    """Rewrites the websocket handshake's cookies (see :func:`websocket_cookie`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] == "websocket":
            header = "; ".join(v.decode("latin-1") for k, v in scope.get("headers") or []
                               if k == b"cookie")
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"cookie"]
            if cookie := websocket_cookie(header):
                headers.append((b"cookie", cookie.encode("latin-1")))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def install(app) -> None:
    """Wrap a Starlette/FastAPI app with every middleware (outermost first on the wire)."""
    # add_middleware prepends: the last added runs first.
    app.add_middleware(SessionReference)
    app.add_middleware(RateLimit)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)
