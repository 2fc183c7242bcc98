"""The session manager: one thread and one client per owner, one owner per process.

Rules it keeps:

- **one live connection per number** — a session runs only while this process
  holds the owner's lock (:mod:`.locks`); a second gateway gets a refusal, and a
  refused resume is retried with backoff until the lock frees (rolling deploy, a
  second gateway shutting down). A lock lost with its database connection stops
  the owner's client at once; the owner is then resumed once the lock is ours again;
- **one start/stop at a time** — a single lock around starting and stopping;
- **reconnect after a drop** with exponential backoff, never after a logout, a
  ban, an outdated client or a replaced stream (those need a person);
- **no hanging links** — a watchdog ends a QR / pairing-code window that lapsed
  without pairing: the row says ``link_expired`` and the client is stopped;
- **sends are idempotent** — :class:`~.store.SentKeys` remembers each key.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fibernode import clock
from fibernode.models import WaSessionStatus
from fibernode.services.wa_receipts import StatusUpdate, record_status_updates
from fibernode.services.wa_sessions import SessionEvent, record_event
from fibernode.whatsapp.base import NOT_CONNECTED_MESSAGE, ErrorKind, GatewayError, SentLookup
from fibernode.whatsapp.gateway import events as gev
from fibernode.whatsapp.gateway.clients import Backend, LinkClient, SendFailure
from fibernode.whatsapp.gateway.locks import OwnerLocks
from fibernode.whatsapp.gateway.process import OwnerProcessDied
from fibernode.whatsapp.gateway.store import SENT, SentKeys

log = logging.getLogger(__name__)

LOCKED_ELSEWHERE = "Sesi WhatsApp ini sedang dijalankan oleh proses wa-gateway lain."
LINK_EXPIRED = "Waktu menautkan habis. Minta QR atau kode pairing baru."
LOCK_LOST = ("Koneksi gateway ke database terputus; sesi dihentikan sementara dan "
             "disambung lagi otomatis.")
MAX_CHECK = 50
MAX_LINK_RESTARTS = 3  # a process crashing again and again while linking: give up
_PHONE = re.compile(r"62\d{8,13}")


@dataclass
class Timings:
    """How long things take (shortened by tests)."""

    # whatsmeow (qrchan.go) shows six QR refs: the first for 60 s, each later one 20 s,
    # then gives up; the window is the whole round (60 s + 5 x 20 s).
    first_qr_ttl_s: float = 60.0
    qr_ttl_s: float = 20.0
    link_window_s: float = 160.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    reconnect_grace_s: float = 30.0  # after a drop, wait this long for auto-reconnect
    watchdog_interval_s: float = 1.0
    check_delay_s: float = 1.5       # between number checks of one session
    start_wait_s: float = 5.0        # how long link start waits for a QR / code
    resume_retry_base_s: float = 1.0  # a refused resume: first retry, doubling ...
    resume_retry_max_s: float = 10.0  # ... up to this (a deploy frees the lock in seconds)
    lock_check_interval_s: float = 5.0  # how often held locks are checked for a lost connection


@dataclass
class Session:
    """One running owner."""

    owner_id: uuid.UUID
    method: str = "qr"
    pair_phone: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)  # QR / code / connected
    client: LinkClient | None = None
    thread: threading.Thread | None = None
    connected: bool = False
    paired: bool = False
    terminal: bool = False
    client_up: bool = False  # the client got as far as offering a QR
    qr_seen: int = 0  # QR codes offered by the current client
    expired: bool = False
    attempt: int = 0
    link_deadline: datetime | None = None
    status: WaSessionStatus = WaSessionStatus.CONNECTING
    phone: str | None = None
    qr_code: str | None = None
    pairing_code: str | None = None
    expires_at: datetime | None = None
    banned_until: datetime | None = None
    error: str | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    check_lock: threading.Lock = field(default_factory=threading.Lock)
    drop_timer: threading.Timer | None = None

    def state(self) -> dict:
        """JSON view for the HTTP API."""
        return {"status": str(self.status), "phone_number": self.phone,
                "qr_code": self.qr_code, "pairing_code": self.pairing_code,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "expired": self.expired, "running": not self.stop.is_set(),
                "banned_until": self.banned_until.isoformat() if self.banned_until else None,
                "error": self.error}


class SessionManager:
    """Runs every owner's session from this process.

    With :class:`~.process.ProcessBackend` each connect attempt's client lives in a
    process of its own; a dead one is retried with the backoff of a dropped connection.

    Args:
        sessions_dir: Where auth stores (``<owner>.sqlite3``) and ``gateway.sqlite3`` live.
        backend: Builds clients (neonize, or the test double).
        locks: Per-owner locks (advisory locks on PostgreSQL).
        timings: Intervals and windows.
        record: Where session facts go (``wa_sessions.record_event``).
        record_statuses: Where delivery / read receipts go.
    """

    def __init__(self, sessions_dir: Path, backend: Backend, locks: OwnerLocks, *,
                 timings: Timings | None = None,
                 record: Callable[[uuid.UUID, SessionEvent], object] | None = None,
                 record_statuses: Callable[[list[StatusUpdate]], object] | None = None):
        self.sessions_dir = Path(sessions_dir)
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self.locks = locks
        self.timings = timings or Timings()
        self._record = record or (lambda owner, ev: record_event(owner, ev, source="neonize"))
        self._record_statuses = record_statuses or (
            lambda ups: record_status_updates(ups, source="neonize"))
        self.sent_keys = SentKeys(self.sessions_dir / "gateway.sqlite3")
        self.sessions: dict[uuid.UUID, Session] = {}
        self._ops = threading.Lock()  # start / stop one at a time
        self._map = threading.Lock()  # the sessions dict and lock hand-over
        self._closing = threading.Event()
        self._watchdog: threading.Thread | None = None
        # Owners to resume once their lock frees: owner -> (attempts, due on time.monotonic()).
        self._pending_resume: dict[uuid.UUID, tuple[int, float]] = {}

    # -- paths ---------------------------------------------------------------
    def db_path(self, owner_id: uuid.UUID) -> Path:
        """The owner's auth store: one SQLite file per owner."""
        return self.sessions_dir / f"{owner_id}.sqlite3"

    # -- lifecycle -------------------------------------------------------------
    def start_background(self, *, resume: bool = True) -> None:
        """Start the watchdog and (by default) resume every linked owner."""
        self._watchdog = threading.Thread(target=self._watch, name="wa-watchdog", daemon=True)
        self._watchdog.start()
        # Apart from the watchdog: a lock check can hang as long as the database is away.
        threading.Thread(target=self._watch_locks, name="wa-lockwatch", daemon=True).start()
        if resume:
            self.resume_all()

    def resume_all(self) -> list[uuid.UUID]:
        """Reconnect every owner whose auth store holds credentials.

        An owner another gateway still holds (a rolling deploy, a second instance) is
        not given up: the watchdog retries it with backoff until the lock frees.

        Returns:
            The owners resumed now.
        """
        resumed = []
        for path in sorted(self.sessions_dir.glob("*.sqlite3")):
            try:
                owner_id = uuid.UUID(path.stem)
            except ValueError:
                continue  # gateway.sqlite3 and strangers
            if not self.backend.has_credentials(path):
                continue
            if self._try_resume(owner_id):
                resumed.append(owner_id)
        return resumed

    def pending_resumes(self) -> list[uuid.UUID]:
        """Owners waiting for their lock to be resumed."""
        with self._map:
            return list(self._pending_resume)

    def _try_resume(self, owner_id: uuid.UUID) -> bool:
        try:
            self.start(owner_id, method="resume", wait=False)
        except Exception as exc:  # refused (locked elsewhere) or the database is away
            self._defer_resume(owner_id, getattr(exc, "message", None) or str(exc))
            return False
        with self._map:
            self._pending_resume.pop(owner_id, None)
        return True

    def _defer_resume(self, owner_id: uuid.UUID, why: str) -> None:
        with self._map:
            attempt = self._pending_resume.get(owner_id, (0, 0.0))[0] + 1
            delay = min(self.timings.resume_retry_max_s,
                        self.timings.resume_retry_base_s * 2 ** (attempt - 1))
            self._pending_resume[owner_id] = (attempt, time.monotonic() + delay)
        # Loud the first time (and now and then), quiet while a second gateway holds on.
        level = logging.WARNING if attempt % 30 == 1 else logging.DEBUG
        log.log(level, "resume of %s refused (%s); retry %d in %gs", owner_id, why, attempt,
                delay)

    def retry_resumes(self) -> list[uuid.UUID]:
        """Try again every refused resume that is due; returns the owners resumed."""
        now = time.monotonic()
        with self._map:
            due = [o for o, (_, at) in self._pending_resume.items() if at <= now]
        resumed = []
        for owner_id in due:
            if self._closing.is_set():
                break
            s = self.sessions.get(owner_id)
            if (s is not None and not s.stop.is_set()) or not self.backend.has_credentials(
                    self.db_path(owner_id)):
                # Started meanwhile (the owner linked again), or unlinked: nothing to do.
                with self._map:
                    self._pending_resume.pop(owner_id, None)
                continue
            if self._try_resume(owner_id):
                resumed.append(owner_id)
        return resumed

    def check_locks(self) -> list[uuid.UUID]:
        """Stop every owner whose lock went with its database connection; resume it later.

        Another gateway may take the number as soon as the lock is gone, so this
        process stops the client first and re-acquires through the resume retries.
        """
        lost = self.locks.lost()
        for owner_id in lost:
            log.error("lock of %s lost with its database connection; stopping it", owner_id)
            self.stop(owner_id, reason=LOCK_LOST)
            if not self._closing.is_set():
                self._defer_resume(owner_id, "lock lost")
        return lost

    def shutdown(self) -> None:
        """Stop every session and release every lock."""
        self._closing.set()
        for owner_id in list(self.sessions):
            self.stop(owner_id, reason="Layanan wa-gateway berhenti; sesi disambung lagi "
                                       "saat layanan berjalan.")
        self.locks.release_all()

    def start(self, owner_id: uuid.UUID, *, method: str = "qr", phone: str | None = None,
              wait: bool = True) -> dict:
        """Start (or continue) linking / connecting the owner's number.

        Args:
            owner_id: Whose number.
            method: ``qr``, ``code`` (pairing code for ``phone``) or ``resume``.
            phone: The number to pair by code (``62…``).
            wait: Wait briefly for the first QR / code / connection.

        Raises:
            GatewayError: another process holds the number, or the phone is invalid.
        """
        if method == "code" and not (phone and _PHONE.fullmatch(phone)):
            raise GatewayError(ErrorKind.INVALID,
                               "Nomor untuk kode pairing harus diawali 62 (10-15 digit).")
        with self._ops:
            s = self.sessions.get(owner_id)
            if s is not None and not s.stop.is_set():
                if method == "code" and not s.paired and s.pairing_code is None:
                    s.method, s.pair_phone = "code", phone
                    if s.client_up:  # the client is already up: ask now
                        self._request_code(s)
                return s.state()
            if s is not None and s.thread is not None:
                s.thread.join(timeout=15)  # a stopped session still winding down
            with self._map:
                if s is not None and self.sessions.get(owner_id) is s:
                    del self.sessions[owner_id]
                    self.locks.release(owner_id)
                if not self.locks.acquire(owner_id):
                    raise GatewayError(ErrorKind.NOT_CONNECTED, LOCKED_ELSEWHERE)
                s = Session(owner_id=owner_id, method=method, pair_phone=phone)
                self.sessions[owner_id] = s
            s.thread = threading.Thread(target=self._run, args=(s,), daemon=True,
                                        name=f"wa-{owner_id}")
            self._put(s, SessionEvent(status=WaSessionStatus.CONNECTING, clear_link=True,
                                      link_expired=False, error="",
                                      link_method=None if method == "resume" else method))
            s.thread.start()
        if wait:
            s.ready.wait(self.timings.start_wait_s)
        return s.state()

    def stop(self, owner_id: uuid.UUID, *, logout: bool = False,
             reason: str = "Sesi WhatsApp dihentikan.") -> None:
        """Stop the owner's client; with ``logout`` also unlink and forget the auth store."""
        with self._map:
            self._pending_resume.pop(owner_id, None)  # a stop is not undone by a retry
        with self._ops:
            s = self.sessions.get(owner_id)
            if s is not None:
                was_live = not s.stop.is_set()
                s.stop.set()
                client = s.client
                if logout and client is not None and s.connected:
                    try:
                        client.logout()
                    except Exception:
                        log.warning("logout of %s failed", owner_id, exc_info=True)
                if client is not None:
                    client.stop()
                if s.thread is not None and s.thread is not threading.current_thread():
                    s.thread.join(timeout=15)
            if logout:
                self.backend.forget(self.db_path(owner_id))
                self._put(s, SessionEvent(status=WaSessionStatus.DISCONNECTED,
                                          clear_link=True, error=""), owner_id=owner_id)
            elif s is not None and was_live:
                self._put(s, SessionEvent(status=WaSessionStatus.DISCONNECTED,
                                          clear_link=True, error=reason))

    def state(self, owner_id: uuid.UUID) -> dict:
        """What this gateway knows about the owner right now."""
        s = self.sessions.get(owner_id)
        if s is None:
            return {"status": str(WaSessionStatus.DISCONNECTED), "running": False,
                    "has_credentials": self.backend.has_credentials(self.db_path(owner_id))}
        return {**s.state(),
                "has_credentials": self.backend.has_credentials(self.db_path(owner_id))}

    # -- the session thread ----------------------------------------------------
    def _run(self, s: Session) -> None:
        try:
            while not s.stop.is_set():
                client = self.backend.create(s.owner_id, self.db_path(s.owner_id),
                                             lambda ev, s=s: self._on_event(s, ev))
                s.client = client
                s.qr_seen = 0
                if s.stop.is_set():  # stopped while this client was being made
                    client.stop()
                    break
                crashed = False
                try:
                    client.connect()
                except Exception as exc:
                    log.warning("client of %s failed: %s", s.owner_id, exc)
                    self._put(s, SessionEvent(error=f"Gagal terhubung ke WhatsApp: {exc}"))
                    # The owner's process died (crash, kill): restart it, even mid-link.
                    crashed = isinstance(exc, OwnerProcessDied)
                s.connected = False
                if s.stop.is_set() or s.terminal or self._closing.is_set():
                    break
                relink = crashed and s.attempt < MAX_LINK_RESTARTS
                if not s.paired and not relink \
                        and not self.backend.has_credentials(self.db_path(s.owner_id)):
                    # Never linked: a new QR round is the owner's call, not ours.
                    self._expire(s)
                    break
                s.attempt += 1
                delay = min(self.timings.backoff_max_s,
                            self.timings.backoff_base_s * 2 ** (s.attempt - 1))
                self._put(s, SessionEvent(status=WaSessionStatus.CONNECTING, error=(
                    f"Koneksi terputus; menyambung ulang dalam {delay:g} detik.")))
                s.stop.wait(delay)
        finally:
            s.stop.set()
            if s.drop_timer is not None:
                s.drop_timer.cancel()
            # Not under _ops: stop() holds it while joining this thread.
            with self._map:
                if self.sessions.get(s.owner_id) is s:
                    del self.sessions[s.owner_id]
                    self.locks.release(s.owner_id)

    def _on_event(self, s: Session, ev: object) -> None:
        """Every client event lands here (on the client's thread)."""
        try:
            self._handle(s, ev)
        except Exception:
            log.exception("event %s of %s failed", type(ev).__name__, s.owner_id)

    def _handle(self, s: Session, ev: object) -> None:
        receipt = gev.map_receipt(ev)
        if receipt is not None:
            # The key lets a receipt find a row whose send was settled by key after its
            # worker died, which never learnt the message id.
            self._record_statuses([
                StatusUpdate(provider_message_id=m, status=receipt.kind, at=receipt.at,
                             idempotency_key=self.sent_keys.key_of(s.owner_id, m))
                for m in receipt.message_ids])
            return
        now = clock.now()
        if isinstance(ev, gev.QrIssued):
            if s.stop.is_set() or s.paired:
                return  # a late QR of a stopped or linked session: nothing to scan
            if s.link_deadline is None:
                s.link_deadline = now + timedelta(seconds=self.timings.link_window_s)
            ttl = self.timings.first_qr_ttl_s if s.qr_seen == 0 else self.timings.qr_ttl_s
            s.qr_seen += 1
            expires = min(now + timedelta(seconds=ttl), s.link_deadline)
            s.client_up = True
            if s.method == "code":  # the client is up; the code is what the owner sees
                if s.pairing_code is None and s.pair_phone:
                    threading.Thread(target=self._request_code, args=(s,), daemon=True).start()
                return
            ev = gev.QrIssued(ev.code, expires)
        if gev.is_paired(ev):
            s.paired = True
            s.link_deadline = None
            # whatsmeow reconnects after a pairing; should that reconnect fail, it never
            # says so: after the grace period restart the client from the new credentials.
            self._arm_drop_timer(s)
        mapped = gev.map_event(ev, now=now, phone=self._phone(s))
        if gev.is_connected(ev):
            s.connected = s.paired = True
            s.attempt = 0
            s.link_deadline = None
            if s.drop_timer is not None:
                s.drop_timer.cancel()
        if gev.is_terminal(ev):
            s.terminal = True
            s.connected = False
            self._stop_client_soon(s)
        elif gev.is_drop(ev):
            s.connected = False
            self._arm_drop_timer(s)
        if mapped is not None:
            self._put(s, mapped)
        if isinstance(ev, gev.QrIssued | gev.PairCodeIssued) or gev.is_connected(ev):
            s.ready.set()

    def _phone(self, s: Session) -> str | None:
        client = s.client
        return client.phone_number() if client is not None else None

    def _request_code(self, s: Session) -> None:
        client = s.client
        if client is None or not s.pair_phone:
            return
        try:
            code = client.pair_phone(s.pair_phone)
        except SendFailure as exc:
            self._put(s, SessionEvent(error=exc.message))
            s.ready.set()
            return
        now = clock.now()
        if s.link_deadline is None:
            s.link_deadline = now + timedelta(seconds=self.timings.link_window_s)
        self._handle_mapped(s, gev.PairCodeIssued(code, s.link_deadline))
        s.ready.set()

    def _handle_mapped(self, s: Session, ev: object) -> None:
        mapped = gev.map_event(ev)
        if mapped is not None:
            self._put(s, mapped)

    def _stop_client_soon(self, s: Session) -> None:
        # Never stop a neonize client from inside its own callback: hand it off.
        s.stop.set()
        client = s.client
        if client is not None:
            threading.Thread(target=client.stop, daemon=True).start()

    def _arm_drop_timer(self, s: Session) -> None:
        """After a drop, give whatsmeow's own reconnect a grace period, then restart."""
        if s.drop_timer is not None:
            s.drop_timer.cancel()

        def restart() -> None:
            if not s.connected and not s.stop.is_set() and s.client is not None:
                s.client.stop()  # connect() returns; _run reconnects with backoff

        s.drop_timer = threading.Timer(self.timings.reconnect_grace_s, restart)
        s.drop_timer.daemon = True
        s.drop_timer.start()

    def _put(self, s: Session | None, event: SessionEvent, *,
             owner_id: uuid.UUID | None = None) -> None:
        """Mirror ``event`` in memory and store it in ``wa_sessions``."""
        if s is not None:
            if event.clear_link or event.status in (WaSessionStatus.CONNECTED,
                                                    WaSessionStatus.LOGGED_OUT):
                s.qr_code = s.pairing_code = s.expires_at = None
            for name, attr in (("status", "status"), ("phone_number", "phone"),
                               ("qr_code", "qr_code"), ("pairing_code", "pairing_code"),
                               ("link_expires_at", "expires_at"),
                               ("banned_until", "banned_until"), ("link_expired", "expired")):
                value = getattr(event, name)
                if value is not None:
                    setattr(s, attr, value)
            if event.error is not None:
                s.error = event.error or None
        try:
            self._record(owner_id or s.owner_id, event)
        except Exception:
            log.exception("could not record a session event")

    # -- watchdog ------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._closing.wait(self.timings.watchdog_interval_s):
            for step in (self.check_expired, self.retry_resumes):
                try:
                    step()
                except Exception:
                    log.exception("watchdog step %s failed", step.__name__)

    def _watch_locks(self) -> None:
        while not self._closing.wait(self.timings.lock_check_interval_s):
            try:
                self.check_locks()
            except Exception:
                log.exception("lock check failed")

    def check_expired(self, now: datetime | None = None) -> list[uuid.UUID]:
        """End every link window that lapsed without pairing; returns those owners."""
        now = now or clock.now()
        expired = []
        for s in list(self.sessions.values()):
            if (s.link_deadline is not None and not s.paired and not s.stop.is_set()
                    and now >= s.link_deadline):
                self._expire(s)
                expired.append(s.owner_id)
        return expired

    def _expire(self, s: Session) -> None:
        if s.expired:
            return
        s.stop.set()
        s.expired = True
        self._put(s, SessionEvent(status=WaSessionStatus.DISCONNECTED, clear_link=True,
                                  link_expired=True, error=LINK_EXPIRED))
        client = s.client
        if client is not None:
            client.stop()

    # -- sending -------------------------------------------------------------------
    def send(self, owner_id: uuid.UUID, phone: str, text: str, key: str) -> dict:
        """Send once per ``key``; a repeat returns the first message id."""
        record = self.sent_keys.get(owner_id, key)
        if record is not None and record.status == SENT:
            return {"ok": True, "message_id": record.message_id, "duplicate": True}
        s = self.sessions.get(owner_id)
        if s is None or not s.connected or s.client is None:
            return _failed(ErrorKind.NOT_CONNECTED, NOT_CONNECTED_MESSAGE)
        if not _PHONE.fullmatch(phone or ""):
            return _failed(ErrorKind.INVALID, "Nomor WhatsApp tidak valid.")
        if not (text or "").strip():
            return _failed(ErrorKind.INVALID, "Isi pesan kosong.")
        with s.send_lock:  # one message in flight per number
            existing = self.sent_keys.begin(owner_id, key)
            if existing is not None:
                if existing.status == SENT:
                    return {"ok": True, "message_id": existing.message_id, "duplicate": True}
                return _failed(ErrorKind.UNCERTAIN, "Pesan dengan kunci ini pernah mulai "
                               "dikirim tetapi hasilnya tidak diketahui; tidak dikirim ulang.")
            try:
                message_id = s.client.send_text(phone, text)
            except SendFailure as exc:
                if exc.kind != ErrorKind.UNCERTAIN:
                    self.sent_keys.forget(owner_id, key)
                return _failed(exc.kind, exc.message)
            except Exception as exc:  # unknown: it may have gone out
                log.exception("send of %s failed", key)
                return _failed(ErrorKind.UNCERTAIN, f"Hasil pengiriman tidak diketahui: {exc}")
            self.sent_keys.mark_sent(owner_id, key, message_id)
        return {"ok": True, "message_id": message_id, "duplicate": False}

    def lookup_sent(self, owner_id: uuid.UUID, key: str) -> tuple[SentLookup, str | None]:
        """Whether a message with ``key`` went out (and its id)."""
        record = self.sent_keys.get(owner_id, key)
        if record is None:
            return SentLookup.NOT_SENT, None
        if record.status == SENT:
            return SentLookup.SENT, record.message_id
        return SentLookup.UNKNOWN, None

    def check(self, owner_id: uuid.UUID, phones: list[str]) -> dict[str, bool]:
        """Ask WhatsApp about numbers one by one, slowly (one session, one at a time).

        Numbers WhatsApp gave no answer for are left out: unknown, never "not on WhatsApp".

        Raises:
            GatewayError: not connected, too many numbers, or WhatsApp refused.
        """
        if len(phones) > MAX_CHECK:
            raise GatewayError(ErrorKind.INVALID, f"Maksimal {MAX_CHECK} nomor per pemeriksaan.")
        s = self.sessions.get(owner_id)
        if s is None or not s.connected or s.client is None:
            raise GatewayError(ErrorKind.NOT_CONNECTED, NOT_CONNECTED_MESSAGE)
        results: dict[str, bool] = {}
        with s.check_lock:
            for i, phone in enumerate(phones):
                if i:
                    s.stop.wait(self.timings.check_delay_s)
                if not _PHONE.fullmatch(phone or ""):
                    results[phone] = False
                    continue
                try:
                    answer = s.client.is_on_whatsapp(phone)
                except SendFailure as exc:
                    raise GatewayError(exc.kind, exc.message) from exc
                if answer is not None:  # no answer: unknown, left out (never "no WA")
                    results[phone] = answer
        return results


def _failed(kind: ErrorKind, message: str) -> dict:
    return {"ok": False, "error_kind": str(kind), "error": message}
