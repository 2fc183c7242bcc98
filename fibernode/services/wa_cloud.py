"""The WhatsApp Cloud API mode: templates, the 24-hour window, replies and credentials.

Reminders, receipts and isolir notices are *business-initiated*: outside WhatsApp's
24-hour customer-service window Meta accepts a free-text request and fails it later
(error 131047 on the status webhook). In Cloud mode they are therefore sent as approved
**template messages**, one variable per field, with the bodies in :data:`TEMPLATES`
(what the owner submits in WhatsApp Manager). Their names and language are settings
(``wa_cloud.template.<type>``, ``wa_cloud.template_language``). Free text goes out only
while the window is open: the subscriber wrote to the owner's number within 24 hours
(:func:`window_open`, from :func:`record_inbound`).

The superadmin stores each owner's phone number id and access token
(:func:`set_credentials`), checked first against the Graph API; the token is kept
encrypted and only its last characters are ever shown again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from pywa.types.templates import TemplateLanguage
from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import insert_for, new_session
from fibernode.formatting import date_time, long_date, month_year, number
from fibernode.models import (
    Customer,
    Invoice,
    Setting,
    User,
    UserRole,
    WaInboundMessage,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import receipts as receipts_service
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.crypto import DecryptionError, decrypt_secret, encrypt_secret
from fibernode.services.errors import NotFound, ValidationFailed
from fibernode.services.scoping import scoped
from fibernode.services.settings import store_values
from fibernode.services.uow import unit_of_work
from fibernode.services.wa_sessions import SessionEvent, apply_event, ensure_session

TOKEN_PURPOSE = "wa_sessions.cloud_token"  # noqa: S105 - a label, not a secret
# A little short of 24 hours: the message must reach WhatsApp while the window is open.
WINDOW = timedelta(hours=24) - timedelta(minutes=10)
NAME_SETTING = "wa_cloud.template."
LANGUAGE_SETTING = "wa_cloud.template_language"
DEFAULT_LANGUAGE = "id"
# WhatsApp Manager: lowercase letters, digits and underscores; languages like id, en_US.
TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
PHONE_ID_RE = re.compile(r"^\d{5,30}$")
VARIABLE_RE = re.compile(r"\{\{\s*(\d+)\s*\}\}")
# The language codes WhatsApp templates can have (pywa keeps Meta's list).
LANGUAGES = frozenset(str(m.value) for m in TemplateLanguage)


@dataclass(frozen=True)
class CloudTemplate:
    """One approved template a business-initiated message type is sent as.

    Attributes:
        message_type: ``reminder``, ``receipt`` or ``isolation``.
        label: Indonesian name of the message type.
        default_name: The template name used until the superadmin sets another.
        category: The category to choose in WhatsApp Manager.
        body: The body to submit, ``{{1}}``… in order, one per entry of ``fields``.
        fields: What each variable holds (Indonesian, for the owner).
    """

    message_type: str
    label: str
    default_name: str
    category: str
    body: str
    fields: tuple[str, ...]


TEMPLATES: dict[str, CloudTemplate] = {t.message_type: t for t in (
    CloudTemplate(
        "reminder", "Pengingat tagihan", "fibernode_pengingat", "UTILITY",
        "Halo {{1}}, ini pengingat dari {{2}}. Tagihan WiFi Anda periode {{3}} sebesar "
        "Rp{{4}} jatuh tempo pada {{5}}. Abaikan pesan ini jika Anda sudah membayar. "
        "Terima kasih.",
        ("nama pelanggan", "nama usaha", "periode", "nominal", "tanggal jatuh tempo")),
    CloudTemplate(
        "receipt", "Nota pembayaran", "fibernode_nota", "UTILITY",
        "Halo {{1}}, pembayaran WiFi Anda kepada {{2}} untuk periode {{3}} sebesar "
        "Rp{{4}} sudah kami terima. Nota pembayaran: {{5}} . Terima kasih.",
        ("nama pelanggan", "nama usaha", "periode", "jumlah dibayar", "tautan nota")),
    CloudTemplate(
        "isolation", "Pemberitahuan isolir", "fibernode_isolir", "UTILITY",
        "Halo {{1}}, layanan WiFi Anda dari {{2}} sementara diisolir karena tagihan "
        "periode {{3}} sebesar Rp{{4}} belum dibayar. Silakan lakukan pembayaran agar "
        "layanan aktif kembali. Terima kasih.",
        ("nama pelanggan", "nama usaha", "periode", "sisa tagihan")),
)}

# Meta refuses a parameter with a newline or tab, or more than four spaces in a row.
_PARAM_SPACE = re.compile(r"\s+")


def template_problems(body: str) -> list[str]:
    """Why WhatsApp Manager would refuse ``body`` (empty: it would accept it).

    Variables must be numbered ``{{1}}``… without gaps, each used once, never at the
    start or the end of the body and never two side by side.
    """
    problems = []
    found = [int(n) for n in VARIABLE_RE.findall(body)]
    if found != list(range(1, len(found) + 1)):
        problems.append("Variabel harus berurutan {{1}}, {{2}}, … dan masing-masing sekali.")
    text = body.strip()
    if VARIABLE_RE.match(text):
        problems.append("Variabel tidak boleh di awal isi template.")
    if re.search(r"\{\{\s*\d+\s*\}\}[\s.!?]*$", text):
        problems.append("Variabel tidak boleh di akhir isi template.")
    if re.search(r"\}\}\s*\{\{", text):
        problems.append("Dua variabel tidak boleh berdampingan.")
    return problems


def clean_param(value: str | None) -> str:
    """A template parameter as WhatsApp accepts it (one line, never empty)."""
    text = _PARAM_SPACE.sub(" ", value or "").strip()
    return text or "-"


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSetting:
    """The template a message type is sent as now."""

    message_type: str
    label: str
    name: str
    language: str
    category: str
    body: str
    fields: tuple[str, ...]


def template_settings(session: Session | None = None) -> dict[str, TemplateSetting]:
    """Each business-initiated type's template name and language (settings or defaults)."""
    keys = [NAME_SETTING + k for k in TEMPLATES] + [LANGUAGE_SETTING]
    query = select(Setting.key, Setting.value).where(Setting.key.in_(keys))
    if session is None:
        with new_session() as s:
            stored = dict(s.exec(query).all())
    else:
        stored = dict(session.exec(query).all())
    language = (stored.get(LANGUAGE_SETTING) or "").strip() or DEFAULT_LANGUAGE
    return {k: TemplateSetting(k, t.label, (stored.get(NAME_SETTING + k) or "").strip()
                               or t.default_name, language, t.category, t.body, t.fields)
            for k, t in TEMPLATES.items()}


def list_template_settings(actor: Actor) -> list[TemplateSetting]:
    """The templates (names, language, bodies to submit) as the superadmin manages them."""
    require_superadmin(actor)
    return list(template_settings().values())


def update_template_settings(actor: Actor, names: Mapping[str, str],
                             language: str) -> dict[str, dict]:
    """Change the template names and language (superadmin), audited.

    Args:
        actor: The superadmin.
        names: ``{message_type: template name}``; empty means the default name.
        language: The templates' language code (``id``, ``en_US``…).

    Returns:
        What changed, ``{setting key: {"from", "to"}}``.

    Raises:
        ValidationFailed: an unknown type, a malformed name or language.
    """
    require_superadmin(actor)
    problems: dict[str, str] = {}
    values: dict[str, str] = {}
    for kind, name in names.items():
        if kind not in TEMPLATES:
            problems[kind] = "Jenis pesan tidak dikenal."
            continue
        name = (name or "").strip() or TEMPLATES[kind].default_name
        if not TEMPLATE_NAME_RE.match(name):
            problems[kind] = ("Nama template hanya huruf kecil, angka dan garis bawah, "
                              "contoh fibernode_pengingat.")
            continue
        values[NAME_SETTING + kind] = name
    language = (language or "").strip() or DEFAULT_LANGUAGE
    if not LANGUAGE_RE.match(language) or language not in LANGUAGES:
        problems["language"] = "Kode bahasa tidak valid, contoh id atau en_US."
    values[LANGUAGE_SETTING] = language
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        # "from" is the name in force before (a default counts), not the stored text.
        before = template_settings(uow.session)
        was = {NAME_SETTING + k: t.name for k, t in before.items()}
        was[LANGUAGE_SETTING] = next(iter(before.values())).language
        store_values(uow.session, values)
        changes = {k: {"from": was[k], "to": v} for k, v in values.items() if was[k] != v}
        if changes:
            uow.audit("wa.cloud.templates", "settings", None, changes=changes)
        else:
            uow.bookkeeping("template settings saved unchanged")
        return changes


# --- what a template message carries ---------------------------------------------------------


def _period(period: str | None) -> str:
    return month_year(period) if period else "-"


def template_params(session: Session, message_type: str, *,
                    invoice_id: uuid.UUID | None,
                    customer_id: uuid.UUID | None) -> list[str] | None:
    """The body parameters of a business-initiated message, in the template's order.

    Returns:
        The values, or ``None`` when the message is not of a templated type or what it
        is about (its invoice) no longer exists.
    """
    if message_type not in TEMPLATES:
        return None
    inv = session.get(Invoice, invoice_id) if invoice_id else None
    cust = session.get(Customer, customer_id or (inv.customer_id if inv else None))
    if cust is None or (message_type in ("reminder", "receipt") and inv is None):
        return None
    owner = session.get(User, cust.owner_id)
    business = owner.business_name if owner else ""
    if message_type == "reminder":
        values = [cust.name, business, _period(inv.period),
                  number(max(0, inv.total_amount - inv.paid_amount)), long_date(inv.due_date)]
    elif message_type == "receipt":
        url = receipts_service.receipt_url(inv.receipt_token) if inv.receipt_token else ""
        values = [cust.name, business, _period(inv.period), number(inv.paid_amount), url]
    else:
        owed = max(0, inv.total_amount - inv.paid_amount) if inv else 0
        values = [cust.name, business, _period(inv.period if inv else None), number(owed)]
    return [clean_param(v) for v in values]


# --- the 24-hour window and inbound messages -------------------------------------------------


def _phone_variants(phone: str) -> list[str]:
    digits = re.sub(r"\D", "", phone or "")
    out = [digits]
    if digits.startswith("62"):
        out.append("0" + digits[2:])
    elif digits.startswith("0"):
        out.append("62" + digits[1:])
    return out


def window_open(owner_id: uuid.UUID, phone: str, now: datetime | None = None) -> bool:
    """Whether ``phone`` wrote to the owner's number recently enough for free text."""
    since = (now or clock.now()) - WINDOW
    with new_session() as s:
        found = s.exec(select(WaInboundMessage.id).where(
            WaInboundMessage.owner_id == owner_id,
            WaInboundMessage.phone.in_(_phone_variants(phone)),
            WaInboundMessage.received_at >= since).limit(1)).first()
    return found is not None


@dataclass(frozen=True)
class InboundMessage:
    """One message a subscriber sent, as the webhook reports it.

    Attributes:
        phone_number_id: The owner's Cloud API number it was sent to (webhook metadata).
        phone: The sender (``wa_id``, international digits).
        provider_message_id: WhatsApp's id of the message.
        message_type: ``text``, ``image``, ``button``…
        text: Its text (or caption / button label), if any.
        at: When the subscriber sent it.
    """

    phone_number_id: str
    phone: str
    provider_message_id: str
    message_type: str
    text: str | None
    at: datetime


def record_inbound(messages: list[InboundMessage]) -> int:
    """Store messages subscribers sent (system use case); a repeat is stored once.

    The owner is the one whose Cloud API phone number id received it; the subscriber
    is the owner's customer with that phone number (none: kept without one).

    Returns:
        How many new messages were stored.
    """
    if not messages:
        return 0
    stored = 0
    table = WaInboundMessage.__table__
    with unit_of_work(Actor.system("wa.cloud")) as uow:
        s = uow.session
        phone_ids = sorted({m.phone_number_id for m in messages})
        owners = dict(s.exec(select(WaSession.cloud_phone_id, WaSession.user_id)
                             .where(WaSession.cloud_phone_id.in_(phone_ids))).all())
        for m in messages:
            owner_id = owners.get(m.phone_number_id)
            if owner_id is None:
                continue
            customer_id = s.exec(select(Customer.id).where(
                Customer.owner_id == owner_id, Customer.phone.in_(_phone_variants(m.phone)))
                .order_by(Customer.created_at).limit(1)).first()
            result = s.execute(insert_for(s)(table).values(
                id=uuid.uuid4(), owner_id=owner_id, customer_id=customer_id,
                phone=re.sub(r"\D", "", m.phone)[:20],
                provider_message_id=m.provider_message_id[:150],
                message_type=(m.message_type or "unknown")[:30], text=m.text,
                received_at=m.at, created_at=clock.now(),
            ).on_conflict_do_nothing(index_elements=["provider_message_id"])
                .returning(table.c.id))
            stored += result.first() is not None
        if stored:
            uow.audit("wa.cloud.inbound", "wa_inbound_messages", None, count=stored)
        else:
            uow.bookkeeping("repeated webhook delivery: nothing new")
    return stored


@dataclass(frozen=True)
class Reply:
    """A subscriber's message as their page shows it."""

    text: str
    message_type: str
    received_at: datetime
    received_text: str


def customer_replies(actor: Actor, customer_id: uuid.UUID, limit: int = 10) -> list[Reply]:
    """The subscriber's latest messages to their owner's number, newest first.

    Raises:
        NotFound: the subscriber does not exist or is not the actor's.
    """
    with new_session() as s:
        cust = s.exec(scoped(select(Customer), actor, Customer.owner_id)
                      .where(Customer.id == customer_id)).first()
        if cust is None:
            raise NotFound("Pelanggan tidak ditemukan.")
        rows = s.exec(select(WaInboundMessage).where(
            WaInboundMessage.owner_id == cust.owner_id,
            sa.or_(WaInboundMessage.customer_id == cust.id,
                   WaInboundMessage.phone.in_(_phone_variants(cust.phone))))
            .order_by(WaInboundMessage.received_at.desc()).limit(limit)).all()
    return [Reply(text=r.text or f"[{r.message_type}]", message_type=r.message_type,
                  received_at=r.received_at, received_text=date_time(r.received_at))
            for r in rows]


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialsView:
    """An owner's Cloud API credentials as the superadmin sees them (token masked)."""

    owner_id: uuid.UUID
    owner_name: str
    role: str
    phone_id: str | None
    token_hint: str | None
    status: str
    phone_number: str | None


def mask_token(token: str) -> str:
    """Only the last four characters of a token, ever shown again."""
    return "••••" + token[-4:] if len(token) > 8 else "••••"


def _hint(stored: str | None) -> str | None:
    if not stored:
        return None
    try:
        return mask_token(decrypt_secret(stored, TOKEN_PURPOSE))
    except DecryptionError:
        return "(tidak dapat dibaca — simpan ulang)"


def list_credentials(actor: Actor) -> list[CredentialsView]:
    """Every owner (superadmin and mitra) with their Cloud API credentials (superadmin)."""
    require_superadmin(actor)
    with new_session() as s:
        rows = s.exec(select(User, WaSession).join(
            WaSession, WaSession.user_id == User.id, isouter=True)
            .where(User.role.in_([UserRole.SUPERADMIN, UserRole.MITRA]))
            .order_by(User.role.desc(), User.business_name)).all()
    return [CredentialsView(
        owner_id=u.id, owner_name=u.business_name or u.username, role=u.role.value,
        phone_id=w.cloud_phone_id if w else None, token_hint=_hint(w.cloud_token if w else None),
        status=(w.status.value if w else WaSessionStatus.DISCONNECTED.value),
        phone_number=w.phone_number if w else None) for u, w in rows]


@dataclass(frozen=True)
class VerifiedNumber:
    """What the Graph API answered for a phone number id."""

    display_phone_number: str
    verified_name: str | None = None


Verifier = Callable[[str, str], VerifiedNumber]


def _default_verifier(phone_id: str, token: str) -> VerifiedNumber:
    # Imported here: the gateway module itself builds on this service.
    from fibernode.whatsapp.cloud import verify_credentials

    return verify_credentials(phone_id, token)


def set_credentials(actor: Actor, owner_id: uuid.UUID, phone_id: str, token: str, *,
                    verify: Verifier | None = None) -> CredentialsView:
    """Store an owner's Cloud API phone number id and token (superadmin), once verified.

    The Graph API is asked for the phone number id with the token first; only when it
    answers are the credentials written (token encrypted), the owner's session marked
    connected, and the change audited as ``actor``. A refusal writes nothing.

    Args:
        actor: The superadmin.
        owner_id: The superadmin or mitra whose number it is.
        phone_id: The Phone Number ID from WhatsApp Manager (digits).
        token: A system-user access token.
        verify: Asks the Graph API (default: :func:`fibernode.whatsapp.cloud.verify_credentials`).

    Raises:
        ValidationFailed: a field is empty or malformed, or WhatsApp refused them (the
            reason under ``phone_id`` or ``token``).
        NotFound: no such owner.
    """
    require_superadmin(actor)
    phone_id, token = (phone_id or "").strip(), (token or "").strip()
    problems = {}
    if not PHONE_ID_RE.match(phone_id):
        problems["phone_id"] = "Phone Number ID harus berupa angka (5–30 digit)."
    if len(token) < 20 or any(c.isspace() for c in token):
        problems["token"] = "Token akses tidak valid: salin token lengkap tanpa spasi."  # noqa: S105
    if problems:
        raise ValidationFailed(problems)
    with new_session() as s:
        owner = s.get(User, owner_id)
        if owner is None or owner.role not in (UserRole.SUPERADMIN, UserRole.MITRA):
            raise NotFound("Pemilik nomor tidak ditemukan.")
    number = (verify or _default_verifier)(phone_id, token)
    digits = re.sub(r"\D", "", number.display_phone_number or "")[:20] or None
    with unit_of_work(actor) as uow:
        row = ensure_session(uow.session, owner_id)
        uow.session.exec(select(WaSession).where(WaSession.id == row.id).with_for_update())
        uow.session.refresh(row)
        previous = row.cloud_phone_id
        row.cloud_phone_id = phone_id
        row.cloud_token = encrypt_secret(token, TOKEN_PURPOSE)
        apply_event(uow.session, row, SessionEvent(
            status=WaSessionStatus.CONNECTED, phone_number=digits, link_method="cloud",
            clear_link=True, link_expired=False, error=""))
        uow.audit("wa.cloud.credentials", "wa_sessions", row.id, owner_id=owner_id,
                  phone_id={"from": previous, "to": phone_id}, token=mask_token(token),
                  phone_number=digits, verified_name=number.verified_name)
    return next(v for v in list_credentials(actor) if v.owner_id == owner_id)
