"""The app exactly as production serves it (``uvicorn --factory``), seen from a foreign origin.

Issue 16 finding 1: Reflex wraps the backend in its own allow-every-origin CORS
layer, outside the API's middlewares; ``OPTIONS``/``GET`` with ``Origin:
http://evil.example`` (or ``null``) on ``/api/...`` and ``/_upload`` answered
``access-control-allow-origin: <that origin>`` with credentials. Finding 4: the
session cookie is set HttpOnly from an HTTP response, and the CSP allows
connections to the app itself only.
"""

from __future__ import annotations

import httpx
import pytest

from fibernode.services import auth, web_login
from fibernode.services.context import Actor
from tests.factories import MITRA_PASSWORD
from tests.ws.client import ConnectionClosed, Tab

FOREIGN = ("http://evil.example", "null", "http://127.0.0.1:1")
PATHS = ("/api/customers", "/api/auth/me", "/_upload", "/ping", "/login", "/api/health")


@pytest.mark.parametrize("origin", FOREIGN)
@pytest.mark.parametrize("path", PATHS)
def test_a_foreign_preflight_is_refused_on_every_path(ws_server, path, origin):
    response = httpx.options(f"{ws_server}{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 403
    assert not [k for k in response.headers if k.lower().startswith("access-control-")]


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_page_cannot_read_a_mitras_data_with_the_cookie(ws_server, origin):
    token = auth.login(Actor.anonymous("127.0.0.1", "pytest"), "mitra1", MITRA_PASSWORD).token
    response = httpx.get(f"{ws_server}/api/customers", headers={
        "Origin": origin, "Cookie": f"{auth.SESSION_COOKIE}={token}"})
    # The browser only lets the page read it with these headers; they are never sent.
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    # And a change in the mitra's name is refused outright (no CSRF from a sibling port).
    changed = httpx.patch(f"{ws_server}/api/auth/me", json={"bank_name": "Bank Penyerang"},
                          headers={"Origin": origin,
                                   "Cookie": f"{auth.SESSION_COOKIE}={token}"})
    assert changed.status_code == 403


def test_the_apps_own_origin_still_works(ws_server):
    token = auth.login(Actor.anonymous("127.0.0.1", "pytest"), "mitra1", MITRA_PASSWORD).token
    response = httpx.get(f"{ws_server}/api/customers", headers={
        "Origin": ws_server, "Cookie": f"{auth.SESSION_COOKIE}={token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_page_cannot_open_the_websocket(ws_server, origin):
    tab = Tab(ws_server, origin=origin)
    with pytest.raises(ConnectionClosed):
        tab.connect("/login")
    tab.close()


def test_the_session_cookie_comes_httponly_and_the_csp_connects_home_only(ws_server):
    code = web_login.begin(Actor.anonymous("127.0.0.1", "pytest"), "mitra1", MITRA_PASSWORD).code
    response = httpx.post(f"{ws_server}/api/session/claim", data={"code": code},
                          headers={"Origin": ws_server})
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(f"{auth.SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = httpx.get(f"{ws_server}/login/", follow_redirects=True)
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self';" in csp + ";"
    assert "ws:" not in csp and "wss:" not in csp
