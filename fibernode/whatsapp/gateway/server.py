"""The wa-gateway's internal HTTP API, called by ``fibernode.whatsapp.gateway_client``.

Every route but ``/health`` needs ``Authorization: Bearer <WA_GATEWAY_TOKEN>``.
Bound to 127.0.0.1 by default; in docker-compose it is reachable only on the
internal network. Test mode adds ``/test/...`` routes to pair, simulate events
and read what was "sent".
"""

from __future__ import annotations

import hmac
import logging
import os
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fibernode import logs
from fibernode.config import get_settings
from fibernode.whatsapp.base import GatewayError
from fibernode.whatsapp.gateway.clients import FakeBackend
from fibernode.whatsapp.gateway.locks import default_locks
from fibernode.whatsapp.gateway.manager import SessionManager, Timings
from fibernode.whatsapp.gateway.process import ProcessBackend

log = logging.getLogger(__name__)
TEST_EVENTS = ("logged_out", "banned", "disconnected", "outdated")


class LinkBody(BaseModel):
    """Start linking: by QR, or by pairing code for ``phone``."""

    method: str = "qr"
    phone: str | None = None


class SendBody(BaseModel):
    """One text message."""

    phone: str
    text: str
    idempotency_key: str = Field(min_length=1, max_length=150)


class CheckBody(BaseModel):
    """Numbers to look up."""

    phones: list[str]


class PairBody(BaseModel):
    """Test mode: the phone that "scanned" the QR."""

    phone: str


class EventBody(BaseModel):
    """Test mode: what WhatsApp "did"."""

    kind: str


def _error(exc: GatewayError, status: int = 409) -> JSONResponse:
    return JSONResponse({"error": {"kind": str(exc.kind), "message": exc.message}},
                        status_code=status)


def create_app(manager: SessionManager, *, token: str, test_mode: bool = False,
               manage_lifecycle: bool = True) -> FastAPI:
    """The gateway's FastAPI app around ``manager``."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if manage_lifecycle:
            manager.start_background()
        yield
        if manage_lifecycle:
            manager.shutdown()

    app = FastAPI(title="FiberNode wa-gateway", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)

    def authorized(authorization: str = Header("")) -> None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="Token gateway tidak valid.")

    def owner(owner_id: str) -> uuid.UUID:
        try:
            return uuid.UUID(owner_id)
        except ValueError as exc:
            raise HTTPException(status_code=404, detail="Pemilik tidak dikenal.") from exc

    auth = [Depends(authorized)]

    @app.get("/health")
    def health() -> dict:
        # waiting_for_lock > 0: another gateway still holds those numbers (see README).
        body = {"ok": True, "sessions": len(manager.sessions), "test_mode": test_mode,
                "waiting_for_lock": len(manager.pending_resumes())}
        if isinstance(manager.backend, ProcessBackend):
            # Unauthenticated: counts only; per-owner detail is behind the token.
            procs = manager.backend.processes().values()
            body["processes"] = {"alive": sum(p["alive"] for p in procs),
                                 "restarts": sum(p["restarts"] for p in procs),
                                 "crashes": sum(p["crashes"] for p in procs)}
        return body

    @app.get("/processes", dependencies=auth)
    def processes() -> dict:
        """Per owner: the pid of its process, restarts, crashes, last exit, RSS."""
        backend = manager.backend
        return {"processes": backend.processes() if isinstance(backend, ProcessBackend)
                else {}}

    @app.post("/sessions/{owner_id}/link", dependencies=auth)
    def link(owner_id: str, body: LinkBody):
        try:
            return manager.start(owner(owner_id), method=body.method, phone=body.phone)
        except GatewayError as exc:
            return _error(exc)

    @app.get("/sessions/{owner_id}", dependencies=auth)
    def state(owner_id: str) -> dict:
        return manager.state(owner(owner_id))

    @app.post("/sessions/{owner_id}/logout", dependencies=auth)
    def logout(owner_id: str) -> dict:
        manager.stop(owner(owner_id), logout=True)
        return {"ok": True}

    @app.post("/sessions/{owner_id}/send", dependencies=auth)
    def send(owner_id: str, body: SendBody) -> dict:
        return manager.send(owner(owner_id), body.phone, body.text, body.idempotency_key)

    @app.post("/sessions/{owner_id}/check", dependencies=auth)
    def check(owner_id: str, body: CheckBody):
        try:
            return {"results": manager.check(owner(owner_id), body.phones)}
        except GatewayError as exc:
            return _error(exc)

    @app.get("/sessions/{owner_id}/sent/{key:path}", dependencies=auth)
    def sent(owner_id: str, key: str) -> dict:
        status, message_id = manager.lookup_sent(owner(owner_id), key)
        return {"status": str(status), "message_id": message_id}

    if test_mode:
        backend = manager.backend
        assert isinstance(backend, FakeBackend)  # noqa: S101 - test mode wiring

        @app.post("/test/sessions/{owner_id}/pair", dependencies=auth)
        def test_pair(owner_id: str, body: PairBody):
            client = backend.client(owner(owner_id))
            s = manager.sessions.get(owner(owner_id))
            if client is None or s is None or s.stop.is_set():
                raise HTTPException(status_code=409, detail="Tidak ada QR yang sedang aktif.")
            client.pair(body.phone)
            return {"ok": True}

        @app.post("/test/sessions/{owner_id}/event", dependencies=auth)
        def test_event(owner_id: str, body: EventBody):
            if body.kind not in TEST_EVENTS:
                raise HTTPException(status_code=422, detail=f"kind: {', '.join(TEST_EVENTS)}")
            client = backend.client(owner(owner_id))
            if client is None:
                raise HTTPException(status_code=409, detail="Sesi tidak berjalan.")
            client.simulate(body.kind)
            return {"ok": True}

        @app.get("/test/sent", dependencies=auth)
        def test_sent() -> dict:
            with backend.world.mutex:
                return {"messages": [{**asdict(m), "sent_at": m.sent_at.isoformat()}
                                     for m in backend.world.sent]}

    return app


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def build_manager(*, test_mode: bool) -> SessionManager:
    """The manager for this process, from settings (test mode: the double)."""
    settings = get_settings()
    sessions_dir = settings.wa_sessions_dir
    sessions_dir.mkdir(parents=True, exist_ok=True)
    if test_mode:
        # whatsmeow's clock by default; the env shortens it for tests.
        backend = FakeBackend()
        world = backend.world
        world.first_qr_s = _env_float("WA_GATEWAY_FIRST_QR_S", world.first_qr_s)
        world.qr_interval_s = _env_float("WA_GATEWAY_QR_INTERVAL_S", world.qr_interval_s)
        timings = Timings(first_qr_ttl_s=world.first_qr_s, qr_ttl_s=world.qr_interval_s,
                          link_window_s=_env_float("WA_GATEWAY_LINK_WINDOW_S",
                                                   world.link_window_s),
                          check_delay_s=0.1, backoff_base_s=1.0)
    else:
        # Each owner's neonize client in its own process (see .process for why).
        backend = ProcessBackend("neonize", proxy=os.environ.get("WA_GATEWAY_PROXY") or None)
        timings = Timings(link_window_s=_env_float("WA_GATEWAY_LINK_WINDOW_S", 160.0))
    return SessionManager(sessions_dir, backend, default_locks(sessions_dir), timings=timings)


def run(host: str, port: int, *, test_mode: bool = False) -> None:
    """Serve the gateway until interrupted."""
    import uvicorn

    settings = get_settings()
    logs.configure(settings.log_level)
    manager = build_manager(test_mode=test_mode)
    app = create_app(manager, token=settings.wa_gateway_token, test_mode=test_mode)
    log.info("wa-gateway on %s:%s (test mode: %s, sessions: %s)", host, port, test_mode,
             settings.wa_sessions_dir)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
