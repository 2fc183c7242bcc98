"""WhatsApp Cloud API webhook: Meta's verification handshake, statuses and replies.

Meta calls ``GET`` once with ``hub.challenge`` when the webhook is registered and
``POST`` for every update, signed with the app secret in ``X-Hub-Signature-256``.
Unsigned or wrongly signed bodies are refused before anything is read from them.
Meta delivers at least once: a repeated delivery changes nothing (statuses only move
a message forward, an inbound message is stored once by its WhatsApp id).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from fibernode.config import get_settings
from fibernode.services.wa_cloud import record_inbound
from fibernode.services.wa_receipts import record_status_updates
from fibernode.whatsapp.cloud import parse_inbound, parse_statuses, verify_signature

log = logging.getLogger(__name__)
router = APIRouter(tags=["whatsapp"])


@router.get("/api/wa/webhook", include_in_schema=False)
def verify(mode: str = Query("", alias="hub.mode"),
           token: str = Query("", alias="hub.verify_token"),
           challenge: str = Query("", alias="hub.challenge")) -> PlainTextResponse:
    """Answer Meta's subscription check with the challenge when the token matches."""
    expected = get_settings().wa_cloud_verify_token
    if mode == "subscribe" and expected and token == expected:
        return PlainTextResponse(challenge)
    return PlainTextResponse("Token verifikasi tidak cocok.", status_code=403)


@router.post("/api/wa/webhook", include_in_schema=False)
async def receive(request: Request) -> JSONResponse:
    """Apply delivered / read / failed statuses; store subscribers' messages."""
    body = await request.body()
    if not verify_signature(get_settings().wa_cloud_app_secret, body,
                            request.headers.get("x-hub-signature-256")):
        return JSONResponse({"error": {"message": "Tanda tangan webhook tidak valid."}},
                            status_code=401)
    try:
        updates = parse_statuses(body)
        inbound = parse_inbound(body)
    except (ValueError, AttributeError, TypeError):
        return JSONResponse({"error": {"message": "Isi webhook tidak dapat dibaca."}},
                            status_code=400)
    # Database work off the event loop.
    changed = await run_in_threadpool(record_status_updates, updates, source="cloud")
    stored = await run_in_threadpool(record_inbound, inbound)
    return JSONResponse({"ok": True, "statuses": len(updates), "changed": changed,
                         "messages": len(inbound), "stored": stored})
