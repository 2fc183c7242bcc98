"""Who is calling: the acting user behind an API request, and the error shape."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fibernode.services import api_tokens, auth, ratelimit
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    LockedOut,
    LoginFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceError,
    TwoFactorRequired,
    ValidationFailed,
)

STATUS = {
    AuthenticationRequired: 401,
    LoginFailed: 401,
    TwoFactorRequired: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationFailed: 422,
    LockedOut: 429,
    RateLimited: 429,
}


def client_of(request: Request) -> tuple[str, str]:
    """The caller's IP address and user agent."""
    ip = request.client.host if request.client else ""
    return ip, request.headers.get("user-agent", "")


def request_actor(request: Request) -> Actor:
    """The user behind the request's bearer token or web-session cookie, or anonymous.

    API clients send ``Authorization: Bearer <access JWT>``. Downloads started
    from the UI carry the same cookie as the app itself, so they are checked
    against the same server-side session. A bearer token that is not valid is
    never silently replaced by the cookie. Services decide what an anonymous
    actor may do (usually nothing).
    """
    ip, ua = client_of(request)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        bearer = api_tokens.resolve_access_token(credentials.strip(), ip, ua)
        return _limited(bearer) if bearer is not None else Actor.anonymous(ip, ua)
    token = (request.cookies.get(auth.SESSION_COOKIE)
             or request.cookies.get(auth.REMEMBER_COOKIE))
    if token and request.method not in SAFE_METHODS and not _from_own_pages(request):
        # The browser attaches the cookie to requests from any page of the same
        # site (another port of the host too): a change needs the app's own origin.
        raise PermissionDenied("Asal permintaan (origin) tidak diizinkan.")
    actor = auth.resolve_session(token, ip, ua)
    return _limited(actor) if actor is not None else Actor.anonymous(ip, ua)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _from_own_pages(request: Request) -> bool:
    from fibernode.api.security import origin_allowed

    origin = request.headers.get("origin") or ""
    if not origin and (referer := request.headers.get("referer")):
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return bool(origin) and origin_allowed(request.scope, origin)


def _limited(actor: Actor) -> Actor:
    """Count the request against the user's own limit (addresses are limited upstream).

    Raises:
        RateLimited: the user sent too many requests this minute.
    """
    ratelimit.count_user_request(actor)
    return actor


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    """The one JSON shape of every refusal: ``{"error": {code, message, details}}``."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(exc: ServiceError) -> JSONResponse:
    """A service refusal as its HTTP status and the one error shape."""
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    body = error_body(type(exc).__name__, exc.message, getattr(exc, "details", None))
    headers = {"Retry-After": str(exc.minutes * 60)} if isinstance(exc, LockedOut) else {}
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, status_code=status, headers=headers)


def request_problems(exc: RequestValidationError) -> dict[str, str]:
    """FastAPI's parameter errors as ``{field: Indonesian message}``."""
    problems: dict[str, str] = {}
    for err in exc.errors():
        name = str(err.get("loc", ["", "?"])[-1])
        problems.setdefault(name, f"Nilai '{name}' tidak valid.")
    return problems


SEPARATE_CHANGES = "Kirim perubahan {parts} dalam permintaan terpisah."


def single_change(given: dict, parts: dict[str, set[str]]) -> None:
    """Refuse a PATCH body that mixes changes made by different use cases.

    Each use case is its own transaction; running two for one request could apply
    the first and refuse the second. One kind of change per request keeps every
    request all-or-nothing.

    Args:
        given: The fields the client sent.
        parts: Label of each kind of change -> its fields.

    Raises:
        ValidationFailed: more than one kind of change was sent.
    """
    touched = [label for label, fields in parts.items() if fields & given.keys()]
    if len(touched) > 1:
        message = SEPARATE_CHANGES.format(parts=" dan ".join(touched))
        raise ValidationFailed({name: message for label in touched
                                for name in sorted(parts[label] & given.keys())}, message)
