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
(``python -m fibernode.whatsapp.gateway.owner``: spawned, never forked, no
inherited file descriptors, so no database connection of the parent, and none of
the app's modules) hosting exactly ONE client for ONE connect attempt. Its events
cross a socket to the parent; the client's methods are calls over the same socket. A child that dies
makes :meth:`ProcessLinkClient.connect` raise :class:`OwnerProcessDied`, and the
manager's backoff loop starts a new process: that is the supervision.
"""

from __future__ import annotations

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
    LinkClient,
    NeonizeBackend,
    SendFailure,
)
from fibernode.whatsapp.gateway.events import SEND_ERROR_MESSAGES, QrIssued, classify_send_error
from fibernode.whatsapp.gateway.owner import INNER_KINDS

log = logging.getLogger(__name__)

SEND_LOST = ("Proses WhatsApp untuk nomor ini berhenti saat pesan dikirim; "
             "status pesan belum pasti.")
NOT_CONNECTED = SEND_ERROR_MESSAGES[ErrorKind.NOT_CONNECTED]


class OwnerProcessDied(RuntimeError):
    """The owner's process ended without its connect returning (crash, kill)."""


class ConnectFailed(RuntimeError):
    """The client's connect returned an error (e.g. no network)."""


class _Gone(Exception):
    """The child is gone; ``delivered`` says whether it had received the call."""

    def __init__(self, delivered: bool):
        super().__init__("owner process gone")
        self.delivered = delivered


class _Refused(Exception):
    """The child answered with a failure (see :mod:`.owner` for the shapes)."""

    def __init__(self, failure: tuple):
        super().__init__(repr(failure))
        self.failure = failure


def neonize_failure(method: str, failure: tuple) -> SendFailure:
    """The :class:`SendFailure` for a child's failed ``method``, as in-process neonize gives.

    Same kinds and texts as :class:`~.clients.NeonizeLinkClient`.
    """
    tag = failure[0]
    if tag == "send_failure":
        return SendFailure(ErrorKind(failure[1]), failure[2])
    if tag == "not_connected":
        return SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED)
    text = failure[-1]
    kind = classify_send_error(text)
    if method == "send_text":
        return SendFailure(kind, f"{SEND_ERROR_MESSAGES[kind]} ({text})")
    if method == "lookup_numbers":
        return SendFailure(kind, f"Gagal memeriksa nomor: {text}.")
    # pair_phone: offline whatsmeow says "websocket not connected", not the number's fault.
    return SendFailure(ErrorKind.NOT_CONNECTED if kind == ErrorKind.NOT_CONNECTED
                       else ErrorKind.INVALID, f"Gagal meminta kode pairing: {text}.")


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
                [sys.executable, "-m", "fibernode.whatsapp.gateway.owner",
                 "--fd", str(child_sock.fileno()), "--inner", backend.inner,
                 "--owner", str(owner_id), "--db", str(db_path),
                 "--qr-interval", str(backend.qr_interval_s)]
                + (["--proxy", backend.proxy] if backend.proxy else []),
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                env=_child_env(), close_fds=True)
        except OSError as exc:  # no process (fds, memory): connect() reports it, _run backs off
            log.error("cannot start the process of %s: %s", owner_id, exc)
            parent_sock.close()
            self.proc = None
            self._spawn_error = str(exc)
            self._dead.set()
            return
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
    def pid(self) -> int | None:
        """The child's process id (``None`` if it could not be started)."""
        return self.proc.pid if self.proc is not None else None

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
                elif kind == "qr":
                    self._events.put(QrIssued(message[1]))
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
        raise _Refused(value)

    # -- LinkClient ------------------------------------------------------------------
    def connect(self) -> None:
        """Run one connect attempt in the child; the child is gone when this returns.

        Raises:
            OwnerProcessDied: the child died before its connect returned.
            ConnectFailed: the client's connect returned an error.
        """
        if self.proc is None:
            raise OwnerProcessDied(f"proses WhatsApp pemilik tidak bisa dijalankan "
                                   f"({self._spawn_error})")
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
        if self.proc is None:
            return
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
        except _Refused as exc:
            raise neonize_failure("pair_phone", exc.failure) from exc
        except _Gone as exc:
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def logout(self) -> None:
        """Unlink the device (in the child).

        Raises:
            RuntimeError: the child is gone or the logout failed.
        """
        try:
            self._call("logout", timeout=30)
        except _Refused as exc:
            raise RuntimeError(f"logout gagal: {exc.failure[-1]}") from exc
        except _Gone as exc:
            raise RuntimeError("proses WhatsApp pemilik sudah berhenti") from exc

    def send_text(self, phone: str, text: str) -> str:
        """Send in the child; a child lost mid-send leaves the message uncertain."""
        try:
            return self._call("send_text", phone, text, timeout=120)
        except _Refused as exc:
            raise neonize_failure("send_text", exc.failure) from exc
        except _Gone as exc:
            if exc.delivered:
                raise SendFailure(ErrorKind.UNCERTAIN, SEND_LOST) from exc
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def lookup_numbers(self, *queries: str) -> Sequence:
        """``IsOnWhatsApp`` in the child."""
        try:
            return self._call("lookup_numbers", *queries, timeout=60)
        except _Refused as exc:
            raise neonize_failure("lookup_numbers", exc.failure) from exc
        except _Gone as exc:
            raise SendFailure(ErrorKind.NOT_CONNECTED, NOT_CONNECTED) from exc

    def phone_number(self) -> str | None:
        """The linked number, or ``None`` when unknown or the child is gone."""
        try:
            return self._call("phone_number", timeout=10)
        except (_Gone, _Refused):
            return None

    def hook(self, name: str, *args) -> None:
        """Test mode (``fake`` inner): ``pair`` / ``simulate`` on the double in the child."""
        try:
            self._call(name, *args, timeout=10)
        except (_Gone, _Refused) as exc:
            raise RuntimeError(f"{name} gagal: {exc}") from exc

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
