"""WhatsApp endpoints (``/api/wa/*``): link, status, sends, logs, queue and Cloud API.

Thin: each route resolves the acting user from the session cookie and calls one use
case of :mod:`fibernode.services.whatsapp` or :mod:`fibernode.services.wa_queue`;
refusals come back in the one error shape of :mod:`fibernode.api.deps`.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field

from fibernode.api.deps import request_actor
from fibernode.services import wa_cloud, wa_queue, whatsapp
from fibernode.services.context import Actor

router = APIRouter(prefix="/api/wa", tags=["whatsapp"])
ActorDep = Annotated[Actor, Depends(request_actor)]
PerPageQuery = Annotated[int, Query(ge=1, le=100, description="Baris per halaman (1–100)")]


class _Body(BaseModel):
    # The spec's bodies are camelCase; snake_case is accepted too.
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class ConnectBody(_Body):
    """How to link: ``qr`` or ``code`` (pairing code, needs the phone)."""

    method: str = "qr"
    phone: str | None = None


class PhoneBody(_Body):
    """A phone number, with an optional text (test message)."""

    phone: str
    text: str | None = Field(default=None, alias="message")


class ManualBody(_Body):
    """One message to one subscriber."""

    customer_id: uuid.UUID = Field(alias="customerId")
    invoice_id: uuid.UUID | None = Field(default=None, alias="invoiceId")
    template: str
    custom_message: str | None = Field(default=None, alias="customMessage")


class BulkBody(_Body):
    """Many subscribers (ids and / or a filter); ``preview`` only shows what would go."""

    customer_ids: list[uuid.UUID] | None = Field(default=None, alias="customerIds")
    filter: str | None = None
    template: str
    custom_message: str | None = Field(default=None, alias="customMessage")
    preview: bool = False


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        out = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if hasattr(value, "pages"):
            out["pages"] = value.pages
        return jsonable_encoder({k: _plain(v) for k, v in out.items()})
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return jsonable_encoder(value)


@router.get("/status")
def status(actor: ActorDep, owner_id: uuid.UUID | None = None) -> dict:
    """The WhatsApp link of the caller (superadmin: optionally of ``owner_id``)."""
    return _plain(whatsapp.get_status(actor, owner_id))


@router.post("/connect")
def connect(actor: ActorDep, body: ConnectBody | None = None) -> dict:
    """Start linking the caller's number (QR, or pairing code for ``phone``)."""
    body = body or ConnectBody()
    return _plain(whatsapp.start_link(actor, body.method, body.phone))


@router.post("/disconnect")
def disconnect(actor: ActorDep, owner_id: uuid.UUID | None = None) -> dict:
    """Unlink the caller's number (superadmin: optionally ``owner_id``'s)."""
    return _plain(whatsapp.logout(actor, owner_id))


@router.get("/qr")
def qr(actor: ActorDep) -> dict:
    """The current QR / pairing code while linking (poll it)."""
    view = whatsapp.refresh_link(actor)
    return {"status": view.status, "qr_code": view.qr_code, "qr_svg": view.qr_svg,
            "pairing_code": view.pairing_code, "expires_at": _plain(view.link_expires_at),
            "expired": view.link_expired}


@router.post("/send-test")
def send_test(actor: ActorDep, body: PhoneBody) -> dict:
    """Send a test message from the caller's number."""
    return {"id": str(whatsapp.send_test(actor, body.phone, body.text))}


@router.post("/send-manual")
def send_manual(actor: ActorDep, body: ManualBody) -> dict:
    """Send one message to one subscriber now (template or custom text)."""
    log_id = whatsapp.send_manual(actor, body.customer_id, body.template,
                                  body.custom_message, body.invoice_id)
    return {"id": str(log_id)}


@router.post("/send-bulk")
def send_bulk(actor: ActorDep, body: BulkBody) -> dict:
    """Queue a message for many subscribers (``preview: true`` only previews)."""
    args = {"customer_ids": body.customer_ids, "filter": body.filter,
            "template": body.template, "text": body.custom_message}
    if body.preview:
        return _plain(whatsapp.preview_bulk(actor, **args))
    return {"queued": whatsapp.send_bulk(actor, **args)}


@router.post("/check-number")
def check_number(actor: ActorDep, body: PhoneBody) -> dict:
    """Whether a number is on WhatsApp (``null`` when it could not be checked)."""
    return {"phone": body.phone, "on_whatsapp": whatsapp.check_number(actor, body.phone)}


@router.get("/logs")
def logs(actor: ActorDep, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
         type: str | None = None,  # noqa: A002 - the spec's filter name
         status: str | None = None, date_from: date | None = None,
         date_to: date | None = None, owner_id: uuid.UUID | None = None,
         per_page: PerPageQuery = 20) -> dict:
    """The message log, 20 per page (filters: type, status, date range, owner)."""
    return _plain(whatsapp.list_logs(actor, page=page, message_type=type or None,
                                     status=status or None, date_from=date_from,
                                     date_to=date_to, owner_id=owner_id, per_page=per_page))


@router.get("/queue")
def queue(actor: ActorDep, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
          status: str | None = None, owner_id: uuid.UUID | None = None,
          per_page: PerPageQuery = 20) -> dict:
    """Queue counts per status and a page of queued messages."""
    return {"counts": wa_queue.queue_counts(actor, owner_id),
            "page": _plain(wa_queue.list_queue(actor, page=page, status=status or None,
                                               owner_id=owner_id, per_page=per_page))}


@router.post("/queue/{queue_id}/retry")
def retry(queue_id: uuid.UUID, actor: ActorDep) -> dict:
    """Resend a failed, uncertain or stuck queued message on purpose, under a new key.

    The subscriber may receive it twice (``warning``); the old attempt stays in the log.
    """
    key = wa_queue.retry_message(actor, queue_id)
    return {"ok": True, "idempotency_key": key, "warning": whatsapp.RESEND_WARNING}


@router.post("/logs/{log_id}/resend")
def resend(log_id: uuid.UUID, actor: ActorDep) -> dict:
    """Resend a failed, uncertain or stuck message of the log on purpose, as a new message.

    The subscriber may receive it twice (``warning``); the old attempt stays in the log.
    """
    whatsapp.resend_message(actor, log_id)
    return {"ok": True, "warning": whatsapp.RESEND_WARNING}


@router.delete("/queue/{queue_id}")
def cancel(queue_id: uuid.UUID, actor: ActorDep) -> dict:
    """Cancel a message still waiting in the queue."""
    wa_queue.cancel_message(actor, queue_id)
    return {"ok": True}


# --- official Cloud API (superadmin) --------------------------------------------------------


class CloudCredentialsBody(_Body):
    """An owner's Cloud API number: its Phone Number ID and an access token."""

    phone_id: str = Field(alias="phoneNumberId", max_length=50)
    token: str = Field(alias="accessToken", max_length=1000)


class CloudTemplatesBody(_Body):
    """Template names per message type (empty: the default name) and their language."""

    names: dict[str, str] = Field(default_factory=dict)
    language: str = Field(default="id", max_length=10)


@router.get("/cloud/credentials")
def cloud_credentials(actor: ActorDep) -> dict:
    """Every owner's Cloud API number (token shown only as its last four characters)."""
    return {"owners": _plain(wa_cloud.list_credentials(actor))}


@router.put("/cloud/credentials/{owner_id}")
def set_cloud_credentials(owner_id: uuid.UUID, actor: ActorDep,
                          body: CloudCredentialsBody) -> dict:
    """Store an owner's Cloud API credentials once the Graph API has accepted them."""
    return _plain(wa_cloud.set_credentials(actor, owner_id, body.phone_id, body.token))


@router.get("/cloud/templates")
def cloud_templates(actor: ActorDep) -> dict:
    """The templates reminders, receipts and isolir notices are sent as (with bodies)."""
    return {"templates": _plain(wa_cloud.list_template_settings(actor))}


@router.put("/cloud/templates")
def set_cloud_templates(actor: ActorDep, body: CloudTemplatesBody) -> dict:
    """Change the template names and language."""
    return {"changes": wa_cloud.update_template_settings(actor, body.names, body.language)}
