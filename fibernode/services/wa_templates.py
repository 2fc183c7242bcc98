"""WhatsApp message templates: the spec's texts, placeholders, variation and editing.

A template is plain text with ``{placeholder}`` fields. :func:`render` fills them
with already-formatted strings (money without ``Rp``, because the texts write
``Rp {total_bayar}``; dates as ``5 Maret 2026``). A line whose placeholder has no
value (``None``: switched off by a receipt toggle, or simply unknown, like a bank
account never entered) is dropped, so a toggle removes its whole line.

Greeting and closing are ``{salam}`` and ``{penutup}``, picked at random from the
spec's GREETINGS / CLOSINGS for every message (anti-spam variation) unless given;
a greeting always fits the Jakarta time of day it can be sent at.

The superadmin may edit each template (stored in ``settings`` as
``wa_template.<key>``; the default applies while no row exists) and reset it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import long_date, month_year, number
from fibernode.models import Setting
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work

SETTING_PREFIX = "wa_template."
MAX_LENGTH = 2000

# Greetings that fit any hour, and those that fit one part of the day (Jakarta).
TIMELESS_GREETINGS = ("Halo", "Hai", "Assalamualaikum")
GREETINGS = (*TIMELESS_GREETINGS, "Selamat pagi", "Selamat siang", "Selamat sore",
             "Selamat malam")
CLOSINGS = ("Terima kasih 🙏", "Terima kasih banyak", "Salam hangat",
            "Terima kasih atas kerjasamanya", "Hormat kami")

# Days relative to the due date on which a reminder may go out (superadmin setting).
REMINDER_OFFSETS = (-7, -3, -1, 1, 3, 7)

PLACEHOLDERS = frozenset({
    "nama_pelanggan", "bulan_depan", "tahun", "bulan", "nama_paket", "speed", "periode",
    "total_bayar", "diskon", "tanggal_tagihan", "nama_bank", "nomor_rekening",
    "nama_pemilik_rekening", "nama_usaha", "nik", "nama_mitra", "metode_pembayaran",
    "tanggal_bayar", "nama_pencatat", "url_nota_web", "hari_terlambat", "salam", "penutup",
})
# Fields only a payment has, and the day count only an overdue reminder has.
_RECEIPT_ONLY = frozenset({"nik", "metode_pembayaran", "tanggal_bayar", "nama_pencatat",
                           "url_nota_web"})
_OVERDUE_ONLY = frozenset({"hari_terlambat"})

_PAYMENT_BLOCK = """💳 *Pembayaran via Transfer:*
Bank: {nama_bank}
No. Rek: {nomor_rekening}
A/N: {nama_pemilik_rekening}
Nominal: Rp {total_bayar}"""

_DETAIL_BLOCK = """📋 *Detail Tagihan:*
• Paket: {nama_paket} ({speed})
• Periode: {bulan_depan} {tahun} (pra-bayar)
• Nominal: Rp {total_bayar}
• Jatuh Tempo: {tanggal_tagihan}"""


def _reminder(title: str, intro: str, extra: str = "") -> str:
    extra = f"{extra}\n\n" if extra else ""
    return (f"{title}\n\n{{salam}} *{{nama_pelanggan}}*,\n\n{intro}\n\n{_DETAIL_BLOCK}\n\n"
            f"{_PAYMENT_BLOCK}\n\n{extra}{{penutup}}\n_{{nama_usaha}}_")


DEFAULTS: dict[str, str] = {
    "reminder_m7": _reminder(
        "🔔 *Pengingat Tagihan WiFi*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) akan jatuh tempo "
        "pada *{tanggal_tagihan}*. Pembayaran lebih awal membantu layanan Anda tetap lancar:"),
    "reminder_m3": _reminder(
        "🔔 *Pengingat Tagihan WiFi*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) akan jatuh tempo "
        "dalam beberapa hari lagi:"),
    # The spec's H-1 reminder, word for word.
    "reminder_m1": _reminder(
        "🔔 *Pengingat Tagihan WiFi*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) akan jatuh tempo besok:"),
    "reminder_p1": _reminder(
        "🔔 *Tagihan WiFi Lewat Jatuh Tempo*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) sudah lewat jatuh "
        "tempo *{hari_terlambat} hari* dan belum kami terima pembayarannya:",
        "Abaikan pesan ini jika Anda sudah membayar."),
    "reminder_p3": _reminder(
        "⏰ *Tagihan WiFi Belum Dibayar*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) sudah lewat jatuh "
        "tempo *{hari_terlambat} hari*. Mohon segera lakukan pembayaran:",
        "Abaikan pesan ini jika Anda sudah membayar."),
    "reminder_p7": _reminder(
        "⚠️ *Tagihan WiFi Tertunggak*",
        "Tagihan WiFi Anda untuk *{bulan_depan} {tahun}* (pra-bayar) sudah lewat jatuh "
        "tempo *{hari_terlambat} hari*. Agar layanan tidak diisolir, mohon segera "
        "lakukan pembayaran:",
        "Hubungi kami jika ada pertanyaan."),
    "isolation": """⚠️ *Pemberitahuan Isolir*

{salam} *{nama_pelanggan}*,

Layanan WiFi Anda telah di-*isolir* karena tunggakan pembayaran.

Silakan segera lakukan pembayaran untuk mengaktifkan kembali layanan Anda.

💳 *Pembayaran via Transfer:*
Bank: {nama_bank}
No. Rek: {nomor_rekening}
A/N: {nama_pemilik_rekening}

Hubungi kami jika ada pertanyaan.
_{nama_usaha}_""",
    "receipt": """✅ *Nota Pembayaran WiFi*

{salam} *{nama_pelanggan}*,

Pembayaran Anda telah dikonfirmasi oleh *{nama_pencatat}*.

📋 *Detail Pembayaran:*
• Nama: {nama_pelanggan}
• NIK: {nik}
• Area: {nama_mitra}
• Paket: {nama_paket}
• Periode: {bulan} {tahun} (pra-bayar)
• Diskon: Rp {diskon}
• Total Bayar: *Rp {total_bayar}*
• Metode: {metode_pembayaran}
• Tanggal Bayar: {tanggal_bayar}

🧾 Lihat nota lengkap: {url_nota_web}

{penutup}
_{nama_usaha}_""",
}
TEMPLATE_KEYS = tuple(DEFAULTS)
LABELS = {
    "reminder_m7": "Pengingat H-7 (sebelum jatuh tempo)",
    "reminder_m3": "Pengingat H-3 (sebelum jatuh tempo)",
    "reminder_m1": "Pengingat H-1 (sebelum jatuh tempo)",
    "reminder_p1": "Pengingat H+1 (lewat jatuh tempo)",
    "reminder_p3": "Pengingat H+3 (lewat jatuh tempo)",
    "reminder_p7": "Pengingat H+7 (lewat jatuh tempo)",
    "isolation": "Pemberitahuan isolir",
    "receipt": "Nota pembayaran",
}
REQUIRED = {
    "receipt": ("url_nota_web", "total_bayar"),
    "isolation": ("nama_pelanggan",),
    **{key: ("nama_pelanggan", "total_bayar") for key in TEMPLATE_KEYS
       if key.startswith("reminder_")},
}
# Receipt toggles (settings) and the placeholders each one hides.
RECEIPT_TOGGLES = {
    "receipt_show_nik": ("nik",),
    "receipt_show_area": ("nama_mitra",),
    "receipt_show_package": ("nama_paket", "speed"),
    "receipt_show_discount": ("diskon",),
    "receipt_show_payment_method": ("metode_pembayaran",),
    "receipt_show_paid_by": ("nama_pencatat",),
}
METHOD_LABELS = {"cash": "Tunai", "transfer": "Transfer Bank", "qris": "QRIS"}

_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class TemplateView:
    """One editable template as the settings page shows it."""

    key: str
    label: str
    text: str
    default: str
    customized: bool
    placeholders: tuple[str, ...]  # what this template may use, sorted


# --- keys ----------------------------------------------------------------------------------


def template_key_for_offset(offset: int) -> str:
    """The template key of a reminder sent ``offset`` days from the due date.

    ``-1`` (H-1, the spec's reminder) is ``reminder_m1``; ``3`` (H+3) is ``reminder_p3``.

    Raises:
        ValueError: an offset outside :data:`REMINDER_OFFSETS`.
    """
    if offset not in REMINDER_OFFSETS:
        raise ValueError(f"offset pengingat tidak dikenal: {offset}")
    return f"reminder_{'m' if offset < 0 else 'p'}{abs(offset)}"


def reminder_key_for(due_date: date, today: date | None = None) -> str:
    """The reminder template that fits an invoice today (for a manual reminder).

    Overdue: the largest H+ step reached (at least H+1); due tomorrow: H-1; any other
    day before or on the due date: H-3's wording, which names no day count.
    """
    today = today or clock.today()
    late = (today - due_date).days
    if late > 0:
        step = max((o for o in REMINDER_OFFSETS if 0 < o <= late), default=1)
        return template_key_for_offset(step)
    if late == -1:
        return "reminder_m1"
    return "reminder_m3"


def allowed_placeholders(key: str) -> frozenset[str]:
    """Placeholders a template may use (``custom`` texts may use the reminder's)."""
    if key == "receipt":
        return PLACEHOLDERS - _OVERDUE_ONLY
    if key.startswith("reminder_p"):
        return PLACEHOLDERS - _RECEIPT_ONLY
    return PLACEHOLDERS - _RECEIPT_ONLY - _OVERDUE_ONLY


# --- rendering -----------------------------------------------------------------------------


def placeholders_in(text: str) -> list[str]:
    """Placeholder names used in ``text``, in order of first use."""
    return list(dict.fromkeys(_FIELD_RE.findall(text or "")))


def greetings_at(moment: datetime) -> tuple[str, ...]:
    """The greetings that fit ``moment`` in Jakarta (no "Selamat pagi" at 20:00).

    Pagi until 10:59, siang 11:00–14:59, sore 15:00–17:59, malam from 18:00.
    """
    hour = moment.astimezone(clock.JAKARTA).hour
    part = ("pagi" if hour < 11 else "siang" if hour < 15 else "sore" if hour < 18
            else "malam")
    return (*TIMELESS_GREETINGS, f"Selamat {part}")


def render(text: str, values: Mapping[str, str | None],
           rng: random.Random | None = None, *, queued: bool = False) -> str:
    """Fill a template.

    Args:
        text: Template text with ``{placeholder}`` fields.
        values: Formatted values; ``None`` (or absent) drops every line using it.
            ``salam`` / ``penutup`` are picked at random when not given.
        rng: Random source for the greeting and closing (tests pass a seeded one).
        queued: The text waits in the paced queue and may go out hours later, so
            only greetings that fit any hour are used; otherwise the greeting fits
            the current Jakarta time.

    Returns:
        The message. Unknown ``{words}`` stay as typed; runs of blank lines left by
        dropped lines shrink to one.
    """
    rng = rng or random.SystemRandom()
    filled = dict(values)
    if not filled.get("salam"):
        filled["salam"] = rng.choice(TIMELESS_GREETINGS if queued
                                     else greetings_at(clock.now()))
    if not filled.get("penutup"):
        filled["penutup"] = rng.choice(CLOSINGS)
    out: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        names = [n for n in _FIELD_RE.findall(line) if n in PLACEHOLDERS]
        if any(filled.get(n) is None for n in names):
            continue
        line = _FIELD_RE.sub(
            lambda m: str(filled[m.group(1)]) if m.group(1) in PLACEHOLDERS else m.group(0),
            line)
        if not line.strip() and out and not out[-1].strip():
            continue  # one blank line where a dropped line sat between two
        out.append(line)
    return "\n".join(out).strip("\n")


def money(amount: int | None) -> str | None:
    """``150.000`` (the templates write ``Rp`` themselves)."""
    return None if amount is None else number(int(amount))


def _get(row: Any, name: str, default: Any = None) -> Any:
    if isinstance(row, Mapping):
        return row.get(name, default)
    mapping = getattr(row, "_mapping", None)  # SQLAlchemy Row
    if mapping is not None and name in mapping:
        return mapping[name]
    return getattr(row, name, default)


def _month_and_year(period: str) -> tuple[str, str]:
    label = month_year(period)  # "Maret 2026"
    month, _, year = label.rpartition(" ")
    return month, year


def _text(value: Any) -> str | None:
    value = (str(value).strip() if value is not None else "")
    return value or None


def _bank(row: Any) -> dict[str, str | None]:
    return {"nama_bank": _text(_get(row, "bank_name")),
            "nomor_rekening": _text(_get(row, "bank_account")),
            "nama_pemilik_rekening": _text(_get(row, "bank_holder"))}


def reminder_values(row: Any) -> dict[str, str | None]:
    """Values of a reminder from a row (mapping, SQL row or object).

    ``row`` has customer_name, package_name, package_speed, period (YYYY-MM),
    total_amount, due_date, bank_name, bank_account, bank_holder, business_name and
    optionally discount and today (default: today in Jakarta).
    """
    period = _get(row, "period")
    month, year = _month_and_year(period)
    due = _get(row, "due_date")
    today = _get(row, "today") or clock.today()
    late = (today - due).days if due else 0
    discount = _get(row, "discount")
    return {
        "nama_pelanggan": _get(row, "customer_name"),
        "nama_paket": _get(row, "package_name"),
        "speed": _get(row, "package_speed"),
        "bulan_depan": month,
        "bulan": month,
        "tahun": year,
        "periode": f"{month} {year}",
        "total_bayar": money(_get(row, "total_amount")),
        "diskon": money(discount) if discount else None,
        "tanggal_tagihan": long_date(due),
        "hari_terlambat": str(late) if late > 0 else None,
        "nama_usaha": _get(row, "business_name"),
        "nama_mitra": _get(row, "business_name"),
        **_bank(row),
    }


def isolation_values(*, customer_name: str, business_name: str, bank_name: str | None,
                     bank_account: str | None, bank_holder: str | None,
                     **extra: str | None) -> dict[str, str | None]:
    """Values of the isolir notice (the owner's bank details, the subscriber's name)."""
    return {"nama_pelanggan": customer_name, "nama_usaha": business_name,
            "nama_mitra": business_name,
            **_bank({"bank_name": bank_name, "bank_account": bank_account,
                     "bank_holder": bank_holder}),
            **extra}


def receipt_toggles() -> dict[str, bool]:
    """The receipt toggles now in force (``receipt_show_*`` settings)."""
    values = settings_service.get_values(list(RECEIPT_TOGGLES))
    return {k: (values.get(k) or "").strip().lower() == "true" for k in RECEIPT_TOGGLES}


def receipt_values(*, customer_name: str, period: str, total_paid: int,
                   business_name: str, receipt_url: str, recorded_by: str | None,
                   paid_at: datetime | date | None, nik_masked: str | None = None,
                   package_name: str | None = None, package_speed: str | None = None,
                   discount: int | None = None, method: str | None = None,
                   toggles: Mapping[str, bool] | None = None) -> dict[str, str | None]:
    """Values of the payment receipt, with switched-off fields set to ``None``.

    Args:
        customer_name: The subscriber.
        period: Invoice period ``YYYY-MM``.
        total_paid: Rupiah paid on the invoice so far.
        business_name: The owner's business (area and signature).
        receipt_url: Public link of the web receipt.
        recorded_by: Name of whoever recorded the payment.
        paid_at: When (shown as a Jakarta date).
        nik_masked: Masked NIK, if any.
        package_name: Package name.
        package_speed: Package speed.
        discount: Discount in Rupiah.
        method: ``cash`` / ``transfer`` / ``qris``.
        toggles: Receipt toggles; default: the current settings.
    """
    toggles = receipt_toggles() if toggles is None else toggles
    month, year = _month_and_year(period)
    if isinstance(paid_at, datetime):
        paid_at = paid_at.astimezone(clock.JAKARTA).date()
    package = None
    if package_name:
        package = f"{package_name} ({package_speed})" if package_speed else package_name
    values: dict[str, str | None] = {
        "nama_pelanggan": customer_name,
        "nama_pencatat": _text(recorded_by),
        "nik": _text(nik_masked),
        "nama_mitra": business_name,
        "nama_paket": package,
        "speed": _text(package_speed),
        "bulan": month,
        "bulan_depan": month,
        "tahun": year,
        "periode": f"{month} {year}",
        "diskon": money(discount) if discount is not None else None,
        "total_bayar": money(total_paid),
        "metode_pembayaran": METHOD_LABELS.get(method or "", method) if method else None,
        "tanggal_bayar": long_date(paid_at) if paid_at else None,
        "url_nota_web": receipt_url,
        "nama_usaha": business_name,
    }
    for toggle, fields in RECEIPT_TOGGLES.items():
        if not toggles.get(toggle, True):
            for field in fields:
                values[field] = None
    return values


# --- stored templates ----------------------------------------------------------------------


def receipt_settings(session: Session) -> tuple[str, dict[str, bool]]:
    """The receipt template and the receipt toggles, in one read (the payment path)."""
    keys = [*RECEIPT_TOGGLES, SETTING_PREFIX + "receipt"]
    stored = dict(session.exec(select(Setting.key, Setting.value)
                               .where(Setting.key.in_(keys))).all())
    template = stored.get(SETTING_PREFIX + "receipt") or DEFAULTS["receipt"]
    toggles = {k: ((stored.get(k) or settings_service.DEFAULTS.get(k, "")).strip().lower()
                   == "true") for k in RECEIPT_TOGGLES}
    return template, toggles


def load_templates() -> dict[str, str]:
    """Every template's current text (the stored edit, else the default)."""
    with new_session() as s:
        rows = s.exec(select(Setting.key, Setting.value)
                      .where(Setting.key.startswith(SETTING_PREFIX))).all()
    stored = {k[len(SETTING_PREFIX):]: v for k, v in rows if v}
    return {key: stored.get(key, default) for key, default in DEFAULTS.items()}


def validate(key: str, text: str) -> dict[str, str]:
    """Problems of a template text, as ``{field: Indonesian message}`` (empty if fine).

    Checks the key, emptiness, length (≤ 2000 characters), unknown placeholders,
    placeholders this template cannot fill, and the ones it must keep.
    """
    if key not in DEFAULTS and key != "custom":
        return {"key": "Template tidak dikenal."}
    text = text or ""
    if not text.strip():
        return {"text": "Isi pesan wajib diisi."}
    if len(text) > MAX_LENGTH:
        return {"text": f"Isi pesan maksimal {MAX_LENGTH} karakter "
                        f"(sekarang {len(text)})."}
    used = placeholders_in(text)
    unknown = [n for n in used if n not in PLACEHOLDERS]
    if unknown:
        return {"text": "Placeholder tidak dikenal: "
                        + ", ".join(f"{{{n}}}" for n in unknown) + "."}
    allowed = allowed_placeholders(key)
    foreign = [n for n in used if n not in allowed]
    if foreign:
        return {"text": "Placeholder tidak bisa dipakai di template ini: "
                        + ", ".join(f"{{{n}}}" for n in foreign) + "."}
    missing = [n for n in REQUIRED.get(key, ()) if n not in used]
    if missing:
        return {"text": "Template wajib memuat "
                        + ", ".join(f"{{{n}}}" for n in missing) + "."}
    return {}


def _view(key: str, stored: dict[str, str]) -> TemplateView:
    return TemplateView(key=key, label=LABELS[key], text=stored[key], default=DEFAULTS[key],
                        customized=stored[key] != DEFAULTS[key],
                        placeholders=tuple(sorted(allowed_placeholders(key))))


def list_templates(actor: Actor) -> list[TemplateView]:
    """Every template with its label, current text and default (superadmin only)."""
    require_superadmin(actor)
    stored = load_templates()
    return [_view(key, stored) for key in TEMPLATE_KEYS]


def update_template(actor: Actor, key: str, text: str) -> TemplateView:
    """Store an edited template (superadmin only), audited with before and after.

    Raises:
        ValidationFailed: unknown key, empty or too long text, bad placeholders.
    """
    require_superadmin(actor)
    text = (text or "").replace("\r\n", "\n").strip()
    problems = validate(key, text)
    if key == "custom":
        problems = {"key": "Template tidak dikenal."}
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        s = uow.session
        row = s.exec(select(Setting).where(Setting.key == SETTING_PREFIX + key)).first()
        before = row.value if row is not None else None
        if row is None:
            s.add(Setting(key=SETTING_PREFIX + key, value=text))
        elif row.value != text:
            row.value = text
            row.updated_at = clock.now()
        if before != text:
            uow.audit("wa.template.update", "settings", None, key=key,
                      before=before or DEFAULTS[key], after=text)
    return _view(key, {**load_templates(), key: text})


def reset_template(actor: Actor, key: str) -> TemplateView:
    """Go back to the default text of a template (superadmin only, audited).

    Raises:
        ValidationFailed: unknown key.
    """
    require_superadmin(actor)
    if key not in DEFAULTS:
        raise ValidationFailed({"key": "Template tidak dikenal."})
    with unit_of_work(actor) as uow:
        s = uow.session
        row = s.exec(select(Setting).where(Setting.key == SETTING_PREFIX + key)).first()
        if row is not None:
            uow.audit("wa.template.reset", "settings", None, key=key, before=row.value)
            s.delete(row)
    return _view(key, {**load_templates(), key: DEFAULTS[key]})


SAMPLE = {
    "customer_name": "Ahmad Fauzi", "package_name": "Paket 10 Mbps",
    "package_speed": "10 Mbps", "total_amount": 150_000, "discount": 10_000,
    "bank_name": "BCA", "bank_account": "1234567890", "bank_holder": "Budi Santoso",
    "business_name": "WiFi Sukamaju",
}


def sample_values(key: str, today: date | None = None) -> dict[str, str | None]:
    """Realistic sample values for a template (the live preview)."""
    today = today or clock.today()
    period = clock.current_period(date(today.year + today.month // 12, today.month % 12 + 1, 1))
    if key == "receipt":
        return receipt_values(
            customer_name=SAMPLE["customer_name"], period=period, total_paid=140_000,
            business_name=SAMPLE["business_name"],
            receipt_url="https://contoh.fibernode.id/receipt/contoh-token",
            recorded_by="Budi Santoso", paid_at=today, nik_masked="3201********0001",
            package_name=SAMPLE["package_name"], package_speed=SAMPLE["package_speed"],
            discount=SAMPLE["discount"], method="transfer")
    if key == "isolation":
        return isolation_values(customer_name=SAMPLE["customer_name"],
                                business_name=SAMPLE["business_name"],
                                bank_name=SAMPLE["bank_name"],
                                bank_account=SAMPLE["bank_account"],
                                bank_holder=SAMPLE["bank_holder"])
    from datetime import timedelta

    offset = -1
    if key.startswith("reminder_") and key in DEFAULTS:
        offset = (-1 if key[9] == "m" else 1) * int(key[10:])
    due = today - timedelta(days=offset)
    return reminder_values({**SAMPLE, "period": period, "due_date": due, "today": today})


def preview(key: str, text: str | None = None) -> str:
    """The template (``text``, or the stored one) filled with sample data.

    Uses the first greeting and closing so the preview does not flicker while typing.
    """
    if text is None:
        text = load_templates().get(key, "")
    values = {**sample_values(key), "salam": GREETINGS[0], "penutup": CLOSINGS[0]}
    return render(text, values)
