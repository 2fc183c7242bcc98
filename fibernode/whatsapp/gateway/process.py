"""One OS process per owner's connect attempt: neonize crashes stay with one owner.

neonize 0.5.2 is unsafe to share between owners in one process:

- every ``NewClient`` registers a finaliser that stops whatever Go client holds its
  id, so garbage collection of an owner's *old* client object stops the new
  session, and the next ``get_me()`` panics in Go (exit 134);
- the Go side keeps every client in one unlocked map: one owner connecting while
  another thread reads ``is_logged_in`` is ``fatal error: concurrent map read and
  map write`` (exit 134).

So the gateway never loads a client itself. :class:`ProcessBackend` hands the
session manager a :class:`ProcessLinkClient` that starts a fresh interpreter
(``python -m fibernode.whatsapp.gateway.process``: spawned, never forked, no
inherited file descriptors, so no database connection of the parent) hosting
exactly ONE client for ONE connect attempt. Its events cross a socket to the
parent; the client's methods are calls over the same socket. A child that dies
makes :meth:`ProcessLinkClient.connect` raise :class:`OwnerProcessDied`, and the
manager's backoff loop starts a new process: that is the supervision.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from fibernode.whatsapp.base import ErrorKind
from fibernode.whatsapp.gateway.clients import (
    Backend,
    Emit,
    FakeBackend,
    FakeWorld,
    LinkClient,
    NeonizeBackend,
    NeonizeLinkClient,
    SendFailure,
)
from fibernode.whatsapp.gateway.events import SEND_ERROR_MESSAGES

log = logging.getLogger(__name__)

INNER_KINDS = ("neonize", "fake")
SEND_LOST = ("Proses WhatsApp untuk nomor ini berhenti saat pesan dikirim; "
             "status pesan belum pasti.")
NOT_CONNECTED = SEND_ERROR_MESSAGES[ErrorKind.NOT_CONNECTED]
# Calls a test-mode child also answers (the double's hooks).
_FAKE_HOOKS = ("pair", "simulate")
_CALLS = ("send_text", "lookup_numbers", "pair_phone", "logout", "phone_number")


class OwnerProcessDied(RuntimeError):
    """The owner's process ended without its connect returning (crash, kill)."""


class ConnectFailed(RuntimeError):
    """The client's connect returned an error (e.g. no network)."""


class _Gone(Exception):
    """The child is gone; ``delivered`` says whether it had received the call."""

    def __init__(self, delivered: bool):
        super().__init__("owner process gone")
        self.delivered = delivered


@dataclass
class ProcessInfo:
    """What the gateway's ``/health`` shows about one owner's process."""

    pid: int | None = None
    alive: bool = False
    spawns: int = 0
    crashes: int = 0
    last_exit: int | None = None
    spawn_s: float | None = None

    def as_dict(self) -> dict:
        """JSON view, with the live process's resident memory."""
        return {"pid": self.pid, "alive": self.alive, "restarts": max(0, self.spawns - 1),
                "crashes": self.crashes, "last_exit": self.last_exit,
                "spawn_s": None if self.spawn_s is None else round(self.spawn_s, 3),
                "rss_kb": _rss_kb(self.pid) if self.alive else None}


def _rss_kb(pid: int | None) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class ProcessBackend(Backend):
    """Runs each client of an ``inner`` backend in its own process.

    Args:
        inner: ``neonize`` (production) or ``fake`` (the test double, per process).
        proxy: Proxy URL for neonize (``http://…`` / ``socks5://…``), or ``None``.
        qr_interval_s: The double's QR rotation (``fake`` only).
        stop_grace_s: How long a stopping child may take before it is killed.
    """

    def __init__(self, inner: str = "neonize", *, proxy: str | None = None,
                 qr_interval_s: float = 20.0, stop_grace_s: float = 3.0):
        if inner not in INNER_KINDS:
            raise ValueError(f"inner backend: {', '.join(INNER_KINDS)}")
        self.inner = inner
        self.proxy = proxy or None
        self.qr_interval_s = qr_interval_s
        self.stop_grace_s = stop_grace_s
        self._local: Backend = NeonizeBackend() if inner == "neonize" else FakeBackend()
        self._info: dict[uuid.UUID, ProcessInfo] = {}
        self._latest: dict[uuid.UUID, ProcessLinkClient] = {}
        self._mutex = threading.Lock()

    def create(self, owner_id: uuid.UUID, db_path: Path, emit: Emit) -> LinkClient:
        """A client whose real client lives in a new process."""
        client = ProcessLinkClient(self, owner_id, db_path, emit)
        with self._mutex:
            self._latest[owner_id] = client
        return client

    def has_credentials(self, db_path: Path) -> bool:
        """Read in this process: a plain SQLite / JSON read, no client needed."""
        return self._local.has_credentials(db_path)

    def client(self, owner_id: uuid.UUID) -> ProcessLinkClient | None:
        """The owner's latest client (tests and ``/health``)."""
        with self._mutex:
            return self._latest.get(owner_id)

    def processes(self) -> dict[str, dict]:
        """Per owner: pid, alive, restarts, crashes, last exit code, spawn time, RSS."""
        with self._mutex:
            items = list(self._info.items())
        return {str(owner): info.as_dict() for owner, info in items}

    def info(self, owner_id: uuid.UUID) -> ProcessInfo:
        """The owner's process record (created on first use)."""
        with self._mutex:
            return self._info.setdefault(owner_id, ProcessInfo())


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: tuple | None = None


class ProcessLinkClient(LinkClient):
    """The parent's handle on one child process hosting one real client.

    Spawning starts at once; :meth:`connect` waits for the child's connect to
    return (or for the child to die) and then makes sure the child is gone.
    """

    def __init__(self, backend: ProcessBackend, owner_id: uuid.UUID, db_path: Path,
                 emit: Emit):
        self.backend, self.owner_id, self.emit = backend, owner_id, emit
        self._info = backend.info(owner_id)
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._mutex = threading.Lock()
        self._send_lock = threading.Lock()
        self._dead = threading.Event()
        self._ready = threading.Event()
        self._connect_done = threading.Event()
        self._connect_error: str | None = None
        self._stopping = threading.Event()  # we are ending the child
        self._stop_requested = threading.Event()  # the manager asked (not a crash)
        self._events: queue.Queue = queue.Queue()
        self.ready_info: dict = {}
        self.exit_code: int | None = None

        parent_sock, child_sock = socket.socketpair()
        started = time.monotonic()
        self._started = started
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                [sys.executable, "-m", "fibernode.whatsapp.gateway.process",
                 "--fd", str(child_sock.fileno()), "--inner", backend.inner,
                 "--owner", str(owner_id), "--db", str(db_path),
                 "--qr-interval", str(backend.qr_interval_s)]
                + (["--proxy", backend.proxy] if backend.proxy else []),
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                env=_child_env(), close_fds=True)
        finally:
            child_sock.close()
        self._conn = Connection(parent_sock.detach())
        with backend._mutex:
            self._info.pid, self._info.alive = self.proc.pid, True
            self._info.spawns += 1
        threading.Thread(target=self._read, daemon=True,
                         name=f"wa-proc-read-{owner_id}").start()
        threading.Thread(target=self._dispatch, daemon=True,
                         name=f"wa-proc-events-{owner_id}").start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    # -- plumbing ----------------------------------------------------------------
    def _post(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _read(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                kind = message[0]
                if kind == "event":
                    self._events.put(message[1])
                elif kind == "reply":
                    with self._mutex:
                        pending = self._pending.pop(message[1], None)
                    if pending is not None:
                        pending.reply = message[2]
                        pending.done.set()
                elif kind == "ready":
                    self.ready_info = message[1]
                    self._info.spawn_s = time.monotonic() - self._started
                    self._ready.set()
                elif kind == "connect_returned":
                    self._connect_error = message[1]
                    self._connect_done.set()
        except (EOFError, OSError):
            pass
        except Exception:
            log.exception("bad message from the process of %s", self.owner_id)
        self._reap()

    def _reap(self) -> None:
        """The socket closed: the child is exiting (or dead); collect it, fail what waits."""
        try:
            code = self.proc.wait(timeout=self.backend.stop_grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.exit_code = code
        crashed = not self._connect_done.is_set() and not self._stop_requested.is_set()
        with self.backend._mutex:
            if self._info.pid == self.proc.pid:
                self._info.alive = False
            self._info.last_exit = code
            if crashed:
                self._info.crashes += 1
        if crashed:
            log.warning("process %s of %s ended unexpectedly (exit %s)", self.proc.pid,
                        self.owner_id, code)
        with self._mutex:
            self._dead.set()
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            p.done.set()  # reply None: gone
        self._events.put(None)
        with contextlib.suppress(OSError):
            self._conn.close()

    def _dispatch(self) -> None:
        # Not on the reader: a handler may call back (phone_number) and wait for a reply.
        while (ev := self._events.get()) is not None:
            try:
                self.emit(ev)
            except Exception:
                log.exception("event handler of %s failed", self.owner_id)

    def _call(self, method: str, *args, timeout: float):
        with self._mutex:
            if self._dead.is_set():
                raise _Gone(delivered=False)
            call_id = next(self._ids)
            pending = self._pending[call_id] = _Pending()
        try:
            self._post(("call", call_id, method, args))
        except (OSError, ValueError) as exc:
            with self._mutex:
                self._pending.pop(call_id, None)
            raise _Gone(delivered=False) from exc
        if not pending.done.wait(timeout) or pending.reply is None:
            raise _Gone(delivered=True)
        ok, value = pending.reply
        if ok:
            return value
        if value[0] == "send_failure":
            raise SendFailure(ErrorKind(value[1]), value[2])
        raise RuntimeError(value[2])

    # -- LinkClient ------------------------------------------------------------------
    def connect(self) -> None:
        """Run one connect attempt in the child; the child is gone when this returns.

        Raises:
            OwnerProcessDied: the child died before its connect returned.
            ConnectFailed: the client's connect returned an error.
        """
        try:
            if not self._dead.is_set() and not self._stopping.is_set():
                with contextlib.suppress(OSError, ValueError):
                    self._post(("connect",))
                while not (self._connect_done.is_set() or self._dead.is_set()):
                    self._connect_done.wait(0.2)
        finally:
            self._end()
        if self._connect_done.is_set():
            if self._connect_error:
                raise ConnectFailed(self._connect_error)
            return
        if self._stop_requested.is_set():
            return  # we ended it
        raise OwnerProcessDied(f"proses WhatsApp pemilik berhenti mendadak "
                               f"(pid {self.proc.pid}, kode keluar {self.exit_code})")

    def stop(self) -> None:
        """End the child for sure: ask, then SIGTERM, then SIGKILL; reap it."""
        self._stop_requested.set()
        self._end()

    def _end(self) -> None:
        self._stopping.set()
        if not self._dead.is_set():
            with contextlib.suppress(OSError, ValueError):
                self._post(("stop",))
            grace = self.backend.stop_grace_s
            if not self._dead.wait(grace):
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        self.proc.send_signal(sig)
                    except ProcessLookupError:
                        break
                    if self._dead.wait(1.0):
                        break
        self._dead.wait(5.0)
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            log.error("process %s of %s would not die", self.proc.pid, self.owner_id)

    def pair_phone(self, phone: str) -> str:
        """``PairPhone`` in the child."""
        try:
            return self._call("pair_phone", phone, timeout=60)
        except _Gone as exc:
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def logout(self) -> None:
        """Unlink the device (in the child).

        Raises:
            RuntimeError: the child is gone or the logout failed.
        """
        try:
            self._call("logout", timeout=30)
        except _Gone as exc:
            raise RuntimeError("proses WhatsApp pemilik sudah berhenti") from exc

    def send_text(self, phone: str, text: str) -> str:
        """Send in the child; a child lost mid-send leaves the message uncertain."""
        try:
            return self._call("send_text", phone, text, timeout=120)
        except _Gone as exc:
            if exc.delivered:
                raise SendFailure(ErrorKind.UNCERTAIN, SEND_LOST) from exc
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def lookup_numbers(self, *queries: str) -> Sequence:
        """``IsOnWhatsApp`` in the child."""
        try:
            return self._call("lookup_numbers", *queries, timeout=60)
        except _Gone as exc:
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def phone_number(self) -> str | None:
        """The linked number, or ``None`` when unknown or the child is gone."""
        try:
            return self._call("phone_number", timeout=10)
        except (_Gone, RuntimeError):
            return None

    def hook(self, name: str, *args) -> None:
        """Test mode (``fake`` inner): ``pair`` / ``simulate`` on the double in the child."""
        try:
            self._call(name, *args, timeout=10)
        except _Gone as exc:
            raise RuntimeError("proses WhatsApp pemilik sudah berhenti") from exc

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Whether the child came up (imports done) within ``timeout``."""
        return self._ready.wait(timeout)


def _child_env() -> dict[str, str]:
    """The parent's environment, with this very ``fibernode`` first on the path."""
    import fibernode

    env = dict(os.environ)
    root = str(Path(fibernode.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


# -- the child ------------------------------------------------------------------
class _Host:
    """The child's side: one client, every Go-touching call behind one lock.

    neonize's Go map is written when the client registers (connect starts) and when
    it is stopped; reads before the first event (the client is registered by then)
    or after the stop are refused here instead of reaching Go.
    """

    def __init__(self, conn: Connection, args: argparse.Namespace):
        self.conn = conn
        self.inner = args.inner
        self.proxy = args.proxy
        self._send_lock = threading.Lock()
        self.go = threading.Lock()  # everything that touches neonize's client map
        self.up = False
        self.closing = False
        self.connect_started = threading.Event()
        self.connect_ended = threading.Event()
        owner_id, db_path = uuid.UUID(args.owner), Path(args.db)
        if self.inner == "neonize":
            self.client: LinkClient = NeonizeLinkClient(owner_id, db_path, self.on_event,
                                                        proxy=self.proxy)
        else:
            backend = FakeBackend(FakeWorld(qr_interval_s=args.qr_interval))
            self.client = backend.create(owner_id, db_path, self.on_event)

    def post(self, message: tuple) -> None:
        with self._send_lock:
            self.conn.send(message)

    def on_event(self, ev: object) -> None:
        # On a Go callback thread: no lock here (Stop may be waiting for this callback).
        self.up = True
        try:
            self.post(("event", ev))
        except (OSError, ValueError):
            os._exit(0)  # the parent is gone

    def serve(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.exit()  # parent gone: never outlive it
            kind = message[0]
            if kind == "connect" and not self.connect_started.is_set():
                self.connect_started.set()
                threading.Thread(target=self.run_connect, daemon=True).start()
            elif kind == "stop":
                threading.Thread(target=self.stop, daemon=True).start()
            elif kind == "call":
                threading.Thread(target=self.call, args=message[1:], daemon=True).start()

    def run_connect(self) -> None:
        error = None
        try:
            self.client.connect()
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        with self.go:
            self.closing = True
        self.connect_ended.set()
        try:
            self.post(("connect_returned", error))
        finally:
            self.exit()

    def stop(self) -> None:
        # neonize's Stop blocks while a dial is in progress: give it a moment, then leave.
        def go_stop() -> None:
            with self.go:
                self.closing = True
                self.client.stop()

        threading.Thread(target=go_stop, daemon=True).start()
        if self.connect_started.is_set():
            self.connect_ended.wait(1.5)
        else:
            time.sleep(0.1)
        self.exit()

    def call(self, call_id: int, method: str, args: tuple) -> None:
        allowed = _CALLS + (_FAKE_HOOKS if self.inner == "fake" else ())
        try:
            if method not in allowed:
                raise ValueError(f"unknown call {method}")
            with self.go:
                if not self.up or self.closing:
                    reply = (True, _offline_answer(method))
                else:
                    reply = (True, getattr(self.client, method)(*args))
        except SendFailure as exc:
            reply = (False, ("send_failure", str(exc.kind), exc.message))
        except Exception as exc:
            reply = (False, ("error", type(exc).__name__, str(exc)))
        try:
            self.post(("reply", call_id, reply))
        except (OSError, ValueError):
            self.exit()

    def exit(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _offline_answer(method: str):
    """What a call gets before the client is registered or after it stopped."""
    if method in ("send_text", "lookup_numbers", "pair_phone"):
        raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED)
    if method == "logout":
        raise RuntimeError("klien WhatsApp belum / tidak lagi tersambung")
    return None  # phone_number, hooks


def main(argv: list[str] | None = None) -> None:
    """Child entry point: host one client until its connect returns or the parent says stop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--inner", choices=INNER_KINDS, required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--proxy")
    parser.add_argument("--qr-interval", type=float, default=20.0)
    args = parser.parse_args(argv)
    # The parent stops us; a terminal's Ctrl+C goes to the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING,
                        format=f"%(asctime)s wa-owner[{args.owner[:8]}] %(levelname)s %(message)s")
    conn = Connection(args.fd)
    host = _Host(conn, args)
    heavy = ("psycopg", "psycopg2", "fastapi", "uvicorn", "reflex", "celery", "redis")
    host.post(("ready", {"pid": os.getpid(),
                         "modules": sorted(m for m in heavy if m in sys.modules)}))
    host.serve()


if __name__ == "__main__":
    main()
