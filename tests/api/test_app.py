"""The FastAPI app mounted under /api: health and public branding."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fibernode import __version__
from fibernode.api import create_api
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor


@pytest.fixture
def client(world):
    return TestClient(create_api())


def test_health_reports_database_and_embedded_broker(client):
    res = client.get("/api/health")
    assert res.status_code == 200
    body = res.json()
    # No worker or beat has run in this test: up, but degraded (tests/services/test_health.py).
    assert body["status"] == "degraded"
    assert {"worker", "beat"} <= set(body["problems"])
    assert body["database"] == "ok"
    assert body["broker"] == "embedded"  # tests run without REDIS_URL
    assert body["version"] == __version__
    assert body["worker_heartbeat_age_s"] is None


def test_health_shows_worker_heartbeat_age(client):
    settings_service.touch_heartbeat("worker_heartbeat_at")
    age = client.get("/api/health").json()["worker_heartbeat_age_s"]
    assert age is not None and 0 <= age < 60


def test_branding_is_public_and_falls_back_to_defaults(client):
    settings_service.record_app_version(Actor.system("startup"), "9.8.7")
    res = client.get("/api/settings/branding")
    assert res.status_code == 200
    body = res.json()
    assert body["app_name"] == "FiberNode Internet"
    assert body["logo_url"] == "/logo.svg"
    assert body["splash_logo_url"] == "/logo.svg"
    assert body["app_version"] == "9.8.7"


def test_openapi_is_served_under_api(client):
    res = client.get("/api/openapi.json")
    assert res.status_code == 200
    assert "/api/health" in res.json()["paths"]
