"""The owner process: ONE neonize client for ONE connect attempt (see :mod:`.process`).

Started as ``python -m fibernode.whatsapp.gateway.owner`` by
:class:`~.process.ProcessLinkClient`. It imports the standard library and neonize,
nothing of the app (no ORM, no database driver, no web stack): it starts faster
and stays smaller, and it cannot hold a database connection. Answers are raw
(message ids, protobuf answers, neonize's error text); the parent classifies them.

Messages on the socket, child → parent: ``("ready", info)``, ``("event", ev)``,
``("qr", code)``, ``("reply", call_id, (ok, value))``, ``("connect_returned",
error)``; parent → child: ``("connect",)``, ``("stop",)``, ``("call", call_id,
method, args)``. A failed call's value is ``("not_connected",)``,
``("neonize_error", text)``, ``("send_failure", kind, message)`` (the test double)
or ``("error", type, text)``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

CALLS = ("send_text", "lookup_numbers", "pair_phone", "logout", "phone_number")
FAKE_HOOKS = ("pair", "simulate")
INNER_KINDS = ("neonize", "fake")
DEVICE_NAME = "FiberNode"


class NotConnected(Exception):
    """The client is not (or no longer) registered with neonize, or not logged in."""


class NeonizeCallError(Exception):
    """neonize raised; the text is classified by the parent."""


class RawNeonize:
    """The neonize calls the gateway makes, answers unclassified.

    Mirrors :class:`~.clients.NeonizeLinkClient` (which runs in-process); errors come
    back as text so that classification stays in one place, the parent.
    """

    def __init__(self, owner_id: uuid.UUID, db_path: Path, emit, qr, proxy: str | None):
        from neonize import events as nev
        from neonize.client import NewClient
        from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

        self._proxy = proxy
        # The phone lists the linked device as "FiberNode"; CHROME matches PairPhone's type.
        props = DeviceProps(os=DEVICE_NAME, platformType=DeviceProps.CHROME)
        self._client = NewClient(str(db_path), uuid=str(owner_id), props=props)
        self._client.event.qr(lambda _c, data: qr(
            data.decode() if isinstance(data, bytes) else str(data)))
        for ev_type in (nev.ConnectedEv, nev.PairStatusEv, nev.LoggedOutEv, nev.TemporaryBanEv,
                        nev.ClientOutdatedEv, nev.DisconnectedEv, nev.StreamReplacedEv,
                        nev.ConnectFailureEv, nev.KeepAliveTimeoutEv, nev.KeepAliveRestoredEv,
                        nev.ReceiptEv):
            self._client.event(ev_type)(lambda _c, ev: emit(ev))

    def connect(self) -> None:
        """Run neonize's blocking connect, through the proxy if one is set."""
        from neonize._binder import ProxySettings

        self._client.connect(ProxySettings(proxy_address=self._proxy) if self._proxy else None)

    def stop(self) -> None:
        """Cancel the Go-side context."""
        self._client.stop()

    def _call(self, fn, *args):
        from neonize.exc import NeonizeError

        try:
            return fn(*args)
        except NeonizeError as exc:
            raise NeonizeCallError(str(exc)) from exc

    def send_text(self, phone: str, text: str) -> str:
        """Send a text; ``NotConnected`` unless logged in."""
        from neonize.utils.jid import build_jid

        if not self._client.is_logged_in:
            raise NotConnected
        return self._call(self._client.send_message, build_jid(phone), text).ID

    def lookup_numbers(self, *queries: str) -> list:
        """``IsOnWhatsApp`` for the queries as given."""
        return list(self._call(self._client.is_on_whatsapp, *queries))

    def pair_phone(self, phone: str) -> str:
        """``PairPhone`` with a push notification on the phone."""
        return self._call(self._client.PairPhone, phone, True)

    def logout(self) -> None:
        """Unlink the device on WhatsApp's side."""
        self._call(self._client.logout)

    def phone_number(self) -> str | None:
        """The linked device's number, if any."""
        return self._client.get_me().JID.User or None


class Host:
    """One client, every Go-touching call behind one lock.

    neonize's Go map of clients is written when the client registers (its connect
    starts) and when it is stopped. Calls before the first event (by then the client
    is registered) or after the stop are answered here and never reach Go.
    """

    def __init__(self, conn: Connection, args: argparse.Namespace):
        self.conn = conn
        self.inner = args.inner
        self._send_lock = threading.Lock()
        self.go = threading.Lock()  # everything that touches neonize's client map
        self.up = False
        self.closing = False
        self.connect_started = threading.Event()
        self.connect_ended = threading.Event()
        owner_id, db_path = uuid.UUID(args.owner), Path(args.db)
        if self.inner == "neonize":
            self.client = RawNeonize(owner_id, db_path, self.on_event, self.on_qr, args.proxy)
        else:  # the test double, per process (its module loads the app: tests only)
            from fibernode.whatsapp.gateway.clients import FakeBackend, FakeWorld

            backend = FakeBackend(FakeWorld(qr_interval_s=args.qr_interval))
            self.client = backend.create(owner_id, db_path, self.on_event)

    def post(self, message: tuple) -> None:
        """Send one message to the parent."""
        with self._send_lock:
            self.conn.send(message)

    def _forward(self, message: tuple) -> None:
        # On a Go callback thread: no Go lock here (Stop may be waiting for this callback).
        self.up = True
        try:
            self.post(message)
        except (OSError, ValueError):
            self.exit()  # the parent is gone

    def on_event(self, ev: object) -> None:
        """A neonize event: forward it."""
        self._forward(("event", ev))

    def on_qr(self, code: str) -> None:
        """A QR payload: forward it."""
        self._forward(("qr", code))

    def serve(self) -> None:
        """Read the parent's messages until it goes away."""
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
        """The one connect attempt; the process ends when it returns."""
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
        """Stop the client and end the process."""
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
        """Run one call and reply (refused before registration / after stop)."""
        allowed = CALLS + (FAKE_HOOKS if self.inner == "fake" else ())
        try:
            if method not in allowed:
                raise ValueError(f"unknown call {method}")
            with self.go:
                if not self.up or self.closing:
                    if method in CALLS[:4]:
                        raise NotConnected
                    reply = (True, None)  # phone_number, hooks
                else:
                    reply = (True, getattr(self.client, method)(*args))
        except NotConnected:
            reply = (False, ("not_connected",))
        except NeonizeCallError as exc:
            reply = (False, ("neonize_error", str(exc)))
        except Exception as exc:
            kind = getattr(exc, "kind", None)  # the double's SendFailure
            if kind is not None:
                reply = (False, ("send_failure", str(kind), getattr(exc, "message", str(exc))))
            else:
                reply = (False, ("error", type(exc).__name__, str(exc)))
        try:
            self.post(("reply", call_id, reply))
        except (OSError, ValueError):
            self.exit()

    def exit(self) -> None:
        """End the process now (Go threads included)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


HEAVY = ("sqlalchemy", "sqlmodel", "psycopg", "fastapi", "uvicorn", "reflex", "celery", "redis")


def main(argv: list[str] | None = None) -> None:
    """Host one client until its connect returns, the parent says stop, or goes away."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--inner", choices=INNER_KINDS, required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--proxy")
    parser.add_argument("--qr-interval", type=float, default=20.0)
    args = parser.parse_args(argv)
    # The parent stops us; a terminal's Ctrl+C goes to the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING,
                        format=f"%(asctime)s wa-owner[{args.owner[:8]}] %(levelname)s %(message)s")
    conn = Connection(args.fd)
    host = Host(conn, args)
    host.post(("ready", {"pid": os.getpid(),
                         "modules": sorted(m for m in HEAVY if m in sys.modules)}))
    host.serve()


if __name__ == "__main__":
    main()
