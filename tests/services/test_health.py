"""/api/health and the per-process healthchecks against real services.

Redis on 127.0.0.1:6379, a closed port for a dead broker / gateway, and a real
HTTP server thread standing in for the wa-gateway's ``/health``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fibernode import clock
from fibernode import db as fn_db
from fibernode.api import create_api
from fibernode.cli import main as cli_main
from fibernode.config import reset_settings
from fibernode.db import create_engine_for, new_session
from fibernode.models import Setting
from fibernode.services import health
from fibernode.services.settings import touch_heartbeat
from tests.conftest import REDIS_URL


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Set environment variables for fibernode.config, re-read on every call."""
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("WA_MODE", "outbox")

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings()

    reset_settings()
    yield set_env
    reset_settings()


def set_value(key: str, value: str) -> None:
    with new_session() as s:
        row = s.exec(select(Setting).where(Setting.key == key)).first()
        if row is None:
            s.add(Setting(key=key, value=value))
        else:
            row.value = value
        s.commit()


def all_alive() -> None:
    touch_heartbeat("worker_heartbeat_at")
    touch_heartbeat("beat_last_run_at")


class _Gateway(BaseHTTPRequestHandler):
    status = 200
    body: dict = {"ok": True, "sessions": 0, "test_mode": True}

    def do_GET(self):  # noqa: N802 - http.server's naming
        payload = json.dumps(self.body).encode()
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args):
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_everything_alive_is_ok(world, env):
    all_alive()
    report = health.check()
    assert (report.database, report.broker, report.whatsapp) == ("ok", "embedded", "outbox")
    assert report.status == "ok" and report.problems == []
    assert 0 <= report.worker_heartbeat_age_s < 60
    assert 0 <= report.beat_last_run_age_s < 60
    assert report.backup_status == "never"  # a new install is not degraded for that


def test_stale_or_missing_heartbeats_degrade(world, env):
    report = health.check()
    assert report.status == "degraded"
    assert {"worker", "beat"} <= set(report.problems)
    old = (clock.now() - timedelta(minutes=4)).isoformat()
    set_value("worker_heartbeat_at", old)
    touch_heartbeat("beat_last_run_at")
    report = health.check()
    assert report.problems == ["worker"]
    assert 230 < report.worker_heartbeat_age_s < 300


def test_backup_age_and_status(world, env):
    all_alive()
    set_value("backup_last_run_at", (clock.now() - timedelta(hours=2)).isoformat())
    set_value("backup_last_status", "ok")
    set_value("backup_last_file", "fibernode-20261121-020000.dump")
    report = health.check()
    assert report.status == "ok"
    assert report.as_dict()["backup"]["file"] == "fibernode-20261121-020000.dump"
    assert 7000 < report.backup_age_s < 7300
    set_value("backup_last_run_at", (clock.now() - timedelta(hours=27)).isoformat())
    assert health.check().problems == ["backup"]
    set_value("backup_last_run_at", clock.now().isoformat())
    set_value("backup_last_status", "error")
    report = health.check()
    assert (report.status, report.problems, report.backup_status) == (
        "degraded", ["backup"], "error")


def test_broker_on_real_redis_and_on_a_closed_port(world, env):
    all_alive()
    env(REDIS_URL=REDIS_URL)
    report = health.check()
    assert report.broker == "ok" and report.status == "ok"
    env(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    started = time.monotonic()
    report = health.check()
    assert time.monotonic() - started < 5
    assert report.broker == "error" and "broker" in report.problems
    assert report.errors["broker"]
    assert report.status == "degraded"


def test_whatsapp_gateway_status(world, env, gateway):
    all_alive()
    env(WA_MODE="neonize", WA_GATEWAY_URL=gateway)
    report = health.check()
    assert (report.wa_mode, report.whatsapp, report.status) == ("neonize", "ok", "ok")

    _Gateway.status = 503
    try:
        report = health.check()
    finally:
        _Gateway.status = 200
    assert report.whatsapp == "error" and report.problems == ["whatsapp"]

    env(WA_GATEWAY_URL=f"http://127.0.0.1:{closed_port()}")
    report = health.check()
    assert report.whatsapp == "error" and report.status == "degraded"
    assert report.errors["whatsapp"] == "ConnectError"

    env(WA_MODE="cloud")
    report = health.check()
    assert (report.whatsapp, report.status) == ("not_configured", "ok")


def test_outbox_is_ok_for_a_trial_and_degraded_in_production(world, env):
    all_alive()
    report = health.check()
    assert (report.whatsapp, report.status, report.problems) == ("outbox", "ok", [])

    env(APP_ENV="production")
    report = health.check()
    assert (report.wa_mode, report.whatsapp, report.status) == ("outbox", "outbox", "degraded")
    assert report.problems == ["whatsapp"]
    assert "tidak dikirim" in report.errors["whatsapp"]
    body = TestClient(create_api()).get("/api/health").json()
    assert (body["status"], body["problems"]) == ("degraded", ["whatsapp"])


def test_api_health_200_with_the_full_shape(world, env):
    all_alive()
    res = TestClient(create_api()).get("/api/health")
    assert res.status_code == 200
    body = res.json()
    assert set(body) == {"status", "version", "database", "broker", "worker_heartbeat_age_s",
                         "beat_last_run_age_s", "backup", "whatsapp", "problems", "errors"}
    assert body["status"] == "ok"
    assert body["backup"] == {"status": "never", "age_s": None, "file": None}
    assert body["whatsapp"] == {"mode": "outbox", "status": "outbox"}


def test_api_health_503_when_the_database_is_down(world, env):
    working = fn_db.get_engine()
    dead = create_engine_for(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/x")
    fn_db.set_engine(dead)
    try:
        res = TestClient(create_api()).get("/api/health")
    finally:
        fn_db.set_engine(working)
        dead.dispose()
    assert res.status_code == 503
    body = res.json()
    assert (body["status"], body["database"]) == ("error", "error")
    assert "database" in body["problems"]


# --- per-process checks (docker compose healthchecks) --------------------------------------


def test_component_web_and_worker_on_the_embedded_broker(world, env):
    assert health.check_component("web") == (True, "database OK")
    assert health.check_component("worker")[0] is False  # no heartbeat yet
    touch_heartbeat("worker_heartbeat_at")
    assert health.check_component("worker")[0] is True
    assert cli_main(["health", "--component", "worker"]) == 0
    set_value("worker_heartbeat_at", (clock.now() - timedelta(minutes=5)).isoformat())
    assert cli_main(["health", "--component", "worker"]) == 1


def test_component_worker_on_redis_pings_its_own_worker(world, env):
    from celery import current_app

    env(REDIS_URL=REDIS_URL)
    previous = current_app._get_current_object()
    try:
        from workers.celery_app import ping_worker

        assert ping_worker("celery@no-such-worker", timeout=0.5) is False
        healthy, why = health.check_component("worker", hostname="celery@no-such-worker",
                                              ping=ping_worker)
    finally:
        previous.set_current()
    assert healthy is False and "celery@no-such-worker" in why


def test_component_beat_reads_the_file_beat_touches(world, env, tmp_path):
    assert health.check_component("beat")[0] is False
    assert cli_main(["health", "--component", "beat"]) == 1
    from workers.celery_app import LivenessScheduler

    assert LivenessScheduler.tick is not None
    health.touch_beat_alive()
    assert health.beat_alive_path() == tmp_path / "data" / "beat-alive"
    assert cli_main(["health", "--component", "beat"]) == 0
    old = time.time() - 4 * 60
    os.utime(health.beat_alive_path(), (old, old))
    healthy, why = health.check_component("beat")
    assert healthy is False and "detik" in why


def test_cli_health_prints_the_report(world, env, capsys):
    all_alive()
    assert cli_main(["health"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
