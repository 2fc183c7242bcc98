"""``/api/session/*``: the web session cookie is set and cleared over HTTP, HttpOnly."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fibernode.api.app import create_api
from fibernode.services import auth, web_login
from fibernode.services.context import Actor
from tests.factories import MITRA_PASSWORD

ANON = Actor.anonymous("10.4.4.4", "pytest")
ORIGIN = {"Origin": "http://testserver"}


def _client() -> TestClient:
    return TestClient(create_api(), follow_redirects=False)


def _set_cookie(response) -> str:
    return "\n".join(v for k, v in response.headers.multi_items() if k == "set-cookie")


def test_claim_sets_an_httponly_lax_cookie_and_continues_in_the_app(world):
    code = web_login.begin(ANON, "mitra1", MITRA_PASSWORD).code
    response = _client().post("/api/session/claim", data={"code": code, "next": "/customers"},
                              headers=ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/customers"
    cookie = _set_cookie(response)
    assert f"{auth.SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    # Plain HTTP here; behind the TLS proxy the cookie is Secure.
    assert "Secure" not in cookie.split(auth.REMEMBER_COOKIE)[0]
    # Without "Ingat saya" it ends with the browser session.
    assert "Max-Age" not in cookie.split("\n")[0]
    token = response.cookies.get(auth.SESSION_COOKIE)
    assert auth.resolve_session(token) is not None


def test_claim_over_https_is_secure_and_remembered_logins_persist(world):
    code = web_login.begin(ANON, "mitra1", MITRA_PASSWORD, remember=True).code
    response = _client().post("/api/session/claim", data={"code": code},
                              headers={**ORIGIN, "X-Forwarded-Proto": "https",
                                       "Origin": "https://testserver"})
    first = _set_cookie(response).split("\n")[0]
    assert "Secure" in first and "Max-Age=" in first and "HttpOnly" in first


def test_a_used_or_unknown_code_goes_back_to_login(world):
    code = web_login.begin(ANON, "mitra1", MITRA_PASSWORD).code
    client = _client()
    assert client.post("/api/session/claim", data={"code": code}, headers=ORIGIN).status_code == 303
    again = client.post("/api/session/claim", data={"code": code}, headers=ORIGIN)
    assert again.headers["location"].startswith("/login")
    assert auth.SESSION_COOKIE not in _set_cookie(again)


def test_claim_never_redirects_off_the_app(world):
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"):
        code = web_login.begin(ANON, "mitra1", MITRA_PASSWORD).code
        response = _client().post("/api/session/claim", data={"code": code, "next": target},
                                  headers=ORIGIN)
        assert response.headers["location"] == "/"


def test_a_foreign_page_cannot_log_a_browser_in_or_out(world):
    code = web_login.begin(ANON, "mitra1", MITRA_PASSWORD).code
    for origin in ("http://evil.example", "null", "http://testserver:8080"):
        response = _client().post("/api/session/claim", data={"code": code},
                                  headers={"Origin": origin})
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "Asal permintaan (origin) tidak diizinkan."
        assert _client().post("/api/session/end", headers={"Origin": origin}).status_code == 403
    # The refused attempts did not burn the code.
    assert _client().post("/api/session/claim", data={"code": code},
                          headers=ORIGIN).status_code == 303


def test_end_revokes_the_session_and_clears_the_cookie(world):
    token = auth.login(ANON, "mitra1", MITRA_PASSWORD).token
    client = _client()
    client.cookies.set(auth.SESSION_COOKIE, token)
    response = client.post("/api/session/end", headers=ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert f'{auth.SESSION_COOKIE}=""' in _set_cookie(response)
    assert auth.resolve_session(token) is None


def test_cookie_authenticated_changes_need_the_apps_own_origin(world):
    """A page on another port of the same host gets the cookie too (same site): no CSRF."""
    token = auth.login(ANON, "mitra1", MITRA_PASSWORD).token
    client = TestClient(create_api())
    client.cookies.set(auth.SESSION_COOKIE, token)
    customer = world.customers_of(world.mitra_a)[0]
    body = {"phone": "081299990000"}
    for headers in ({"Origin": "http://testserver:9999"}, {"Origin": "null"}, {}):
        refused = client.patch(f"/api/customers/{customer.id}", json=body, headers=headers)
        assert refused.status_code == 403, headers
    # Reads stay possible (downloads from the app's pages send no Origin).
    assert client.get(f"/api/customers/{customer.id}").status_code == 200
    ok = client.patch(f"/api/customers/{customer.id}", json=body, headers=ORIGIN)
    assert ok.status_code == 200, ok.text


def test_claim_stores_the_trusted_device_cookie_httponly(world):
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    response = _client().post("/api/session/claim", headers=ORIGIN, data={
        "code": pending.code, "device": pending.device_token})
    device = [c for c in _set_cookie(response).split("\n") if c.startswith("fn_device=")]
    assert device and "HttpOnly" in device[0] and "Max-Age=" in device[0]
