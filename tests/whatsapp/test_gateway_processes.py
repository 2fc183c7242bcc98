"""Each owner's WhatsApp client in its own process (issue 17 #1 and #2), real neonize offline.

The regression tests drive the production wiring (``server.build_manager`` in neonize
mode) inside a network namespace: on the old in-process backend both end in a Go
crash (exit 134) that takes every owner down.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from neonize.events import ConnectedEv, PairStatusEv

from fibernode.whatsapp.base import ErrorKind
from fibernode.whatsapp.gateway.clients import SendFailure
from fibernode.whatsapp.gateway.events import QrIssued
from fibernode.whatsapp.gateway.locks import FileOwnerLocks
from fibernode.whatsapp.gateway.manager import SessionManager, Timings
from fibernode.whatsapp.gateway.process import (
    ConnectFailed,
    OwnerProcessDied,
    ProcessBackend,
    ProcessLinkClient,
)
from tests.whatsapp.offline import (
    BlackHoleProxy,
    add_linked_device,
    child_env,
    create_store,
    dead_proxy,
    needs_unshare,
    run_offline,
)


def wait_for(cond, timeout: float = 15.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    raise AssertionError(f"{what} not met in {timeout} s")


def gone(pid: int) -> bool:
    """No such process, not even a zombie."""
    return not Path(f"/proc/{pid}").exists()


def connect_in_thread(client: ProcessLinkClient) -> dict:
    out: dict = {}

    def run():
        try:
            client.connect()
            out["returned"] = True
        except Exception as exc:
            out["error"] = exc

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


@pytest.fixture
def hole():
    proxy = BlackHoleProxy()
    yield proxy
    proxy.close()


# -- the plumbing, with real neonize behind a proxy on 127.0.0.1 ----------------------
def test_a_second_client_of_one_owner_survives_the_first_being_dropped(tmp_path, hole):
    """The reconnect case of #1: the old client object goes, the new session stays."""
    owner = uuid.uuid4()
    db = tmp_path / f"{owner}.sqlite3"
    first = ProcessBackend("neonize", proxy=dead_proxy()).create(owner, db, lambda ev: None)
    with pytest.raises(ConnectFailed, match="connection refused"):
        first.connect()
    assert gone(first.pid)

    backend = ProcessBackend("neonize", proxy=hole.url, stop_grace_s=1.0)
    second = backend.create(owner, db, lambda ev: None)
    run = connect_in_thread(second)
    wait_for(lambda: hole.held, what="the second client dialling")
    del first
    import gc
    gc.collect()
    time.sleep(0.5)
    assert second.proc.poll() is None
    assert second.phone_number() is None  # answers (not registered yet: Go untouched)
    with pytest.raises(SendFailure) as exc:
        second.send_text("6281234567890", "Halo")
    assert exc.value.kind == ErrorKind.NOT_CONNECTED

    # neonize's Stop cannot cancel a dial in progress: stop() still ends the child.
    started = time.monotonic()
    second.stop()
    assert time.monotonic() - started < 6
    run["thread"].join(5)
    assert run.get("returned") and gone(second.pid)
    assert backend.processes()[str(owner)]["alive"] is False


def test_a_child_lost_mid_send_leaves_the_send_uncertain_and_connect_raises(tmp_path):
    backend = ProcessBackend("fake", qr_interval_s=0.2)
    owner = uuid.uuid4()
    events: list = []
    client = backend.create(owner, tmp_path / "fake.json", events.append)
    run = connect_in_thread(client)
    wait_for(lambda: any(isinstance(e, QrIssued) for e in events), what="a QR")
    client.hook("pair", "6281211112222")
    wait_for(lambda: any(isinstance(e, ConnectedEv) for e in events), what="connected")
    assert any(isinstance(e, PairStatusEv) and e.ID.User == "6281211112222" for e in events)
    assert client.phone_number() == "6281211112222"
    assert client.send_text("6281234567890", "Halo").startswith("3EB0")
    assert client.is_on_whatsapp("6281234567890") is True

    os.kill(client.pid, signal.SIGSTOP)  # the send reaches the child, no answer comes
    result: dict = {}

    def send():
        try:
            client.send_text("6281234567890", "Halo lagi")
        except SendFailure as exc:
            result["kind"] = exc.kind

    t = threading.Thread(target=send)
    t.start()
    time.sleep(0.3)
    os.kill(client.pid, signal.SIGKILL)
    t.join(10)
    assert result["kind"] == ErrorKind.UNCERTAIN  # it may have gone out
    run["thread"].join(10)
    assert isinstance(run["error"], OwnerProcessDied)
    assert gone(client.pid)
    with pytest.raises(SendFailure) as exc:
        client.send_text("6281234567890", "x")
    assert exc.value.kind == ErrorKind.NOT_CONNECTED  # never handed over
    with pytest.raises(SendFailure) as exc:
        client.lookup_numbers("+6281234567890")
    assert exc.value.kind == ErrorKind.NOT_CONNECTED
    info = backend.processes()[str(owner)]
    assert info["crashes"] == 1 and info["last_exit"] == -signal.SIGKILL


def test_an_owner_process_that_cannot_start_is_a_dead_one(tmp_path, monkeypatch):
    """No process (out of fds or memory): connect raises, so the manager backs off."""
    import subprocess

    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    client = ProcessBackend("fake").create(uuid.uuid4(), tmp_path / "f.json", lambda ev: None)
    with pytest.raises(OwnerProcessDied, match="Too many open files"):
        client.connect()
    client.stop()
    assert client.pid is None and client.phone_number() is None
    with pytest.raises(SendFailure) as exc:
        client.send_text("6281234567890", "x")
    assert exc.value.kind == ErrorKind.NOT_CONNECTED


def test_the_child_inherits_no_database_connection_and_starts_lean(tmp_path, pg):
    """Spawned, not forked: a fresh interpreter without the parent's sockets or DB driver."""
    with pg.connect() as conn:
        pg_socket = os.fstat(conn.connection.dbapi_connection.fileno()).st_ino
        client = ProcessBackend("fake").create(uuid.uuid4(), tmp_path / "f.json",
                                               lambda ev: None)
        try:
            assert client.wait_ready(30)
            fds = [os.readlink(f"/proc/{client.pid}/fd/{n}")
                   for n in os.listdir(f"/proc/{client.pid}/fd")]
        finally:
            client.stop()
    assert f"socket:[{pg_socket}]" not in fds
    # The double loads the app (tests only); the neonize child must not, see below.
    assert "psycopg" not in client.ready_info["modules"]
    assert gone(client.pid)


def test_a_neonize_owner_process_loads_none_of_the_app(tmp_path, hole):
    """Lean: neonize and the standard library only (spawn time and memory per owner)."""
    backend = ProcessBackend("neonize", proxy=hole.url, stop_grace_s=1.0)
    client = backend.create(uuid.uuid4(), tmp_path / "o.sqlite3", lambda ev: None)
    try:
        assert client.wait_ready(30)
        assert client.ready_info["modules"] == []  # no ORM, DB driver, web stack, celery
    finally:
        client.stop()
    assert gone(client.pid)


def neonize_failures():
    """The strings real neonize gave offline (test_neonize_contract), as the child relays them."""
    return [("send_text", "the store doesn't contain a device JID"),
            ("send_text", "failed to get user info for 6281234567891@s.whatsapp.net to fill "
                          "LID cache: failed to send usync query: websocket not connected"),
            ("lookup_numbers", "failed to send usync query: websocket not connected"),
            ("pair_phone", "websocket not connected")]


@pytest.mark.parametrize(("method", "text"), neonize_failures())
def test_neonize_errors_relayed_by_a_child_are_classified_like_in_process(method, text):
    from fibernode.whatsapp.gateway.process import neonize_failure

    failure = neonize_failure(method, ("neonize_error", text))
    assert failure.kind == ErrorKind.NOT_CONNECTED and text in failure.message


def test_a_killed_owner_process_is_restarted_and_the_others_are_untouched(tmp_path):
    """Supervision through the manager's backoff loop, even while linking."""
    backend = ProcessBackend("fake", qr_interval_s=0.3)
    timings = Timings(qr_ttl_s=0.3, link_window_s=30, backoff_base_s=0.3, backoff_max_s=1,
                      watchdog_interval_s=0.1, start_wait_s=20)
    m = SessionManager(tmp_path / "wa", backend, FileOwnerLocks(tmp_path / "wa"),
                       timings=timings, record=lambda owner, ev: None)
    m.start_background(resume=False)
    owners = [uuid.uuid4() for _ in range(3)]
    try:
        for owner in owners:
            assert m.start(owner)["qr_code"].startswith("2@")
        backend.client(owners[1]).hook("pair", "6281299990001")
        wait_for(lambda: m.sessions[owners[1]].connected, what="owner 2 connected")
        pids = {o: backend.processes()[str(o)]["pid"] for o in owners}

        for victim in owners[:2]:  # one linking, one connected
            os.kill(pids[victim], signal.SIGKILL)
        for victim in owners[:2]:
            wait_for(lambda v=victim: backend.processes()[str(v)]["pid"] != pids[v]
                     and backend.processes()[str(v)]["alive"], what="a restart")
            assert backend.processes()[str(victim)]["restarts"] == 1
        wait_for(lambda: m.sessions[owners[1]].connected, what="owner 2 reconnected")
        assert m.sessions[owners[0]].qr_code is not None  # linking goes on
        untouched = backend.processes()[str(owners[2])]
        assert untouched["pid"] == pids[owners[2]] and untouched["restarts"] == 0
        assert m.send(owners[1], "6281234567890", "Halo", "k1")["ok"]
    finally:
        m.shutdown()
    for pid in [p["pid"] for p in backend.processes().values()] + list(pids.values()):
        assert gone(pid)


# -- regressions on the production wiring, real neonize in a network namespace ---------
SCENARIO = """
    import gc, json, os, sys, threading, time, uuid
    from pathlib import Path
    from fibernode.whatsapp.gateway.manager import Timings
    from fibernode.whatsapp.gateway.server import build_manager

    m = build_manager(test_mode=False)
    m.timings = Timings(backoff_base_s=0.05, backoff_max_s=0.3, watchdog_interval_s=0.2)
    m._record = lambda owner, ev: None
    m.start_background(resume=True)  # every owner at once, as at gateway start
    owners = [uuid.UUID(p.stem) for p in Path(os.environ["WA_SESSIONS_DIR"]).glob("*-*.sqlite3")]
    end = time.monotonic() + float(os.environ["SCENARIO_S"])
    reads = 0

    def read():
        global reads
        while time.monotonic() < end:
            for owner in owners:
                s = m.sessions.get(owner)
                client = s.client if s else None
                if client is not None:
                    client.phone_number()
                m.state(owner)
                reads += 1
            gc.collect()  # old client objects of each owner go now
            time.sleep(0.01)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m.shutdown()
    procs = getattr(m.backend, "processes", dict)()
    print("SURVIVED " + json.dumps({"reads": reads, "backend": type(m.backend).__name__,
                                    "procs": procs}), flush=True)
"""


def run_scenario(tmp_path, n_owners: int, seconds: float):
    sessions = tmp_path / "wa"
    sessions.mkdir()
    for _ in range(n_owners):
        owner = str(uuid.uuid4())
        create_store(sessions / f"{owner}.sqlite3", owner)
        add_linked_device(sessions / f"{owner}.sqlite3", "62812" + owner[:7].replace("-", "0"))
    env = child_env(DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
                    WA_SESSIONS_DIR=str(sessions), SCENARIO_S=str(seconds), APP_ENV="test")
    return run_offline(SCENARIO, env=env, timeout=seconds + 60)


def survived(done) -> dict:
    import json

    line = next((x for x in done.stdout.splitlines() if x.startswith("SURVIVED ")), None)
    assert done.returncode == 0 and line, done.stdout[-1000:] + done.stderr[-3000:]
    return json.loads(line[len("SURVIVED "):])


@needs_unshare
def test_reconnecting_one_owner_again_and_again_never_kills_the_gateway(tmp_path):
    """#1: each attempt's client is dropped and collected while the next one runs."""
    out = survived(run_scenario(tmp_path, 1, 6))
    assert out["backend"] == "ProcessBackend" and out["reads"] > 0
    (info,) = out["procs"].values()
    assert info["restarts"] >= 1 and info["crashes"] == 0 and not info["alive"], out


@needs_unshare
def test_many_owners_connecting_while_others_read_never_kill_the_gateway(tmp_path):
    """#2: five owners resumed at once, reconnecting, while two threads read status."""
    out = survived(run_scenario(tmp_path, 5, 8))
    assert len(out["procs"]) == 5
    for info in out["procs"].values():
        assert info["restarts"] >= 1 and info["crashes"] == 0 and not info["alive"], out


def test_owner_processes_never_outlive_a_killed_gateway(tmp_path):
    """The gateway SIGKILLed (OOM, docker kill): its owners' processes end too."""
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", f"""
import threading, time, uuid
from pathlib import Path
from fibernode.whatsapp.gateway.process import ProcessBackend
b = ProcessBackend("fake", qr_interval_s=0.2)
clients = [b.create(uuid.uuid4(), Path({str(tmp_path)!r}) / f"{{i}}.json", lambda ev: None)
           for i in range(2)]
for c in clients:
    threading.Thread(target=c.connect, daemon=True).start()
    c.wait_ready(30)
print(" ".join(str(c.pid) for c in clients), flush=True)
time.sleep(120)
"""], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
    finally:
        parent.kill()
        parent.wait()
    for pid in pids:
        wait_for(lambda p=pid: gone(p) or _zombie(p), 10, f"owner process {pid} ended")


def _zombie(pid: int) -> bool:
    """Ended, waiting for its (dead) parent's reaper: init collects it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True
