"""WhatsApp templates: the spec's texts, placeholders, toggles, variation and editing."""

from __future__ import annotations

import random
from datetime import date, datetime

import pytest

from fibernode import clock
from fibernode.services import settings, wa_templates
from fibernode.services.errors import PermissionDenied, ValidationFailed
from tests.services.invoice_data import logs

FIXED = {"salam": "Halo", "penutup": "Terima kasih 🙏"}

SPEC_REMINDER = """🔔 *Pengingat Tagihan WiFi*

Halo *Ahmad Fauzi*,

Tagihan WiFi Anda untuk *Maret 2026* (pra-bayar) akan jatuh tempo besok:

📋 *Detail Tagihan:*
• Paket: Paket 10 Mbps (10 Mbps)
• Periode: Maret 2026 (pra-bayar)
• Nominal: Rp 150.000
• Jatuh Tempo: 5 Maret 2026

💳 *Pembayaran via Transfer:*
Bank: BCA
No. Rek: 1234567890
A/N: Budi Santoso
Nominal: Rp 150.000

Terima kasih 🙏
_WiFi Sukamaju_"""

SPEC_ISOLATION = """⚠️ *Pemberitahuan Isolir*

Halo *Ahmad Fauzi*,

Layanan WiFi Anda telah di-*isolir* karena tunggakan pembayaran.

Silakan segera lakukan pembayaran untuk mengaktifkan kembali layanan Anda.

💳 *Pembayaran via Transfer:*
Bank: BCA
No. Rek: 1234567890
A/N: Budi Santoso

Hubungi kami jika ada pertanyaan.
_WiFi Sukamaju_"""

SPEC_RECEIPT = """✅ *Nota Pembayaran WiFi*

Halo *Ahmad Fauzi*,

Pembayaran Anda telah dikonfirmasi oleh *Budi Santoso*.

📋 *Detail Pembayaran:*
• Nama: Ahmad Fauzi
• NIK: 3201********0001
• Area: WiFi Sukamaju
• Paket: Paket 10 Mbps (10 Mbps)
• Periode: Maret 2026 (pra-bayar)
• Diskon: Rp 10.000
• Total Bayar: *Rp 140.000*
• Metode: Transfer Bank
• Tanggal Bayar: 4 Maret 2026

🧾 Lihat nota lengkap: https://fibernode.example/receipt/abc

Terima kasih 🙏
_WiFi Sukamaju_"""

ALL_ON = dict.fromkeys(wa_templates.RECEIPT_TOGGLES, True)


def reminder_row(**extra):
    return {"customer_name": "Ahmad Fauzi", "package_name": "Paket 10 Mbps",
            "package_speed": "10 Mbps", "period": "2026-03", "total_amount": 150_000,
            "due_date": date(2026, 3, 5), "bank_name": "BCA", "bank_account": "1234567890",
            "bank_holder": "Budi Santoso", "business_name": "WiFi Sukamaju",
            "today": date(2026, 3, 4), **extra}


def receipt(toggles=None, **extra):
    args = {"customer_name": "Ahmad Fauzi", "period": "2026-03", "total_paid": 140_000,
            "business_name": "WiFi Sukamaju",
            "receipt_url": "https://fibernode.example/receipt/abc",
            "recorded_by": "Budi Santoso", "paid_at": date(2026, 3, 4),
            "nik_masked": "3201********0001", "package_name": "Paket 10 Mbps",
            "package_speed": "10 Mbps", "discount": 10_000, "method": "transfer",
            "toggles": ALL_ON if toggles is None else toggles, **extra}
    return wa_templates.receipt_values(**args)


def test_h1_reminder_is_the_spec_text():
    values = {**wa_templates.reminder_values(reminder_row()), **FIXED}
    assert wa_templates.render(wa_templates.DEFAULTS["reminder_m1"], values) == SPEC_REMINDER


def test_isolation_notice_is_the_spec_text():
    values = wa_templates.isolation_values(
        customer_name="Ahmad Fauzi", business_name="WiFi Sukamaju", bank_name="BCA",
        bank_account="1234567890", bank_holder="Budi Santoso")
    assert wa_templates.render(wa_templates.DEFAULTS["isolation"],
                               {**values, **FIXED}) == SPEC_ISOLATION


def test_receipt_is_the_spec_text_with_every_toggle_on():
    assert wa_templates.render(wa_templates.DEFAULTS["receipt"],
                               {**receipt(), **FIXED}) == SPEC_RECEIPT


@pytest.mark.parametrize(("toggle", "gone"), [
    ("receipt_show_nik", "• NIK:"),
    ("receipt_show_area", "• Area:"),
    ("receipt_show_package", "• Paket:"),
    ("receipt_show_discount", "• Diskon:"),
    ("receipt_show_payment_method", "• Metode:"),
    ("receipt_show_paid_by", "dikonfirmasi oleh"),
])
def test_a_toggle_switched_off_drops_its_line(toggle, gone):
    text = wa_templates.render(wa_templates.DEFAULTS["receipt"],
                               {**receipt({**ALL_ON, toggle: False}), **FIXED})
    assert gone not in text
    assert len(text.splitlines()) < len(SPEC_RECEIPT.splitlines())
    assert "\n\n\n" not in text
    assert "• Total Bayar: *Rp 140.000*" in text
    assert "🧾 Lihat nota lengkap: https://fibernode.example/receipt/abc" in text


def test_receipt_values_follow_the_stored_toggles(world):
    settings.update_settings(world.admin, {"receipt_show_nik": False,
                                           "receipt_show_area": True})
    values = wa_templates.receipt_values(**{
        "customer_name": "A", "period": "2026-03", "total_paid": 1, "business_name": "B",
        "receipt_url": "u", "recorded_by": "C", "paid_at": None, "nik_masked": "x"})
    assert values["nik"] is None and values["nama_mitra"] == "B"


def test_overdue_reminders_count_the_days_late():
    values = wa_templates.reminder_values(reminder_row(today=date(2026, 3, 8)))
    assert values["hari_terlambat"] == "3"
    text = wa_templates.render(wa_templates.DEFAULTS["reminder_p3"], {**values, **FIXED})
    assert "sudah lewat jatuh tempo *3 hari*" in text
    assert "Nominal: Rp 150.000" in text and "{" not in text


def test_greeting_and_closing_vary_between_messages():
    values = wa_templates.reminder_values(reminder_row())
    rng = random.Random(7)
    texts = {wa_templates.render(wa_templates.DEFAULTS["reminder_m1"], values, rng)
             for _ in range(40)}
    assert len(texts) > 5
    for text in texts:
        lines = text.splitlines()
        assert any(lines[2].startswith(g + " *Ahmad Fauzi*") for g in wa_templates.GREETINGS)
        assert lines[-2] in wa_templates.CLOSINGS


def test_missing_bank_details_drop_their_lines():
    values = wa_templates.reminder_values(reminder_row(bank_name=None, bank_account="",
                                                       bank_holder=None))
    text = wa_templates.render(wa_templates.DEFAULTS["reminder_m1"], {**values, **FIXED})
    assert "Bank:" not in text and "No. Rek:" not in text and "A/N:" not in text


def test_template_keys_per_offset():
    assert [wa_templates.template_key_for_offset(o) for o in (-7, -3, -1, 1, 3, 7)] == [
        "reminder_m7", "reminder_m3", "reminder_m1", "reminder_p1", "reminder_p3",
        "reminder_p7"]
    with pytest.raises(ValueError):
        wa_templates.template_key_for_offset(2)
    due = date(2026, 3, 5)
    assert wa_templates.reminder_key_for(due, date(2026, 3, 4)) == "reminder_m1"
    assert wa_templates.reminder_key_for(due, date(2026, 2, 20)) == "reminder_m3"
    assert wa_templates.reminder_key_for(due, date(2026, 3, 9)) == "reminder_p3"
    assert wa_templates.reminder_key_for(due, date(2026, 4, 9)) == "reminder_p7"


def test_every_default_passes_validation():
    for key, text in wa_templates.DEFAULTS.items():
        assert wa_templates.validate(key, text) == {}, key


@pytest.mark.parametrize(("key", "text", "message"), [
    ("receipt", "Halo {nama_pelanggan}, lunas Rp {total_bayar}.",
     "Template wajib memuat {url_nota_web}."),
    ("reminder_m1", "Halo {nama_pelangan} Rp {total_bayar}",
     "Placeholder tidak dikenal: {nama_pelangan}."),
    ("reminder_m1", "Halo {nama_pelanggan} Rp {total_bayar} {url_nota_web}",
     "Placeholder tidak bisa dipakai di template ini: {url_nota_web}."),
    ("isolation", "   ", "Isi pesan wajib diisi."),
    ("isolation", "{nama_pelanggan}" + "x" * 2000,
     "Isi pesan maksimal 2000 karakter (sekarang 2016)."),
])
def test_validation_messages_are_indonesian(key, text, message):
    assert wa_templates.validate(key, text) == {"text": message}
    assert wa_templates.validate("nota", "x") == {"key": "Template tidak dikenal."}


def test_superadmin_edits_and_resets_a_template(world):
    text = wa_templates.DEFAULTS["reminder_m1"].replace("akan jatuh tempo besok",
                                                        "jatuh tempo besok ya")
    view = wa_templates.update_template(world.admin, "reminder_m1", text)
    assert view.customized and view.text == text
    assert wa_templates.load_templates()["reminder_m1"] == text
    assert logs("wa.template.update")[-1].meta["key"] == "reminder_m1"
    assert "jatuh tempo besok ya" in wa_templates.preview("reminder_m1")
    view = wa_templates.reset_template(world.admin, "reminder_m1")
    assert not view.customized
    assert wa_templates.load_templates()["reminder_m1"] == wa_templates.DEFAULTS["reminder_m1"]
    assert len(logs("wa.template.reset")) == 1


def test_only_superadmin_edits_and_bad_text_is_refused(world):
    with pytest.raises(PermissionDenied):
        wa_templates.update_template(world.mitra_a, "receipt", wa_templates.DEFAULTS["receipt"])
    with pytest.raises(ValidationFailed) as exc:
        wa_templates.update_template(world.admin, "receipt", "Lunas {total_bayar}")
    assert exc.value.details == {"text": "Template wajib memuat {url_nota_web}."}
    assert logs("wa.template.update") == []


def test_preview_fills_sample_data(world):
    text = wa_templates.preview("receipt", "Halo {nama_pelanggan}, Rp {total_bayar} "
                                           "{url_nota_web}")
    assert text.startswith("Halo Ahmad Fauzi, Rp 140.000 https://")
    assert "{" not in wa_templates.preview("reminder_p7")


ANY_HOUR = {"Halo", "Hai", "Assalamualaikum"}


@pytest.mark.parametrize(("hour", "part"), [
    (7, "Selamat pagi"), (12, "Selamat siang"), (16, "Selamat sore"), (20, "Selamat malam")])
def test_greeting_fits_the_jakarta_hour_it_is_rendered_at(monkeypatch, hour, part):
    at = datetime(2026, 3, 4, hour, tzinfo=clock.JAKARTA)
    monkeypatch.setattr(clock, "now", lambda: at)
    rng = random.Random(hour)
    picked = {wa_templates.render("{salam}", {}, rng) for _ in range(300)}
    assert picked == ANY_HOUR | {part}  # every fitting greeting, and nothing else


@pytest.mark.parametrize("hour", [7, 12, 16, 20])
def test_queued_messages_greet_only_with_words_that_fit_any_hour(monkeypatch, hour):
    at = datetime(2026, 3, 4, hour, tzinfo=clock.JAKARTA)
    monkeypatch.setattr(clock, "now", lambda: at)
    rng = random.Random(hour)
    picked = {wa_templates.render("{salam}", {}, rng, queued=True) for _ in range(300)}
    assert picked == ANY_HOUR
