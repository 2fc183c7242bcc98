"""Payment receipts (nota): the public page's data, PDFs, verification and month bundles.

Public side (no login): :func:`get_receipt` and :func:`receipt_pdf` look an
invoice up by its ``receipt_token`` (unique, so indexed). A malformed token is
refused before any query, and an unknown one gives the same ``None`` whether or
not it ever existed. Only the fields switched on in the settings
(``receipt_show_*``, ``receipt_logo_enabled``) are filled in; the others are
``None`` so a page cannot show them by mistake. A receipt of an invoice that is
not fully paid is a bill: it carries the owner's bank details instead.

Each receipt has a verification code (an HMAC of the token under the app's
``JWT_SECRET``, 8 base32 characters shown as ``ABCD-EFGH``) and a QR code of its
public URL (``PUBLIC_URL`` + ``/receipt/<token>``).

Logged-in side: :func:`start_receipt_bundle` asks a Celery worker for one PDF
with every paid receipt of an owner's month (a ``file_jobs`` row, see
:mod:`fibernode.services.filejobs`); :func:`build_bundle_job` is what the worker
runs. ``get_file_job`` and ``file_job_path`` are re-exported from there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import segno
import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import select

from fibernode.config import PROJECT_ROOT, get_settings
from fibernode.db import get_engine, new_session
from fibernode.formatting import date_time, long_date, month_year, rupiah
from fibernode.models import Customer, Invoice, Package, PaymentStatus, User
from fibernode.services import filejobs, jobqueue
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_user
from fibernode.services.crypto import masked_stored_nik
from fibernode.services.errors import NotFound, PermissionDenied, ValidationFailed
from fibernode.services.filejobs import (  # noqa: F401  (part of this module's API)
    FileJobView,
    file_job_path,
    get_file_job,
)
from fibernode.services.uow import unit_of_work
from fibernode.services.validation import PERIOD_RE

log = logging.getLogger(__name__)

# secrets.token_urlsafe(24) gives 32 characters of this alphabet; the column holds 100.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
CODE_LENGTH = 8
METHOD_LABELS = {"cash": "Tunai", "transfer": "Transfer Bank", "qris": "QRIS"}
TOGGLE_KEYS = ("receipt_logo_enabled", "receipt_show_company_name",
               "receipt_show_customer_phone", "receipt_show_nik", "receipt_show_area",
               "receipt_show_package", "receipt_show_discount",
               "receipt_show_payment_method", "receipt_show_paid_by")
SETTING_KEYS = (*TOGGLE_KEYS, "receipt_footer_text", "logo_url")
BUNDLE_KIND = "receipt_bundle"
BUNDLE_TASK = "workers.tasks.build_receipt_bundle"  # the worker task that builds a bundle
BUNDLE_DIR = "receipts"
PROGRESS_EVERY = 10
NOTHING_PAID = "Tidak ada tagihan lunas pada periode ini."
BUNDLE_FAILED = "Terjadi kesalahan sistem saat menyusun nota. Silakan coba lagi."
# A5 portrait, millimetres.
PAGE_W, PAGE_H, MARGIN = 148.0, 210.0, 12.0

_owner = aliased(User, name="owner")
_payer = aliased(User, name="payer")
_TOKEN_LOOKUP = sa.select(Invoice.__table__.c.id).where(
    Invoice.__table__.c.receipt_token == sa.bindparam("token"))


@dataclass(frozen=True)
class ReceiptView:
    """A receipt (paid) or bill (not fully paid), with only the enabled fields.

    Always present: the customer's name, the period, due date, totals, status,
    verification code, QR and URL. ``None`` means "switched off in the settings"
    (or not applicable, like the bank details of a paid receipt): never show it.
    ``amount`` (the price before discount) goes with the discount switch, since
    it would reveal the discount.
    """

    token: str
    receipt_url: str
    is_paid: bool
    status: PaymentStatus
    customer_name: str
    period: str
    period_label: str  # "Maret 2026 (pra-bayar)"
    due_date: date
    total_amount: int
    paid_amount: int
    remaining: int
    paid_at: datetime | None
    verification_code: str  # "ABCD-EFGH"
    qr_svg: str  # standalone <svg> of the receipt URL
    footer_text: str
    company_name: str | None = None
    logo_url: str | None = None
    customer_phone: str | None = None
    nik_masked: str | None = None
    area: str | None = None
    package_name: str | None = None
    package_speed: str | None = None
    amount: int | None = None
    discount: int | None = None
    payment_method: str | None = None
    payment_method_label: str | None = None
    paid_by_name: str | None = None
    bank_name: str | None = None
    bank_account: str | None = None
    bank_holder: str | None = None


# --- codes and links -----------------------------------------------------------------------


def _valid_token(token: Any) -> bool:
    return isinstance(token, str) and TOKEN_RE.match(token) is not None


def verification_code(token: str) -> str:
    """The short code printed on a receipt: ``ABCD-EFGH`` (HMAC of the token)."""
    key = get_settings().jwt_secret.encode()
    digest = hmac.new(key, b"fibernode:receipt:" + token.encode(), hashlib.sha256).digest()
    code = base64.b32encode(digest).decode("ascii")[:CODE_LENGTH]
    return f"{code[:4]}-{code[4:]}"


def verify_code(token: str, code: str) -> bool:
    """Whether ``code`` is the verification code of ``token`` (case, spaces, dash ignored)."""
    if not _valid_token(token) or not isinstance(code, str):
        return False
    given = re.sub(r"[\s-]", "", code).upper()
    expected = verification_code(token).replace("-", "")
    return hmac.compare_digest(given.encode(), expected.encode())


def receipt_url(token: str) -> str:
    """The public URL of a receipt (``PUBLIC_URL/receipt/<token>``)."""
    return f"{get_settings().public_url.rstrip('/')}/receipt/{token}"


def _qr(url: str):
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str) -> str:
    """A standalone SVG (with xmlns, so it also works as an ``<img>`` data URL)."""
    buf = io.BytesIO()
    _qr(url).save(buf, kind="svg", xmldecl=False, svgns=True, nl=False, scale=4, border=2,
                  svgclass="fn-qr", lineclass=None)
    return buf.getvalue().decode("utf-8")


def _qr_png(url: str) -> io.BytesIO:
    buf = io.BytesIO()
    _qr(url).save(buf, kind="png", scale=8, border=2)
    buf.seek(0)
    return buf


# --- lookup --------------------------------------------------------------------------------


def _enabled(values: dict[str, str], key: str) -> bool:
    return values.get(key, "").strip().lower() == "true"


@functools.cache
def _query():
    """The receipt select (built once: it is on the public page's hot path)."""
    return (select(Invoice, Customer, Package, _owner, _payer.name)
            .join(Customer, Customer.id == Invoice.customer_id)
            .join(Package, Package.id == Customer.package_id)
            .join(_owner, _owner.id == Invoice.owner_id)
            .outerjoin(_payer, _payer.id == Invoice.paid_by))


def _build(row: Any, values: dict[str, str], *, with_qr: bool = True) -> ReceiptView:
    inv, cust, pkg, owner, payer = row
    on = {key: _enabled(values, key) for key in TOGGLE_KEYS}
    paid = inv.paid_amount >= inv.total_amount
    token = inv.receipt_token or ""
    url = receipt_url(token) if token else ""
    method = inv.payment_method if paid or inv.paid_amount > 0 else None
    bank = not paid and bool(owner.bank_account)
    return ReceiptView(
        token=token,
        receipt_url=url,
        is_paid=paid,
        status=inv.status,
        customer_name=cust.name,
        period=inv.period,
        period_label=f"{month_year(inv.period)} (pra-bayar)",
        due_date=inv.due_date,
        total_amount=inv.total_amount,
        paid_amount=inv.paid_amount,
        remaining=max(0, inv.total_amount - inv.paid_amount),
        paid_at=inv.paid_at if paid else None,
        verification_code=verification_code(token) if token else "",
        qr_svg=qr_svg(url) if url and with_qr else "",
        footer_text=values.get("receipt_footer_text", "") or "",
        company_name=owner.business_name if on["receipt_show_company_name"] else None,
        logo_url=((values.get("logo_url") or settings_service.DEFAULT_LOGO)
                  if on["receipt_logo_enabled"] else None),
        customer_phone=cust.phone if on["receipt_show_customer_phone"] else None,
        nik_masked=masked_stored_nik(cust.nik) if on["receipt_show_nik"] else None,
        area=owner.business_name if on["receipt_show_area"] else None,
        package_name=pkg.name if on["receipt_show_package"] else None,
        package_speed=pkg.speed if on["receipt_show_package"] else None,
        amount=inv.amount if on["receipt_show_discount"] else None,
        discount=inv.discount if on["receipt_show_discount"] else None,
        payment_method=method if on["receipt_show_payment_method"] else None,
        payment_method_label=(METHOD_LABELS.get(method or "", method)
                              if method and on["receipt_show_payment_method"] else None),
        paid_by_name=(payer or None) if on["receipt_show_paid_by"] else None,
        bank_name=owner.bank_name if bank else None,
        bank_account=owner.bank_account if bank else None,
        bank_holder=owner.bank_holder if bank else None,
    )


def get_receipt(token: str) -> ReceiptView | None:
    """The public receipt of ``token``, or ``None`` (malformed, unknown, deleted: all alike).

    Public: no actor, no login. Callers rate-limit it (see :mod:`ratelimit`).
    """
    if not _valid_token(token):
        return None
    # A light Core lookup first: guesses (the common miss) never pay for the ORM query.
    with get_engine().connect() as conn:
        invoice_id = conn.execute(_TOKEN_LOOKUP, {"token": token}).scalar()
    if invoice_id is None:
        return None
    with new_session() as s:
        row = s.exec(_query().where(Invoice.id == invoice_id)).first()
    if row is None:
        return None
    return _build(row, settings_service.get_values(list(SETTING_KEYS)))


def display_fields(view: ReceiptView) -> dict[str, str]:
    """The receipt as display strings for the page; switched-off fields are ``""``.

    Keys: is_paid ("1"/"0"), logo_url, company_name, customer_name, customer_phone,
    nik, area, package, period, due_date, amount, discount, payment_method, paid_at,
    paid_by, total, paid, remaining, bank_name, bank_account, bank_holder,
    verification_code, footer, url.
    """
    package = ""
    if view.package_name is not None:
        package = f"{view.package_name} ({view.package_speed})" if view.package_speed \
            else view.package_name
    return {
        "is_paid": "1" if view.is_paid else "0",
        "logo_url": view.logo_url or "",
        "company_name": view.company_name or "",
        "customer_name": view.customer_name,
        "customer_phone": view.customer_phone or "",
        "nik": view.nik_masked or "",
        "area": view.area or "",
        "package": package,
        "period": view.period_label,
        "due_date": long_date(view.due_date),
        "amount": rupiah(view.amount) if view.amount is not None else "",
        "discount": rupiah(view.discount) if view.discount is not None else "",
        "payment_method": view.payment_method_label or "",
        "paid_at": date_time(view.paid_at) if view.paid_at else "",
        "paid_by": view.paid_by_name or "",
        "total": rupiah(view.total_amount),
        "paid": rupiah(view.paid_amount),
        "remaining": rupiah(view.remaining),
        "bank_name": view.bank_name or "",
        "bank_account": view.bank_account or "",
        "bank_holder": view.bank_holder or "",
        "verification_code": view.verification_code,
        "footer": view.footer_text,
        "url": view.receipt_url,
    }


# --- PDF -----------------------------------------------------------------------------------


def _latin1(text: str) -> str:
    """The PDF core fonts know Latin-1 only: strip accents beyond it, drop the rest."""
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(plain or "?")
    return "".join(out)


def _logo_file(url: str) -> Path | None:
    """A logo URL served by this app (``/logo.svg``, ``/uploads/…``, ``/branding/…``) as a file."""
    if not url.startswith("/") or url.startswith("//"):
        return None  # remote logos are not fetched for the PDF
    relative = url.split("?", 1)[0].lstrip("/")
    if relative.startswith("branding/"):  # the logo pipeline's files (/branding/…)
        roots = (get_settings().uploads_dir / "branding",)
        relative = relative[len("branding/"):]
    elif relative.startswith("uploads/"):  # uploaded logos (the app's uploads volume)
        relative = relative[len("uploads/"):]
        roots = (PROJECT_ROOT / "uploads", get_settings().data_dir / "uploads")
    else:  # files the app ships, like the default /logo.svg
        roots = (PROJECT_ROOT / "assets",)
    for root in roots:
        root = root.resolve()
        path = (root / relative).resolve()
        if root in path.parents and path.is_file():
            return path
    return None


def render_pdf(view: ReceiptView) -> bytes:
    """One A5 page: logo, company, status, the enabled fields, total, QR and code."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format=(PAGE_W, PAGE_H))
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(_latin1(f"Nota {view.customer_name} {view.period_label}"))
    pdf.set_creator("FiberNode Internet")
    pdf.add_page()
    width = PAGE_W - 2 * MARGIN
    y = MARGIN
    logo = _logo_file(view.logo_url) if view.logo_url else None
    if logo is not None:
        try:
            pdf.image(str(logo), x=MARGIN, y=y, h=16)
            y += 19
        except Exception:  # an image fpdf2 cannot draw: the receipt goes without it
            log.info("receipt PDF without logo %s", logo, exc_info=True)
    pdf.set_xy(MARGIN, y)
    if view.company_name:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(width, 6, _latin1(view.company_name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(width, 8, "NOTA PEMBAYARAN" if view.is_paid else "TAGIHAN INTERNET",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 10)
    if view.is_paid:
        pdf.set_text_color(21, 128, 61)
    else:
        pdf.set_text_color(185, 28, 28)
    pdf.cell(width, 6, "LUNAS" if view.is_paid else "BELUM LUNAS", new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_text_color(17, 24, 39)
    pdf.ln(2)
    pdf.set_draw_color(203, 213, 225)
    pdf.line(MARGIN, pdf.get_y(), PAGE_W - MARGIN, pdf.get_y())
    pdf.ln(3)

    package = None
    if view.package_name is not None:
        package = f"{view.package_name} ({view.package_speed})"
    lines: list[tuple[str, str | None]] = [
        ("Pelanggan", view.customer_name),
        ("No. WhatsApp", view.customer_phone),
        ("NIK", view.nik_masked),
        ("Area", view.area),
        ("Paket", package),
        ("Periode", view.period_label),
        ("Jatuh tempo", long_date(view.due_date)),
        ("Harga paket", rupiah(view.amount) if view.amount is not None else None),
        ("Diskon", rupiah(view.discount) if view.discount is not None else None),
        ("Metode bayar", view.payment_method_label),
        ("Tanggal bayar", date_time(view.paid_at) if view.paid_at else None),
        ("Dicatat oleh", view.paid_by_name),
    ]
    if not view.is_paid and view.paid_amount:
        lines += [("Sudah dibayar", rupiah(view.paid_amount)),
                  ("Sisa tagihan", rupiah(view.remaining))]
    label_w = 34
    for label, value in lines:
        if value is None or value == "":
            continue
        pdf.set_font("Helvetica", "", 9.5)
        pdf.set_text_color(100, 116, 139)
        pdf.cell(label_w, 6, label)
        pdf.set_text_color(17, 24, 39)
        pdf.multi_cell(width - label_w, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.line(MARGIN, pdf.get_y(), PAGE_W - MARGIN, pdf.get_y())
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(width / 2, 8, "Total dibayar" if view.is_paid else "Total tagihan")
    pdf.cell(width / 2, 8, rupiah(view.total_amount), align="R", new_x="LMARGIN",
             new_y="NEXT")
    if view.bank_account:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 9.5)
        pdf.cell(width, 5, "Transfer ke", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9.5)
        pdf.cell(width, 5, _latin1(f"{view.bank_name or ''} {view.bank_account}".strip()),
                 new_x="LMARGIN", new_y="NEXT")
        if view.bank_holder:
            pdf.cell(width, 5, _latin1(f"a.n. {view.bank_holder}"), new_x="LMARGIN",
                     new_y="NEXT")

    if view.receipt_url:
        qr_size = 32
        top = max(pdf.get_y() + 6, PAGE_H - MARGIN - qr_size - 14)
        pdf.image(_qr_png(view.receipt_url), x=MARGIN, y=top, w=qr_size, h=qr_size)
        pdf.set_xy(MARGIN + qr_size + 4, top + 6)
        pdf.set_font("Helvetica", "", 8.5)
        pdf.set_text_color(100, 116, 139)
        pdf.cell(0, 5, "Kode verifikasi", new_x="LEFT", new_y="NEXT")
        pdf.set_font("Courier", "B", 14)
        pdf.set_text_color(17, 24, 39)
        pdf.cell(0, 7, view.verification_code, new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        pdf.set_text_color(100, 116, 139)
        pdf.cell(0, 5, "Pindai QR untuk mencocokkan nota ini.", new_x="LEFT", new_y="NEXT")
        pdf.set_y(top + qr_size + 2)
    if view.footer_text:
        pdf.set_x(MARGIN)
        pdf.set_font("Helvetica", "I", 8.5)
        pdf.set_text_color(100, 116, 139)
        pdf.multi_cell(width, 4.5, _latin1(view.footer_text), align="C")
    return bytes(pdf.output())


def receipt_pdf(token: str) -> bytes | None:
    """The receipt of ``token`` as a one-page PDF, or ``None`` like :func:`get_receipt`."""
    view = get_receipt(token)
    return render_pdf(view) if view is not None else None


# --- month bundle --------------------------------------------------------------------------


def _bundle_invoices(owner_id: uuid.UUID, period: str):
    return (Invoice.owner_id == owner_id, Invoice.period == period,
            Invoice.status == PaymentStatus.PAID)


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "nota"


def start_receipt_bundle(actor: Actor, *, owner_id: uuid.UUID, period: str) -> FileJobView:
    """Ask for one PDF holding every paid receipt of an owner's period (built by a worker).

    Args:
        actor: The superadmin (any owner) or a mitra (itself only).
        owner_id: Whose subscribers' receipts.
        period: The invoices' ``YYYY-MM`` period.

    Returns:
        The pending job; poll it with :func:`get_file_job`, download with
        :func:`file_job_path`.

    Raises:
        PermissionDenied: a mitra asks for another owner.
        NotFound: no such owner.
        ValidationFailed: malformed period, or no paid invoice in it.
    """
    require_user(actor)
    if not (actor.is_superadmin or actor.is_system) and owner_id != actor.user_id:
        raise PermissionDenied("Mitra hanya boleh mengunduh nota pelanggannya sendiri.")
    period = (period or "").strip()
    if not PERIOD_RE.match(period):
        raise ValidationFailed({"period": "Periode harus berformat TTTT-BB (contoh: 2026-03)."})
    with unit_of_work(actor) as uow:
        s = uow.session
        owner = s.get(User, owner_id) if isinstance(owner_id, uuid.UUID) else None
        if owner is None:
            raise NotFound("Pemilik tidak ditemukan.")
        count = s.exec(select(sa.func.count()).select_from(Invoice)
                       .where(*_bundle_invoices(owner.id, period))).one()
        if not count:
            raise ValidationFailed({"period": "Belum ada tagihan lunas pada periode "
                                              f"{month_year(period)}."})
        job = filejobs.create_job(
            uow, kind=BUNDLE_KIND, filename=f"nota-{_slug(owner.business_name)}-{period}.pdf",
            total=int(count), params={"owner_id": str(owner.id), "period": period})
        uow.audit("receipt.bundle", "file_jobs", job.id, owner_id=owner.id, period=period,
                  receipts=int(count))
        jobqueue.enqueue_on_commit(uow, BUNDLE_TASK, job.id, fail=filejobs.fail_unqueued)
        creator = s.get(User, actor.user_id).name if actor.user_id else actor.name
        return filejobs.view(job, creator)


def build_bundle_job(job_id: uuid.UUID | str) -> dict[str, Any]:
    """Render and merge the paid receipts of a bundle job (the ``build_receipt_bundle`` task).

    Each receipt is followed by the ready transfer-slip photos of its payments (one
    page each, see :func:`payment_proofs.bundle_pages`). Progress is stored every
    ``PROGRESS_EVERY`` receipts; the merged PDF goes to ``files/receipts/<job id>.pdf``.
    Any unexpected error fails the job.

    Returns:
        The job's status and the number of receipts (for the task result).
    """
    from pypdf import PdfReader, PdfWriter

    try:
        job_id = filejobs.as_uuid(job_id)
    except NotFound:
        return {"status": None}
    job = filejobs.claim(job_id)
    if job is None:
        return {"status": "skipped"}
    try:
        owner_id = uuid.UUID(job.params["owner_id"])
        period = job.params["period"]
        values = settings_service.get_values(list(SETTING_KEYS))
        with new_session() as s:
            rows = s.exec(_query().where(*_bundle_invoices(owner_id, period))
                          .order_by(sa.func.lower(Customer.name), Invoice.id)).all()
        if not rows:  # unpaid again since the request
            filejobs.fail(job_id, NOTHING_PAID)
            return {"status": "failed", "receipts": 0}
        from fibernode.services import payment_proofs

        proofs = payment_proofs.ready_proof_files(row[0].id for row in rows)
        writer = PdfWriter()
        for done, row in enumerate(rows, 1):
            view = _build(row, values, with_qr=False)
            writer.append(PdfReader(io.BytesIO(render_pdf(view))))
            if proofs.get(row[0].id):  # the transfer slips right after their receipt
                title = f"{view.customer_name}, {view.period_label}"
                writer.append(PdfReader(io.BytesIO(
                    payment_proofs.bundle_pages(proofs[row[0].id], title))))
            if done % PROGRESS_EVERY == 0:
                filejobs.progress(job_id, done)
        buf = io.BytesIO()
        writer.write(buf)
        relative = filejobs.write_file(job_id, BUNDLE_DIR, ".pdf", buf.getvalue())
        filejobs.finish(job_id, relative, len(rows), receipts=len(rows))
        return {"status": "done", "receipts": len(rows)}
    except Exception:
        log.exception("receipt bundle %s failed", job_id)
        filejobs.fail(job_id, BUNDLE_FAILED)
        return {"status": "failed"}
