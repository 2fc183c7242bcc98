"""HTTP hardening: headers, request ids and JSON logs, body limits, Redis rate limits."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from fibernode import logs
from fibernode.api import security
from fibernode.config import reset_settings
from fibernode.services import ratelimit
from tests.conftest import REDIS_URL


def small_app(**rate) -> FastAPI:
    app = FastAPI()

    @app.get("/api/ping-me")
    def ping() -> dict:
        logging.getLogger("fibernode.test").info("handled", extra={"password": "rahasia"})
        return {"ok": True}

    @app.post("/api/echo")
    async def echo(request: Request) -> dict:
        return {"size": len(await request.body())}

    @app.post("/api/customers/import")
    async def upload(request: Request) -> dict:
        return {"size": len(await request.body())}

    @app.post("/api/auth/login")
    def login() -> dict:
        return {"ok": True}

    app.add_middleware(security.RateLimit, **rate)
    app.add_middleware(security.BodyLimit)
    app.add_middleware(security.SecurityHeaders)
    app.add_middleware(security.RequestContext)
    return app


@pytest.fixture(autouse=True)
def fresh_counters():
    ratelimit.reset_memory()
    yield
    ratelimit.reset_memory()


def test_security_headers_on_every_response():
    client = TestClient(small_app())
    response = client.get("/api/ping-me")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "strict-transport-security" not in response.headers  # plain http
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"
    https = client.get("/api/ping-me", headers={"X-Forwarded-Proto": "https"})
    assert https.headers["strict-transport-security"].startswith("max-age=31536000")


def test_request_id_is_echoed_or_created_and_logged_as_json():
    stream = io.StringIO()
    logs.configure("INFO", stream)
    try:
        client = TestClient(small_app())
        given = client.get("/api/ping-me", headers={"X-Request-ID": "abc12345-req"})
        made = client.get("/api/ping-me", headers={"X-Request-ID": "bad id!"})
    finally:
        logs.configure("WARNING")
    assert given.headers["x-request-id"] == "abc12345-req"
    assert len(made.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    handled = [entry for entry in lines if entry["message"] == "handled"]
    access = [entry for entry in lines if entry["logger"] == "fibernode.http"]
    assert handled[0]["request_id"] == "abc12345-req"
    assert handled[0]["password"] == logs.REDACTED
    assert access[0]["status"] == 200 and access[0]["path"] == "/api/ping-me"
    assert access[0]["request_id"] == "abc12345-req" and "duration_ms" in access[0]


def test_secrets_never_reach_the_log():
    assert logs.redact({"Authorization": "Bearer abc", "nested": {"refresh_token": "x"},
                        "name": "Budi"}) == {
        "Authorization": logs.REDACTED, "nested": {"refresh_token": logs.REDACTED},
        "name": "Budi"}
    assert "eyJhbGciOiJIUzI1NiJ9" not in logs.redact(
        "header was Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig")


def test_bodies_over_the_limit_get_413_without_reaching_the_route():
    client = TestClient(small_app())
    assert client.post("/api/echo", content=b"x" * 1000).json() == {"size": 1000}
    too_big = client.post("/api/echo", content=b"x" * (security.MB + 1))
    assert too_big.status_code == 413
    assert too_big.json()["error"]["message"] == "Ukuran data terlalu besar."

    def chunks():  # no Content-Length: counted while reading
        for _ in range(3):
            yield b"x" * (security.MB // 2)

    assert client.post("/api/echo", content=chunks()).status_code == 413
    # Uploads have room for a real CSV.
    assert client.post("/api/customers/import",
                       content=b"x" * (5 * security.MB)).status_code == 200


def test_rate_limit_on_redis_returns_429_then_recovers(monkeypatch):
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    reset_settings()
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        client = TestClient(small_app(
            rules=(security.RateRule("login", "/api/auth/login", 3, 2, frozenset({"POST"})),),
            general=security.RateRule("api", "/api/", 1000, 60)))
        codes = [client.post("/api/auth/login").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        refused = client.post("/api/auth/login")
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.json()["error"]["code"] == "RateLimited"
        # Counted in Redis (shared by every web worker), not in this process.
        assert any(b"login" in key for key in redis.Redis.from_url(REDIS_URL).keys("*"))
        # Other paths only count against the general limit.
        assert client.get("/api/ping-me").status_code == 200
        time.sleep(2.2)
        assert client.post("/api/auth/login").status_code == 200
    finally:
        monkeypatch.delenv("REDIS_URL")
        reset_settings()


def test_default_limits_scale_with_the_factor(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_FACTOR", "2")
    reset_settings()
    try:
        limiter = security.RateLimit(small_app())
        assert limiter.general.limit == security.GENERAL.limit * 2
        assert limiter.rules[0].limit == security.RATE_RULES[0].limit * 2
    finally:
        monkeypatch.undo()
        reset_settings()


def cors_app(origins=frozenset({"https://admin.example.id"})):
    from starlette.middleware.cors import CORSMiddleware

    inner = FastAPI()

    @inner.get("/api/ping-me")
    def ping() -> dict:
        return {"ok": True}

    # Like Reflex's own layer: every origin allowed, with credentials.
    inner.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True,
                         allow_methods=["*"], allow_headers=["*"])
    return security.StrictCors(inner, origins)


def test_strict_cors_allows_configured_and_same_origin_only():
    client = TestClient(cors_app(), base_url="http://fibernode.local")
    ok = client.get("/api/ping-me", headers={"Origin": "https://admin.example.id"})
    assert ok.headers["access-control-allow-origin"] == "https://admin.example.id"
    same = client.get("/api/ping-me", headers={"Origin": "http://fibernode.local"})
    assert same.status_code == 200
    evil = client.get("/api/ping-me", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 200  # the server answers, the browser may not read it
    assert not any(k.lower().startswith("access-control-") for k in evil.headers)
    preflight = client.options("/api/ping-me", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    good_preflight = client.options("/api/ping-me", headers={
        "Origin": "https://admin.example.id", "Access-Control-Request-Method": "POST"})
    assert good_preflight.status_code == 200


def test_configured_origins_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CORS_ORIGIN", "https://a.example.id, https://b.example.id/")
    monkeypatch.setenv("PUBLIC_URL", "https://tagihan.example.id/app")
    reset_settings()
    try:
        assert security.allowed_origins() == {"https://a.example.id", "https://b.example.id",
                                              "https://tagihan.example.id"}
    finally:
        reset_settings()


def test_the_real_app_sends_the_headers_on_api_routes(world):
    from fibernode.api import create_api

    response = TestClient(create_api()).get("/api/settings/branding")
    assert response.status_code == 200
    assert "content-security-policy" in response.headers and "x-request-id" in response.headers


def test_each_user_has_a_limit_of_their_own(world, monkeypatch):
    from fibernode.api import create_api
    from fibernode.services import api_tokens
    from fibernode.services.context import Actor
    from tests.factories import MITRA_PASSWORD

    monkeypatch.setenv("RATE_LIMIT_FACTOR", "1")
    monkeypatch.setattr(ratelimit, "USER_PER_MINUTE", 3)
    reset_settings()
    try:
        client = TestClient(create_api())
        tokens = [api_tokens.login(Actor.anonymous("10.6.0.1", "t"), name, MITRA_PASSWORD)
                  .access_token for name in ("mitra1", "mitra2")]
        first = [client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens[0]}"})
                 .status_code for _ in range(4)]
        assert first == [200, 200, 200, 429]
        # Another user from the same address is not affected.
        other = client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens[1]}"})
        assert other.status_code == 200
    finally:
        monkeypatch.undo()
        reset_settings()


def test_the_websocket_gets_the_session_reference_never_the_token():
    from fibernode.services import auth, web_login

    header = (f"other=1; {auth.SESSION_COOKIE}=raw-token-123; "
              f"{web_login.REFERENCE_COOKIE}=forged; {security.DEVICE_COOKIE}=dev.sig")
    rewritten = security.websocket_cookie(header)
    assert "raw-token-123" not in rewritten and "forged" not in rewritten
    assert rewritten == (f"{web_login.REFERENCE_COOKIE}={web_login.reference('raw-token-123')}; "
                         f"{security.DEVICE_COOKIE}=dev.sig")
    # A reference the browser made up itself is never passed on.
    assert security.websocket_cookie(f"{web_login.REFERENCE_COOKIE}=abc") == ""


def test_session_reference_rewrites_only_websocket_handshakes():
    import asyncio

    seen: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)

    middleware = security.SessionReference(app)
    cookie = (b"cookie", b"fn_session=tok; x=1")
    asyncio.run(middleware({"type": "websocket", "headers": [cookie]}, None, None))
    asyncio.run(middleware({"type": "http", "headers": [cookie]}, None, None))
    ws, http = seen
    assert dict(ws["headers"])[b"cookie"].startswith(b"fn_sref=")
    assert b"tok" not in dict(ws["headers"])[b"cookie"]
    assert dict(http["headers"])[b"cookie"] == b"fn_session=tok; x=1"


def test_csp_allows_connections_to_the_app_itself_only():
    connect = next(d for d in security.CSP.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self'"
