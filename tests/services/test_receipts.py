"""Receipts: public lookup by token, toggled fields, bills, verification, PDF, month bundles."""

from __future__ import annotations

import io
import re
import secrets
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlmodel import select

from fibernode import clock
from fibernode.config import reset_settings
from fibernode.db import get_engine, new_session
from fibernode.models import FileJob, FileJobStatus, Invoice, PaymentStatus
from fibernode.services import customers, filejobs, invoices, maintenance, receipts, settings
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.services.invoice_data import customer, logs, make_invoice, set_bank

NIK = "3201234567890001"
OPTIONAL = ("company_name", "logo_url", "customer_phone", "nik_masked", "area", "package_name",
            "package_speed", "amount", "discount", "payment_method", "payment_method_label",
            "paid_by_name")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Files of bundle jobs go to a temporary data directory."""
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PUBLIC_URL", "https://tagihan.contoh.id/")
    reset_settings()
    yield tmp_path / "data"
    reset_settings()


def put(**values) -> None:
    settings.update_settings(Actor.system("test"), values)


@pytest.fixture
def paid(world):
    """Dewi's (mitra1) invoice paid in full by the mitra by transfer."""
    customers.update_customer(world.admin, customer("Dewi Lestari").id, nik=NIK)
    inv = make_invoice("Dewi Lestari", "2026-03")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer")
    return inv


# --- lookup --------------------------------------------------------------------------------


def test_paid_receipt_with_default_toggles(paid):
    view = receipts.get_receipt(paid.receipt_token)
    assert view.is_paid is True and view.status == PaymentStatus.PAID
    assert (view.customer_name, view.customer_phone, view.area, view.company_name) == (
        "Dewi Lestari", "6289876543210", "WiFi Sukamaju", "WiFi Sukamaju")
    assert (view.package_name, view.package_speed) == ("Paket 20 Mbps", "20 Mbps")
    assert (view.amount, view.discount, view.total_amount, view.paid_amount, view.remaining) \
        == (150_000, 10_000, 140_000, 140_000, 0)
    assert (view.payment_method, view.payment_method_label, view.paid_by_name) == (
        "transfer", "Transfer Bank", "Budi Santoso")
    assert view.period == "2026-03" and view.period_label == "Maret 2026 (pra-bayar)"
    assert view.due_date == paid.due_date and view.paid_at is not None
    assert view.logo_url == "/logo.svg"
    assert view.footer_text == "Terima kasih atas pembayaran Anda."
    assert view.nik_masked is None  # receipt_show_nik is off by default
    assert view.bank_account is None and view.bank_name is None and view.bank_holder is None
    assert view.receipt_url == f"https://tagihan.contoh.id/receipt/{paid.receipt_token}"
    assert view.qr_svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}", view.verification_code)


def test_toggled_off_fields_are_absent(paid):
    put(**{key: False for key in receipts.TOGGLE_KEYS}, receipt_footer_text="")
    view = receipts.get_receipt(paid.receipt_token)
    assert all(getattr(view, field) is None for field in OPTIONAL)
    assert (view.customer_name, view.total_amount, view.period_label) == (
        "Dewi Lestari", 140_000, "Maret 2026 (pra-bayar)")
    assert view.footer_text == ""
    shown = receipts.display_fields(view)
    for key in ("logo_url", "company_name", "customer_phone", "nik", "area", "package",
                "amount", "discount", "payment_method", "paid_by"):
        assert shown[key] == "", key
    assert shown["customer_name"] == "Dewi Lestari" and shown["total"] == "Rp 140.000"
    # The PDF does not print them either.
    text = pdf_text(receipts.receipt_pdf(paid.receipt_token))
    for hidden in ("6289876543210", "WiFi Sukamaju", "Paket 20", "Transfer", "Budi Santoso",
                   "Diskon"):
        assert hidden not in text


def test_each_toggle_hides_its_own_field(paid):
    pairs = {"receipt_show_customer_phone": ("customer_phone",),
             "receipt_show_area": ("area",),
             "receipt_show_company_name": ("company_name",),
             "receipt_show_package": ("package_name", "package_speed"),
             "receipt_show_discount": ("discount", "amount"),
             "receipt_show_payment_method": ("payment_method", "payment_method_label"),
             "receipt_show_paid_by": ("paid_by_name",),
             "receipt_logo_enabled": ("logo_url",)}
    for key, fields in pairs.items():
        put(**{key: False})
        view = receipts.get_receipt(paid.receipt_token)
        assert all(getattr(view, f) is None for f in fields), key
        others = set(OPTIONAL) - set(fields) - {"nik_masked"}
        assert all(getattr(view, f) is not None for f in others), key
        put(**{key: True})


def test_nik_is_masked_when_enabled(paid):
    put(receipt_show_nik=True)
    assert receipts.get_receipt(paid.receipt_token).nik_masked == "3201********0001"
    assert NIK not in pdf_text(receipts.receipt_pdf(paid.receipt_token))
    # No NIK stored: nothing to show.
    other = make_invoice("Ahmad Fauzi", "2026-03")
    assert receipts.get_receipt(other.receipt_token).nik_masked is None


def test_stored_logo_url_is_used(paid):
    put(logo_url="/uploads/logo-desa.png")
    assert receipts.get_receipt(paid.receipt_token).logo_url == "/uploads/logo-desa.png"
    # Not on disk: the PDF goes without it.
    assert receipts.receipt_pdf(paid.receipt_token).startswith(b"%PDF")


def test_unpaid_invoice_is_a_bill_with_bank_details(world):
    set_bank(world.mitra_a.user_id, "BCA", "1234567890", "Budi Santoso")
    inv = make_invoice("Ahmad Fauzi", "2026-03")
    view = receipts.get_receipt(inv.receipt_token)
    assert view.is_paid is False and view.status == PaymentStatus.UNPAID
    assert (view.bank_name, view.bank_account, view.bank_holder) == (
        "BCA", "1234567890", "Budi Santoso")
    assert (view.paid_at, view.payment_method, view.paid_by_name) == (None, None, None)
    assert (view.paid_amount, view.remaining) == (0, 100_000)
    text = pdf_text(receipts.receipt_pdf(inv.receipt_token))
    assert "TAGIHAN INTERNET" in text and "BELUM LUNAS" in text and "1234567890" in text
    # Partly paid: still a bill, showing what is left.
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash", amount=30_000)
    view = receipts.get_receipt(inv.receipt_token)
    assert (view.is_paid, view.status, view.remaining) == (False, PaymentStatus.PARTIAL, 70_000)
    assert view.bank_account == "1234567890" and view.payment_method_label == "Tunai"
    assert "Rp 70.000" in pdf_text(receipts.receipt_pdf(inv.receipt_token))
    # Paid: no bank details any more.
    invoices.pay_invoice(world.mitra_a, inv.id, version=2, method="cash")
    assert receipts.get_receipt(inv.receipt_token).bank_account is None


def test_owner_without_bank_account_shows_none(world):
    inv = make_invoice("Rudi Hartono", "2026-03")
    assert receipts.get_receipt(inv.receipt_token).bank_account is None


@pytest.mark.parametrize("token", [
    "", "a", "short", "x" * 101, "../../etc/passwd", "abc def ghi jkl mno pqr",
    "token'; DROP TABLE invoices;--", None, 12345, "ÄÖÜäöüÄÖÜäöüÄÖÜäöüÄÖÜ",
])
def test_malformed_tokens_are_refused_before_any_query(world, token, monkeypatch):
    monkeypatch.setattr(receipts, "new_session", lambda: pytest.fail("queried"))
    monkeypatch.setattr(receipts, "get_engine", lambda: pytest.fail("queried"))
    assert receipts.get_receipt(token) is None
    assert receipts.receipt_pdf(token) is None


def test_random_tokens_find_nothing_quickly(world):
    make_invoice("Ahmad Fauzi", "2026-03")
    start = time.perf_counter()
    found = [receipts.get_receipt(secrets.token_urlsafe(24)) for _ in range(10_000)]
    elapsed = time.perf_counter() - start
    assert found == [None] * 10_000
    assert elapsed < 30, f"10,000 lookups took {elapsed:.1f} s"


@pytest.mark.both_dialects("the index is checked with each dialect's own EXPLAIN")
def test_token_lookup_uses_an_index(world):
    engine = get_engine()
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET enable_seqscan = off"))
            plan = " ".join(conn.execute(sa.text(
                "EXPLAIN SELECT id FROM invoices WHERE receipt_token = 'abc'")).scalars())
            assert "Index" in plan
        else:
            plan = " ".join(str(r) for r in conn.execute(sa.text(
                "EXPLAIN QUERY PLAN SELECT id FROM invoices WHERE receipt_token = 'abc'")))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan


def test_a_deleted_invoice_is_like_one_that_never_existed(paid, world):
    token = paid.receipt_token
    customers.delete_customer(world.admin, paid.customer_id)
    assert receipts.get_receipt(token) is None


# --- verification --------------------------------------------------------------------------


def test_verification_code_is_stable_and_verifiable(paid, monkeypatch):
    token = paid.receipt_token
    code = receipts.verification_code(token)
    assert code == receipts.verification_code(token) == receipts.get_receipt(token) \
        .verification_code
    assert receipts.verify_code(token, code)
    assert receipts.verify_code(token, code.lower().replace("-", " "))
    assert not receipts.verify_code(token, "AAAA-AAAA")
    assert not receipts.verify_code(token, "")
    assert not receipts.verify_code("bad token", code)
    other = secrets.token_urlsafe(24)
    assert receipts.verification_code(other) != code
    # Bound to the server's secret.
    monkeypatch.setenv("JWT_SECRET", "another-secret-another-secret-another-secret")
    reset_settings()
    assert receipts.verification_code(token) != code
    assert not receipts.verify_code(token, code)


# --- PDF -----------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_receipt_pdf(paid):
    data = receipts.receipt_pdf(paid.receipt_token)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = pdf_text(data)
    view = receipts.get_receipt(paid.receipt_token)
    for expected in ("Dewi Lestari", "NOTA PEMBAYARAN", "LUNAS", "Maret 2026 (pra-bayar)",
                     "Rp 140.000", "Transfer Bank", "Budi Santoso", view.verification_code,
                     "Kode verifikasi", "Terima kasih atas pembayaran Anda."):
        assert expected in text, expected
    assert "BELUM LUNAS" not in text
    # The QR code is an image on the page (and so is the logo).
    assert len(reader.pages[0].images) >= 1


def test_pdf_with_names_outside_latin1(world):
    cust = customer("Ahmad Fauzi")
    customers.update_customer(world.admin, cust.id, name="Ahmad Fauzi — Łukasz ☕")
    inv = make_invoice(cust, "2026-03")
    text = pdf_text(receipts.receipt_pdf(inv.receipt_token))
    assert "Ahmad Fauzi" in text


def test_logo_files_for_the_pdf(data_dir):
    from fibernode.config import PROJECT_ROOT

    assert receipts._logo_file("/logo.svg") == (PROJECT_ROOT / "assets" / "logo.svg").resolve()
    (data_dir / "uploads").mkdir(parents=True)
    (data_dir / "uploads" / "logo.png").write_bytes(b"png")
    assert receipts._logo_file("/uploads/logo.png?v=2") == \
        (data_dir / "uploads" / "logo.png").resolve()
    for url in ("https://contoh.id/logo.png", "//contoh.id/logo.png", "/../pyproject.toml",
                "/uploads/../../pyproject.toml", "/tidak-ada.png", "logo.svg"):
        assert receipts._logo_file(url) is None, url


def test_unknown_token_has_no_pdf(world):
    assert receipts.receipt_pdf(secrets.token_urlsafe(24)) is None


# --- month bundle --------------------------------------------------------------------------


@pytest.fixture
def month(world):
    """2026-03: Ahmad and Dewi (mitra1) paid, a third mitra1 subscriber unpaid,
    Rudi (superadmin) paid."""
    for name in ("Ahmad Fauzi", "Dewi Lestari", "Rudi Hartono"):
        inv = make_invoice(name, "2026-03")
        invoices.pay_invoice(world.admin, inv.id, version=1, method="cash")
    customers.create_customer(world.mitra_a, name="Citra Dewi", phone="081299990000",
                              package_id=customer("Ahmad Fauzi").package_id, billing_date=3)
    make_invoice("Citra Dewi", "2026-03")
    return world


def test_mitra_builds_its_month_bundle(month, sent_jobs, data_dir):
    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    assert (job.status, job.kind, job.progress_total, job.progress_done) == (
        FileJobStatus.PENDING, "receipt_bundle", 2, 0)
    assert job.filename == "nota-wifi-sukamaju-2026-03.pdf"
    assert job.params == {"owner_id": str(month.mitra_a.user_id), "period": "2026-03"}
    assert job.created_by_name == "Budi Santoso" and job.is_running
    assert sent_jobs == [(receipts.BUNDLE_TASK, (str(job.id),))]
    [log] = logs("receipt.bundle")
    assert log.user_id == month.mitra_a.user_id and log.meta["receipts"] == 2
    with pytest.raises(Conflict):  # not built yet
        receipts.file_job_path(month.mitra_a, job.id)

    assert receipts.build_bundle_job(str(job.id)) == {"status": "done", "receipts": 2}

    done = receipts.get_file_job(month.mitra_a, job.id)
    assert (done.status, done.progress_done, done.progress_percent, done.is_ready) == (
        FileJobStatus.DONE, 2, 100, True)
    assert done.expires_at > clock.now() + timedelta(hours=23)
    path = receipts.file_job_path(month.mitra_a, job.id)
    assert path.is_file() and data_dir / "files" in path.parents
    reader = PdfReader(str(path))
    assert len(reader.pages) == 2
    pages = [p.extract_text() for p in reader.pages]
    assert "Ahmad Fauzi" in pages[0] and "Dewi Lestari" in pages[1]
    assert not any("Rudi Hartono" in p or "Citra Dewi" in p for p in pages)
    # A second delivery of the task does nothing.
    assert receipts.build_bundle_job(job.id) == {"status": "skipped"}
    assert receipts.build_bundle_job("not-a-uuid") == {"status": None}


def test_the_worker_task_builds_the_bundle(month, sent_jobs):
    from workers import tasks

    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    assert tasks.build_receipt_bundle(str(job.id)) == {"status": "done", "receipts": 2}
    assert receipts.get_file_job(month.mitra_a, job.id).is_ready


def test_superadmin_bundles_any_owner(month, sent_jobs):
    job = receipts.start_receipt_bundle(month.admin, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    receipts.build_bundle_job(job.id)
    assert len(PdfReader(str(receipts.file_job_path(month.admin, job.id))).pages) == 2
    # The owning mitra did not create it, so it cannot see it.
    with pytest.raises(NotFound):
        receipts.get_file_job(month.mitra_a, job.id)


def test_bundle_permissions_and_validation(month, sent_jobs):
    mine = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                         period="2026-03")
    with pytest.raises(PermissionDenied):
        receipts.start_receipt_bundle(month.mitra_b, owner_id=month.mitra_a.user_id,
                                      period="2026-03")
    with pytest.raises(PermissionDenied):
        receipts.start_receipt_bundle(month.mitra_a, owner_id=month.admin.user_id,
                                      period="2026-03")
    with pytest.raises(AuthenticationRequired):
        receipts.start_receipt_bundle(month.anonymous, owner_id=month.mitra_a.user_id,
                                      period="2026-03")
    with pytest.raises(NotFound):
        receipts.start_receipt_bundle(month.admin, owner_id=uuid.uuid4(), period="2026-03")
    with pytest.raises(ValidationFailed) as err:
        receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                      period="2026-04")
    assert err.value.details == {"period": "Belum ada tagihan lunas pada periode April 2026."}
    with pytest.raises(ValidationFailed):
        receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                      period="03-2026")
    with pytest.raises(ValidationFailed):  # mitra2 has no paid invoice at all
        receipts.start_receipt_bundle(month.mitra_b, owner_id=month.mitra_b.user_id,
                                      period="2026-03")
    assert sent_jobs == [(receipts.BUNDLE_TASK, (str(mine.id),))]
    # Only the creator (or the superadmin) sees the job.
    with pytest.raises(NotFound):
        receipts.get_file_job(month.mitra_b, mine.id)
    with pytest.raises(NotFound):
        receipts.file_job_path(month.mitra_b, mine.id)
    with pytest.raises(AuthenticationRequired):
        receipts.get_file_job(month.anonymous, mine.id)
    with pytest.raises(NotFound):
        receipts.get_file_job(month.admin, uuid.uuid4())
    assert receipts.get_file_job(month.admin, mine.id).id == mine.id


def test_progress_is_stored_as_it_goes(month, sent_jobs, monkeypatch):
    monkeypatch.setattr(receipts, "PROGRESS_EVERY", 1)
    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    seen = []
    real = filejobs.progress

    def spy(job_id, done):
        real(job_id, done)
        seen.append(receipts.get_file_job(month.mitra_a, job_id).progress_done)

    monkeypatch.setattr(filejobs, "progress", spy)
    receipts.build_bundle_job(job.id)
    assert seen == [1, 2]


def test_a_failing_render_fails_the_job(month, sent_jobs, monkeypatch):
    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")

    def broken(view):
        raise RuntimeError("font hilang")

    monkeypatch.setattr(receipts, "render_pdf", broken)
    assert receipts.build_bundle_job(job.id) == {"status": "failed"}
    failed = receipts.get_file_job(month.mitra_a, job.id)
    assert failed.status == FileJobStatus.FAILED and failed.error == receipts.BUNDLE_FAILED
    with pytest.raises(Conflict) as err:
        receipts.file_job_path(month.mitra_a, job.id)
    assert err.value.message == receipts.BUNDLE_FAILED


def test_unreachable_broker_fails_the_job(month, sent_jobs):
    sent_jobs.refuse(ConnectionError("broker mati"))
    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    failed = receipts.get_file_job(month.mitra_a, job.id)
    assert failed.status == FileJobStatus.FAILED and "Antrian" in failed.error


def test_expired_files_are_cleaned_up(month, sent_jobs, data_dir):
    old = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    fresh = receipts.start_receipt_bundle(month.admin, owner_id=month.mitra_a.user_id,
                                          period="2026-03")
    receipts.build_bundle_job(old.id)
    receipts.build_bundle_job(fresh.id)
    old_path = receipts.file_job_path(month.mitra_a, old.id)
    with new_session() as s:
        s.get(FileJob, old.id).expires_at = clock.now() - timedelta(minutes=1)
        s.commit()
    with pytest.raises(NotFound):  # expired: no longer offered even before the cleanup
        receipts.file_job_path(month.mitra_a, old.id)
    result = maintenance.cleanup(Actor.system("cleanup"))
    assert result.files == 1
    assert not old_path.exists()
    assert receipts.file_job_path(month.admin, fresh.id).is_file()
    with pytest.raises(NotFound):
        receipts.get_file_job(month.mitra_a, old.id)
    assert logs("maintenance.cleanup")[-1].meta["files"] == 1


def test_bundle_with_nothing_paid_any_more_fails(month, sent_jobs):
    job = receipts.start_receipt_bundle(month.mitra_a, owner_id=month.mitra_a.user_id,
                                        period="2026-03")
    with new_session() as s:
        mine = s.exec(select(Invoice).where(Invoice.owner_id == month.mitra_a.user_id,
                                            Invoice.paid_amount > 0)).all()
    for inv in mine:
        invoices.unpay_invoice(month.admin, inv.id, version=inv.version, reason="salah")
    assert receipts.build_bundle_job(job.id) == {"status": "failed", "receipts": 0}
    assert receipts.get_file_job(month.mitra_a, job.id).error == receipts.NOTHING_PAID
