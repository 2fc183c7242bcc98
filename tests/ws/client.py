"""A browser tab on Reflex's websocket, spoken on the wire like the compiled frontend.

Reflex 0.10.1's ``.web/utils/state.js`` opens socket.io (engine.io v4, websocket
transport only) at ``/_event/?EIO=4&transport=websocket&token=<tab id>`` on the
``/_event`` namespace. The tab's boot event (``hydrate_and_load`` with the
client-storage values the page's JavaScript can read) rides in the socket.io
CONNECT packet's auth payload (``{"event": ...}``); every later event is
``42/_event,["event", {name, payload, router_data}]`` and the server answers
with ``42/_event,["event", {delta, events}]`` (``reflex.state.StateUpdate``).

:class:`Tab` sends the handshake a browser sends for a same-origin page: the
``Cookie`` header (the jar's cookies), ``Origin`` and ``User-Agent``. Like the
frontend it copies the cookies scripts can read (those without ``HttpOnly``)
into the boot event for the state's ``rx.Cookie`` vars, and writes back the
cookie vars a delta sets, so a test sees exactly what the browser would send.

There is no "done" marker in Reflex's protocol (``StateUpdate.final`` is gone),
so :meth:`Tab.send` follows each event with barriers: ``update_vars_internal``
setting the layout's ``sidebar_collapsed`` (the one var any client may push, as
the page does for its localStorage) takes the same per-tab state lock, so its
small delta arrives after every delta of the events sent before it; further
barriers catch events those events chained on the server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

NAMESPACE = "/_event"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) fibernode-ws-test"
ROOT = "reflex___state____state"
UI_STATE = f"{ROOT}.fibernode___state___ui___ui_state"
# The one client-storage var every client (even without a session) may push.
BARRIER = f"{ROOT}.reflex___state____update_vars_internal_state.update_vars_internal"
FIELD_MARKER = "_rx_state_"


class ProtocolError(AssertionError):
    """The server did not answer the way Reflex's frontend expects."""


class ConnectionClosed(ProtocolError):
    """The server closed the websocket (or refused the handshake)."""


class WireSocket:
    """A blocking websocket client on wsproto that sends the handshake a browser sends.

    ``Host`` carries the port (``simple-websocket`` leaves it out, which a
    same-origin check rightly refuses), and the caller's headers go as given.
    """

    def __init__(self, url: str, headers: dict[str, str], subprotocols: list[str]) -> None:
        parts = urlsplit(url)
        port = parts.port or 80
        self.sock = socket.create_connection((parts.hostname, port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[str] = []
        self.buffer: list[str] = []
        self.closed: str | None = None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sock.sendall(self.ws.send(Request(
            host=f"{parts.hostname}:{port}", target=target, subprotocols=subprotocols,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers.items()])))
        deadline = time.monotonic() + 10
        while True:
            for event in self._pump(deadline):
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    raise ConnectionClosed(f"handshake refused: HTTP {event.status_code}")

    def _pump(self, deadline: float):
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return []
        if not data:
            self.closed = "connection dropped"
            raise ConnectionClosed(self.closed)
        self.ws.receive_data(data)
        events = []
        for event in self.ws.events():
            if isinstance(event, Ping):
                self.sock.settimeout(10)
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = f"closed {event.code} {event.reason}"
                with contextlib.suppress(Exception):  # the peer may be gone already
                    self.sock.sendall(self.ws.send(event.response()))
                raise ConnectionClosed(self.closed)
            elif isinstance(event, TextMessage):
                self.buffer.append(event.data)
                if event.message_finished:
                    self.pending.append("".join(self.buffer))
                    self.buffer = []
            elif isinstance(event, BytesMessage):
                continue
            events.append(event)
        return events

    def send(self, text: str) -> None:
        """Send one text frame."""
        self.sock.settimeout(10)  # a receive may have left a tiny timeout behind
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def receive(self, timeout: float) -> str | None:
        """The next text message, or ``None`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            if time.monotonic() >= deadline:
                return None
            self._pump(deadline)
        return self.pending.pop(0)

    def close(self) -> None:
        """Close politely, then drop the TCP connection."""
        try:
            if self.closed is None:
                self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.sock.close()


@dataclass
class Update:
    """One ``StateUpdate`` the server sent: its delta and its frontend events."""

    delta: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def text(self) -> str:
        """The whole update as the wire carries it (for substring oracles)."""
        return json.dumps({"delta": self.delta, "events": self.events}, ensure_ascii=False)


@dataclass
class Reply:
    """Everything the server sent in answer to one event (barriers removed)."""

    updates: list[Update] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Every update's text, joined."""
        return "\n".join(u.text for u in self.updates)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every frontend event (toasts, redirects, cookie removals) in order."""
        return [e for u in self.updates for e in u.events]

    def var(self, state: str, name: str, default: Any = None) -> Any:
        """The last value a delta gave ``state``'s var ``name`` (short state name ok)."""
        value = default
        for update in self.updates:
            for key, vars_ in update.delta.items():
                if key == state or key.endswith("." + state):
                    for var_name in (name, name + FIELD_MARKER):
                        if var_name in vars_:
                            value = vars_[var_name]
        return value

    def toasts(self) -> list[str]:
        """Titles and descriptions of every toast sent."""
        out = []
        for event in self.events:
            if event.get("name") == "_call_function":
                fn = json.dumps(event.get("payload", {}), ensure_ascii=False)
                if "toast" in fn:
                    out.append(fn)
        return out

    def redirects(self) -> list[str]:
        """Paths of every ``rx.redirect``."""
        return [e["payload"].get("path", "") for e in self.events if e.get("name") == "_redirect"]


def client_storage_cookies() -> dict[str, dict[str, Any]]:
    """The ``rx.Cookie`` vars of the app's state tree, as the compiled context.js lists them."""
    from reflex.compiler.utils import compile_client_storage
    from reflex.state import State

    import fibernode.fibernode  # noqa: F401  (the app's states join the tree on import)

    return compile_client_storage(State)["cookies"]


class Tab:
    """One browser tab: a tab id (``sessionStorage`` token), a cookie jar and a socket."""

    def __init__(self, base_url: str, *, token: str | None = None,
                 cookies: dict[str, str] | None = None, http_only: set[str] | None = None,
                 origin: str | None = None, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or str(uuid.uuid4())
        self.cookies: dict[str, str] = dict(cookies or {})
        # Cookies scripts cannot read (``HttpOnly``) never reach a ``hydrate`` payload.
        self.http_only: set[str] = set(http_only or ())
        self.origin = origin or self.base_url
        self.timeout = timeout
        self.ws: WireSocket | None = None
        self.sidebar = "0"
        self.boot: Reply | None = None
        # The page the tab shows: every event (barriers too) carries its router data.
        self.page: tuple[str, dict[str, str] | None] = ("/", None)

    # --- the wire -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Origin": self.origin, "User-Agent": USER_AGENT}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _recv(self, deadline: float) -> str:
        assert self.ws is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("timed out waiting for the server")
            packet = self.ws.receive(timeout=left)
            if packet is None:
                continue
            if packet == "2":  # engine.io ping: answer like socket.io-client
                self.ws.send("3")
                continue
            return packet

    def _emit(self, event: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.send(f"42{NAMESPACE}," + json.dumps(["event", event]))

    def _read_update(self, deadline: float) -> Update | None:
        packet = self._recv(deadline)
        prefix = f"42{NAMESPACE},"
        if not packet.startswith(prefix):
            if packet.startswith(f"41{NAMESPACE}"):
                raise ProtocolError("the server disconnected the namespace")
            return None  # other socket events (pong, new_token, state mismatch)
        name, *args = json.loads(packet[len(prefix):])
        if name != "event":
            return None
        body = args[0] if args else {}
        return Update(delta=body.get("delta") or {}, events=body.get("events") or [])

    # --- what a page does ---------------------------------------------------------------

    def event(self, name: str, payload: dict[str, Any] | None = None,
              path: str = "/", query: dict[str, str] | None = None) -> dict[str, Any]:
        """An event as ``withRouterData`` fills it in for ``path``."""
        name = name if name.startswith(ROOT) else f"{ROOT}.{name}"
        router = {"pathname": _route_pattern(path), "asPath": path}
        if query:
            router["query"] = dict(query)
        return {"name": name, "payload": payload or {}, "router_data": router}

    def readable_cookie_vars(self) -> dict[str, str]:
        """What ``hydrateClientStorage`` finds in ``document.cookie`` for the state's vars."""
        out = {}
        for state_key, options in client_storage_cookies().items():
            cookie = options.get("name") or state_key
            if cookie in self.cookies and cookie not in self.http_only:
                out[state_key] = self.cookies[cookie]
        return out

    def connect(self, path: str = "/", query: dict[str, str] | None = None) -> Reply:
        """Open the socket with the boot event, as the frontend does on page load."""
        self.close()
        host = self.base_url.split("://", 1)[1]
        url = f"ws://{host}/_event/?EIO=4&transport=websocket&token={self.token}"
        self.ws = WireSocket(url, self._headers(), [_reflex_version()])
        deadline = time.monotonic() + self.timeout
        opened = self._recv(deadline)
        if not opened.startswith("0"):
            raise ProtocolError(f"expected the engine.io open packet, got {opened[:80]!r}")
        payload: dict[str, Any] = {}
        if vars_ := self.readable_cookie_vars():
            payload["vars"] = vars_
        self.page = (path, query)
        boot = self.event("hydrate_and_load", payload, path, query)
        self.ws.send(f"40{NAMESPACE}," + json.dumps({"event": boot}))
        while True:
            packet = self._recv(deadline)
            if packet.startswith(f"40{NAMESPACE}"):
                break
            if packet.startswith(f"44{NAMESPACE}"):
                raise ProtocolError(f"connect refused: {packet}")
        self.boot = self._collect(deadline)
        return self.boot

    def send(self, name: str, payload: dict[str, Any] | None = None, path: str = "/",
             query: dict[str, str] | None = None) -> Reply:
        """Send one event and collect every update it causes."""
        if self.ws is None:
            self.connect(path, query)
        self.page = (path, query)
        self._emit(self.event(name, payload, path, query))
        return self._collect(time.monotonic() + self.timeout)

    def _drain(self) -> None:
        """Drop what arrived after the last barrier (it belongs to the previous event)."""
        assert self.ws is not None
        while (packet := self.ws.receive(timeout=0.001)) is not None:
            if packet == "2":
                self.ws.send("3")

    def settle(self, seconds: float = 0.03) -> Reply:
        """What still arrives a moment later (a crash's notice comes after the handler's lock)."""
        time.sleep(seconds)
        return self._collect(time.monotonic() + self.timeout)

    def _collect(self, deadline: float) -> Reply:
        reply = Reply()
        for _ in range(3):  # later barriers wait out events chained on the server
            expected = "1" if self.sidebar == "0" else "0"
            self._emit(self.event(BARRIER, {"vars": {f"{UI_STATE}.sidebar_collapsed": expected}},
                                  *self.page))
            while True:
                update = self._read_update(deadline)
                if update is None:
                    continue
                if _sidebar(update) == expected and not _is_snapshot(update):
                    # The barrier's delta; it may carry what a failed event left dirty.
                    self.sidebar = expected
                    update.delta.pop(UI_STATE)
                    if update.delta or update.events:
                        reply.updates.append(update)
                    break
                if (value := _sidebar(update)) is not None:
                    self.sidebar = value
                reply.updates.append(update)
                self._apply_cookies(update)
        return reply

    def _apply_cookies(self, update: Update) -> None:
        """Write the cookie vars a delta sets and honour ``_remove_cookie``, as state.js does."""
        storage = client_storage_cookies()
        for state_name, vars_ in update.delta.items():
            for var, value in vars_.items():
                options = storage.get(f"{state_name}.{var}")
                if options is not None:
                    cookie = options.get("name") or f"{state_name}.{var}"
                    if value in ("", None):
                        self.cookies.pop(cookie, None)
                    else:
                        self.cookies[cookie] = str(value)
        for event in update.events:
            if event.get("name") == "_remove_cookie":
                self.cookies.pop(event.get("payload", {}).get("key", ""), None)

    def close(self) -> None:
        """Close the socket (the tab id and the cookie jar stay, like a reload)."""
        if self.ws is not None:
            with contextlib.suppress(Exception):  # already closed by the server
                self.ws.close()
            self.ws = None


def _is_snapshot(update: Update) -> bool:
    """A hydrate's full snapshot (it always resets ``is_hydrated``)."""
    return update.delta.get(ROOT, {}).get("is_hydrated" + FIELD_MARKER) is False


def _sidebar(update: Update) -> str | None:
    value = update.delta.get(UI_STATE, {}).get("sidebar_collapsed" + FIELD_MARKER)
    return value if isinstance(value, str) else None


def _route_pattern(path: str) -> str:
    """The page's route as React Router reports ``pathname`` (the concrete path)."""
    return path.split("?", 1)[0]


def _reflex_version() -> str:
    from reflex_base import constants

    return constants.Reflex.VERSION
