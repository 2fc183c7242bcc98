"""The real wa-gateway process in neonize mode survives churn and dead owner processes.

Offline without a namespace: neonize dials through a proxy on 127.0.0.1 that never
answers (``WA_GATEWAY_PROXY``), so every owner's process sits in a dial as on a
stalled network, and the test can still reach the gateway's HTTP port. The
gateway records session facts in the test PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import WaSession
from tests.whatsapp.offline import ROOT, BlackHoleProxy, child_env

TOKEN = "survival-test-token"
CHURN_S = float(os.environ.get("WA_SURVIVAL_S", "60"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout} s")


@pytest.fixture
def owners(pg):
    from tests.factories import World

    w = World.seeded()
    return [w.mitra_a.user_id, w.mitra_b.user_id] + [
        w.new_mitra(f"mitra{n}", f"Net {n}") for n in (3, 4, 5)]


@pytest.fixture
def gateway(tmp_path, pg_database):
    proxy = BlackHoleProxy()
    port = free_port()
    log = (tmp_path / "gateway.log").open("w")
    env = child_env(DATABASE_URL=pg_database, APP_ENV="test", WA_MODE="neonize",
                    WA_GATEWAY_TOKEN=TOKEN, WA_GATEWAY_URL=f"http://127.0.0.1:{port}",
                    WA_SESSIONS_DIR=str(tmp_path / "wa"), WA_GATEWAY_PROXY=proxy.url,
                    WA_GATEWAY_TEST_MODE="", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "fibernode.cli", "wa-gateway",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})

    def up() -> bool:
        try:
            return client.get("/health").json()["ok"]
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "the gateway answering /health")
        yield proc, client, tmp_path / "gateway.log"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        client.close()
        log.close()
        proxy.close()


def processes(client: httpx.Client) -> dict:
    return client.get("/processes").json()["processes"]


def test_gateway_survives_link_churn_and_a_killed_owner_process(owners, gateway):
    proc, client, log_path = gateway
    started = time.monotonic()
    health_failures: list[str] = []
    answered = [0]
    errors: list[str] = []
    end = time.monotonic() + CHURN_S

    def watch_health():
        while time.monotonic() < end:
            try:
                r = client.get("/health", timeout=5)
                assert r.status_code == 200 and r.json()["ok"]
                answered[0] += 1
            except Exception as exc:
                health_failures.append(repr(exc))
            time.sleep(0.5)

    def churn(owner):
        rnd = random.Random(str(owner))
        while time.monotonic() < end:
            try:
                r = client.post(f"/sessions/{owner}/link", json={"method": "qr"})
                assert r.status_code == 200, r.text
                client.get(f"/sessions/{owner}").raise_for_status()
                time.sleep(rnd.uniform(0, 1.5))
                client.post(f"/sessions/{owner}/logout").raise_for_status()
                time.sleep(rnd.uniform(0, 0.5))
            except Exception as exc:
                errors.append(f"{owner}: {exc!r}")

    threads = [threading.Thread(target=watch_health)] + [
        threading.Thread(target=churn, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.poll() is None, log_path.read_text()[-3000:]
    assert not errors, errors[:5]
    assert not health_failures, health_failures[:5]
    assert answered[0] >= CHURN_S  # twice a second, every time
    churned = processes(client)
    assert set(churned) == {str(o) for o in owners}
    # Each link / logout round is a new process per owner (a short run may see fewer).
    assert sum(p["restarts"] for p in churned.values()) >= (
        len(owners) if CHURN_S >= 30 else 1), json.dumps(churned)
    assert all(p["crashes"] == 0 for p in churned.values()), churned
    wait_for(lambda: not any(p["alive"] for p in processes(client).values()), 20,
             "every logged-out owner's process gone")

    # Now all five linking at once: each owner's process sits in its dial.
    link_threads = [threading.Thread(target=client.post, args=(f"/sessions/{o}/link",),
                                     kwargs={"json": {"method": "qr"}}) for o in owners]
    for t in link_threads:
        t.start()
    for t in link_threads:
        t.join()
    wait_for(lambda: all(p["alive"] for p in processes(client).values()), 30,
             "five live owner processes")
    before = processes(client)
    victim, others = str(owners[0]), [str(o) for o in owners[1:]]
    os.kill(before[victim]["pid"], signal.SIGKILL)

    def restarted() -> bool:
        now = processes(client)[victim]
        return now["alive"] and now["pid"] != before[victim]["pid"]

    killed_at = time.monotonic()
    wait_for(restarted, 30, "the killed owner's process restarted")
    restart_s = time.monotonic() - killed_at
    after = processes(client)
    assert after[victim]["restarts"] == before[victim]["restarts"] + 1
    assert after[victim]["crashes"] == 1 and after[victim]["last_exit"] == -signal.SIGKILL
    assert restart_s >= 1.5  # after the backoff (2 s), not in a tight loop
    for other in others:
        assert after[other]["pid"] == before[other]["pid"] and after[other]["alive"]
        assert after[other]["crashes"] == 0
    assert client.get("/health").json()["processes"]["alive"] == 5
    with new_session() as s:
        row = s.exec(select(WaSession).where(WaSession.user_id == owners[0])).one()
    error = row.last_error or ""
    assert "berhenti mendadak" in error or "menyambung ulang" in error, error
    assert proc.poll() is None

    pids = [p["pid"] for p in after.values()]
    rss = [p["rss_kb"] for p in after.values() if p["rss_kb"]]
    spawn = [p["spawn_s"] for p in after.values() if p["spawn_s"]]
    print(f"\nsurvival: churn {CHURN_S:g} s, total {time.monotonic() - started:.1f} s; "
          f"restart after kill {restart_s:.1f} s; owner RSS {min(rss)}-{max(rss)} kB; "
          f"spawn {min(spawn):.2f}-{max(spawn):.2f} s")
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    for pid in pids:  # the gateway took its owners' processes with it
        wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), 10, f"process {pid} gone")
