"""The web session cookie, set and cleared over plain HTTP (``/api/session/*``).

The login page runs over the websocket, which cannot set an ``HttpOnly``
cookie. After the credentials are checked it posts the one-time claim code here
(a top-level form POST, so the browser follows the redirect as a fresh page
load whose websocket then carries the new cookie); see
:mod:`fibernode.services.web_login`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from fibernode import clock
from fibernode.api import security
from fibernode.api.deps import client_of, error_body
from fibernode.services import auth, devices, web_login
from fibernode.services.context import Actor

router = APIRouter(prefix="/api/session", tags=["session"], include_in_schema=False)

LOGIN_PATH = "/login"
FOREIGN_ORIGIN = "Asal permintaan (origin) tidak diizinkan."


def safe_next(target: str | None) -> str:
    """An in-app path to continue to; anything else (other sites included) becomes ``/``."""
    target = (target or "/").strip()
    if not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 500:
        return "/"
    return target


def _same_origin(request: Request) -> bool:
    """Whether a cookie-changing POST comes from the app's own pages (login CSRF)."""
    origin = request.headers.get("origin", "")
    return security.origin_allowed(request.scope, origin)


def set_session_cookie(response: Response, request: Request, token: str,
                       expires_at: datetime | None) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS.

    ``expires_at`` makes it persistent ("Ingat saya"); without it the cookie
    ends with the browser session.
    """
    max_age = None
    if expires_at is not None:
        max_age = max(1, int((expires_at - clock.now()).total_seconds()))
    response.set_cookie(auth.SESSION_COOKIE, token, max_age=max_age, path="/",
                        httponly=True, samesite="lax",
                        secure=security.is_https(request.scope))
    # The cookie of "Ingat saya" before sessions moved to one HttpOnly cookie.
    response.delete_cookie(auth.REMEMBER_COOKIE, path="/")


def clear_session_cookie(response: Response) -> None:
    """Forget the session cookies in this browser."""
    for name in (auth.SESSION_COOKIE, auth.REMEMBER_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax")


def _refused() -> Response:
    return JSONResponse(error_body("Forbidden", FOREIGN_ORIGIN), status_code=403)


@router.post("/claim")
def claim(request: Request, code: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=500)] = "/",
          device: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Swap the login's one-time code for the session cookie and continue to ``next``.

    ``device`` is the trusted-device token the login issued (lockout protection,
    :mod:`fibernode.services.devices`); it is stored HttpOnly like the session.
    """
    if not _same_origin(request):
        return _refused()
    ip, ua = client_of(request)
    claimed = web_login.claim(Actor.anonymous(ip, ua), code)
    if claimed is None:
        return RedirectResponse(f"{LOGIN_PATH}?kedaluwarsa=1", status_code=303)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, claimed.token,
                       claimed.expires_at if claimed.remember else None)
    if device:
        # Signed for one user; a forged or foreign one only counts as an unknown device.
        response.set_cookie(devices.DEVICE_COOKIE, device, path="/", httponly=True,
                            samesite="lax", secure=security.is_https(request.scope),
                            max_age=int(devices.device_lifetime().total_seconds()))
    return response


@router.post("/end")
def end(request: Request) -> Response:
    """Log this browser out: revoke its session and clear the cookie."""
    if not _same_origin(request):
        return _refused()
    ip, ua = client_of(request)
    raw = (request.cookies.get(auth.SESSION_COOKIE)
           or request.cookies.get(auth.REMEMBER_COOKIE))
    if raw:
        web_login.logout(Actor.anonymous(ip, ua), web_login.reference(raw))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response)
    return response
