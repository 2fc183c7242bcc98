"""What the real neonize 0.5.2 does, offline (``unshare -n``), that the gateway depends on.

The first two tests pin the library faults :mod:`fibernode.whatsapp.gateway.process`
exists for (each owner's client in its own process): if a neonize upgrade fixes
them, these fail and the per-process design can be reconsidered, not before.
"""

from __future__ import annotations

import json
import uuid

import pytest

from fibernode.whatsapp.base import ErrorKind
from fibernode.whatsapp.gateway.clients import NeonizeBackend
from fibernode.whatsapp.gateway.events import classify_send_error
from tests.whatsapp.offline import add_linked_device, create_store, needs_unshare, run_offline

pytestmark = needs_unshare
# SIGABRT from the Go runtime (a shell reports it as exit 134): the whole process is gone.
GO_CRASH = (-6, 134)


def test_gc_of_an_old_client_object_stops_the_live_client_of_the_same_id(tmp_path):
    """neonize's finaliser stops *whatever* Go client holds the id; get_me then panics."""
    done = run_offline(f"""
        import gc
        from neonize.client import NewClient
        path = {str(tmp_path / "owner.sqlite3")!r}
        first = NewClient(path, uuid="owner-1")
        try:
            first.connect()
        except Exception:
            pass
        second = NewClient(path, uuid="owner-1")  # the reconnect: same id, new object
        try:
            second.connect()
        except Exception:
            pass
        print("before gc:", repr(second.get_me().JID.User), flush=True)
        del first
        gc.collect()
        second.get_me()
        print("SURVIVED", flush=True)
    """)
    assert "before gc: ''" in done.stdout
    assert done.returncode in GO_CRASH, done.stdout + done.stderr[-2000:]
    assert "SURVIVED" not in done.stdout
    assert "nil pointer dereference" in done.stderr and "main.GetMe" in done.stderr


def test_owners_connecting_while_another_thread_reads_crash_the_process(tmp_path):
    """One unlocked Go map for every client: connect writes it, is_logged_in reads it."""
    done = run_offline(f"""
        import threading, time
        from neonize.client import NewClient
        clients = [NewClient({str(tmp_path)!r} + f"/{{i}}.sqlite3", uuid=f"owner-{{i}}")
                   for i in range(4)]
        end = time.monotonic() + 20
        def connect_again_and_again(c):
            while time.monotonic() < end:
                try:
                    c.connect()
                except Exception:
                    pass
        def read():
            while time.monotonic() < end:
                for c in clients:
                    c.is_logged_in
        threads = [threading.Thread(target=connect_again_and_again, args=(c,))
                   for c in clients[:3]] + [threading.Thread(target=read)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("SURVIVED", flush=True)
    """)
    assert done.returncode in GO_CRASH, done.stdout + done.stderr[-2000:]
    assert "concurrent map" in done.stderr


def test_each_owner_has_its_own_auth_store_read_back_by_neonize(tmp_path):
    """The store neonize creates per owner; credentials show up only for the linked one."""
    linked, fresh = uuid.uuid4(), uuid.uuid4()
    backend = NeonizeBackend()
    for owner in (linked, fresh):
        create_store(tmp_path / f"{owner}.sqlite3", str(owner))
        assert not backend.has_credentials(tmp_path / f"{owner}.sqlite3")
    assert not backend.has_credentials(tmp_path / "missing.sqlite3")

    add_linked_device(tmp_path / f"{linked}.sqlite3", "6281234567890")
    assert backend.has_credentials(tmp_path / f"{linked}.sqlite3")
    assert not backend.has_credentials(tmp_path / f"{fresh}.sqlite3")

    for owner, phone in ((linked, "6281234567890"), (fresh, "")):
        done = run_offline(f"""
            from neonize.client import NewClient
            c = NewClient({str(tmp_path / f"{owner}.sqlite3")!r}, uuid={str(owner)!r})
            try:
                c.connect()
            except Exception:
                pass
            print("ME=" + c.get_me().JID.User)
        """)
        assert f"ME={phone}\n" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("linked", [False, True], ids=["never-linked", "linked-offline"])
def test_errors_neonize_gives_while_disconnected_are_not_connected(tmp_path, linked):
    """The exact strings, through ``classify_send_error`` and our client's wrappers."""
    owner = str(uuid.uuid4())
    path = tmp_path / f"{owner}.sqlite3"
    create_store(path, owner)
    if linked:
        add_linked_device(path, "6281234567890")
    done = run_offline(f"""
        import json, uuid
        from pathlib import Path
        from neonize.utils.jid import build_jid
        from fibernode.whatsapp.gateway.clients import NeonizeLinkClient, SendFailure
        ours = NeonizeLinkClient(uuid.UUID({owner!r}), Path({str(path)!r}), lambda ev: None)
        try:
            ours.connect()
        except Exception:
            pass
        raw = ours._client
        out = {{"raw": {{}}, "ours": {{}}}}
        for name, call in [
                ("send_message", lambda: raw.send_message(build_jid("6281234567891"), "x")),
                ("is_on_whatsapp", lambda: raw.is_on_whatsapp("+6281234567891")),
                ("PairPhone", lambda: raw.PairPhone("6281234567891", True))]:
            try:
                call()
            except Exception as exc:
                out["raw"][name] = str(exc)
        for name, call in [("send_text", lambda: ours.send_text("6281234567891", "x")),
                           ("lookup_numbers", lambda: ours.lookup_numbers("+6281234567891")),
                           ("pair_phone", lambda: ours.pair_phone("6281234567891"))]:
            try:
                call()
            except SendFailure as exc:
                out["ours"][name] = str(exc.kind)
        print("OUT=" + json.dumps(out))
    """)
    line = next(x for x in done.stdout.splitlines() if x.startswith("OUT="))
    out = json.loads(line[4:])
    assert set(out["raw"]) == {"send_message", "is_on_whatsapp", "PairPhone"}, out
    for name, text in out["raw"].items():
        assert "not connected" in text or "doesn't contain a device" in text, (name, text)
        assert classify_send_error(text) == ErrorKind.NOT_CONNECTED, (name, text)
    assert out["ours"] == {"send_text": "not_connected", "lookup_numbers": "not_connected",
                           "pair_phone": "not_connected"}
