"""Payment proofs: upload, storage, processing log, scoping, viewing, deleting, bundles
(SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pypdf import PdfReader
from sqlmodel import select

from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import PaymentProof, PaymentProofStep, PaymentStatus
from fibernode.services import invoices, payment_proofs, receipts
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.services import proof_image_data as gen
from tests.services.invoice_data import invoice, logs, make_invoice


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    """Uploads and job files go to temporary directories."""
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    yield tmp_path
    reset_settings()


@pytest.fixture
def paid(world):
    """Dewi's (mitra1) March invoice paid in full by transfer by the mitra."""
    inv = make_invoice("Dewi Lestari", "2026-03")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer")
    return inv


SLIP = gen.encode(gen.photographed_slip())


def test_attach_stores_the_original_and_queues_processing(world, paid, sent_jobs, dirs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "IMG_2041.jpg")
    assert (view.status, view.status_label, view.original_mime) == ("pending",
                                                                    "Menunggu diproses",
                                                                    "image/jpeg")
    assert (view.width, view.height, view.original_size) == (1200, 1600, len(SLIP))
    assert view.uploaded_by_name == "Budi Santoso" and view.is_running
    assert [s.step for s in view.steps] == ["upload"]
    assert sent_jobs == [(payment_proofs.PROCESS_TASK, (str(view.id),))]  # after the commit
    with new_session() as s:
        row = s.get(PaymentProof, view.id)
    assert row.original_sha256 == hashlib.sha256(SLIP).hexdigest()
    assert row.owner_id == world.mitra_a.user_id and row.invoice_id == paid.id
    # uploads/proofs/<owner>/<yyyy-mm>/<id>-orig.jpg, written completely.
    parts = row.original_path.split("/")
    assert parts[:2] == ["proofs", str(world.mitra_a.user_id)]
    assert parts[3] == f"{view.id}-orig.jpg"
    stored = dirs / "uploads" / row.original_path
    assert stored.read_bytes() == SLIP
    assert not list(stored.parent.glob("*.part"))
    [log] = logs("payment_proof.attach")
    assert log.user_id == world.mitra_a.user_id and log.resource_id == view.id
    assert log.meta["size"] == len(SLIP)


def test_processing_makes_it_ready_with_a_timed_log(world, paid, sent_jobs, dirs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    assert payment_proofs.process_proof(*sent_jobs[0][1]) == {"status": "ready", "reason": None}
    done = payment_proofs.get_proof(world.mitra_a, view.id)
    assert done.is_ready and done.status_label == "Siap" and done.processed_at
    assert [s.step for s in done.steps] == ["upload", "decode", "detect", "warp", "deskew",
                                            "quality", "contrast", "resize", "encode", "store"]
    assert all(s.outcome == "ok" and s.duration_ms >= 0 and s.label for s in done.steps)
    assert sum(s.duration_ms for s in done.steps) > 0
    assert done.document_found and done.blur_score > payment_proofs.proof_images.BLUR_THRESHOLD
    path, media = payment_proofs.proof_file(world.mitra_a, view.id, "processed")
    assert media == "image/jpeg" and path.name == f"{view.id}-proc.jpg"
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    original, media = payment_proofs.proof_file(world.admin, view.id, "original")
    assert original.read_bytes() == SLIP and media == "image/jpeg"
    assert [x.action for x in logs("payment_proof.ready")] == ["payment_proof.ready"]
    # A redelivered task leaves it alone.
    assert payment_proofs.process_proof(view.id) == {"status": "skipped"}
    assert payment_proofs.process_proof("nope") == {"status": None}


def test_blurred_photo_is_rejected_and_the_payment_stands(world, paid, sent_jobs):
    blurred = gen.encode(gen.blurred_slip())
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, blurred, "buram.jpg")
    result = payment_proofs.process_proof(view.id)
    assert result == {"status": "rejected", "reason": "Foto buram, silakan ulangi"}
    done = payment_proofs.get_proof(world.mitra_a, view.id)
    assert done.status_label == "Perlu diulang"
    assert done.steps[-1].step == "quality" and done.steps[-1].outcome == "flagged"
    with pytest.raises(Conflict, match="tidak lolos"):
        payment_proofs.proof_file(world.mitra_a, view.id, "processed")
    payment_proofs.proof_file(world.mitra_a, view.id, "original")  # still viewable
    assert invoice(paid.id).status == PaymentStatus.PAID
    # Retake: a second photo for the same payment.
    again = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "ulang.jpg")
    payment_proofs.process_proof(again.id)
    assert [p.status for p in payment_proofs.list_proofs(world.mitra_a, paid.id)] == [
        "ready", "rejected"]


def test_blank_photo_is_rejected(world, paid, sent_jobs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id,
                                       gen.encode(gen.blank_frame()), "kosong.jpg")
    assert payment_proofs.process_proof(view.id)["reason"] == "Foto hampir kosong, silakan ulangi"


def test_a_crash_while_processing_fails_it_with_the_step_logged(world, paid, sent_jobs,
                                                                 monkeypatch):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")

    def boom(image):
        raise RuntimeError("kontur rusak")

    monkeypatch.setattr(payment_proofs.proof_images, "detect_document", boom)
    assert payment_proofs.process_proof(view.id)["status"] == "failed"
    done = payment_proofs.get_proof(world.admin, view.id)
    assert done.status == "failed" and done.reject_reason == payment_proofs.FAILED_MESSAGE
    assert (done.steps[-1].step, done.steps[-1].outcome) == ("detect", "error")
    assert "kontur rusak" in done.steps[-1].detail


def test_a_missing_original_fails_it(world, paid, sent_jobs, dirs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    for f in (dirs / "uploads").rglob("*-orig.jpg"):
        f.unlink()
    assert payment_proofs.process_proof(view.id)["status"] == "failed"
    assert payment_proofs.get_proof(world.admin, view.id).steps[-1].outcome == "error"


def test_broker_down_fails_the_proof_not_the_upload(world, paid, sent_jobs):
    sent_jobs.refuse(ConnectionError("redis down"))
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    done = payment_proofs.get_proof(world.mitra_a, view.id)
    assert done.status == "failed" and done.reject_reason == payment_proofs.ENQUEUE_FAILED
    assert done.steps[-1].step == "enqueue"


def test_non_images_and_bombs_are_refused_before_anything_is_stored(world, paid, sent_jobs,
                                                                    dirs):
    for data, words in [(b"%PDF-1.4 slip", "bukan gambar"),
                        (gen.png_bomb(), "megapiksel"),
                        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, "HEIC")]:
        with pytest.raises(ValidationFailed) as exc:
            payment_proofs.attach_proof(world.mitra_a, paid.id, data, "x.jpg")
        assert words in exc.value.details["file"]
    assert sent_jobs == [] and not (dirs / "uploads").exists()
    assert logs("payment_proof.attach") == []


def test_an_unpaid_invoice_has_no_payment_to_attach_to(world, sent_jobs):
    inv = make_invoice("Ahmad Fauzi", "2026-03")
    with pytest.raises(ValidationFailed, match="Catat pembayaran"):
        payment_proofs.attach_proof(world.mitra_a, inv.id, SLIP, "slip.jpg")


def test_a_reversed_payment_takes_no_proof_and_leaves_the_bundle(world, paid, sent_jobs):
    invoices.unpay_invoice(world.mitra_a, paid.id, version=2, reason="salah catat")
    with pytest.raises(ValidationFailed):
        payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")


def test_other_tenants_and_anonymous_see_nothing(world, paid, sent_jobs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    payment_proofs.process_proof(view.id)
    for call in (lambda a: payment_proofs.attach_proof(a, paid.id, SLIP, "x.jpg"),
                 lambda a: payment_proofs.list_proofs(a, paid.id),
                 lambda a: payment_proofs.get_proof(a, view.id),
                 lambda a: payment_proofs.proof_file(a, view.id, "original"),
                 lambda a: payment_proofs.proof_file(a, view.id, "processed"),
                 lambda a: payment_proofs.delete_proof(a, view.id)):
        with pytest.raises(NotFound):
            call(world.mitra_b)
        with pytest.raises(AuthenticationRequired):
            call(world.anonymous)
    with pytest.raises(PermissionDenied):
        payment_proofs.attach_proof(Actor.system("job"), paid.id, SLIP, "x.jpg")
    with pytest.raises(NotFound):
        payment_proofs.get_proof(world.mitra_a, uuid.uuid4())
    with pytest.raises(ValidationFailed):
        payment_proofs.proof_file(world.mitra_a, view.id, "../../etc/passwd")
    # The superadmin sees the mitra's proof.
    assert [p.id for p in payment_proofs.list_proofs(world.admin, paid.id)] == [view.id]


def test_delete_removes_row_log_and_files(world, paid, sent_jobs, dirs):
    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    payment_proofs.process_proof(view.id)
    assert len(list((dirs / "uploads").rglob("*.jpg"))) == 2
    payment_proofs.delete_proof(world.mitra_a, view.id)
    assert payment_proofs.list_proofs(world.mitra_a, paid.id) == []
    assert list((dirs / "uploads").rglob("*.jpg")) == []
    with new_session() as s:
        assert s.exec(select(PaymentProofStep)).all() == []
    [log] = logs("payment_proof.delete")
    assert log.meta["status"] == "ready"
    assert invoice(paid.id).status == PaymentStatus.PAID


def test_limit_of_proofs_per_invoice(world, paid, sent_jobs, monkeypatch):
    monkeypatch.setattr(payment_proofs, "MAX_PROOFS_PER_INVOICE", 2)
    for _ in range(2):
        payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    with pytest.raises(ValidationFailed, match="paling banyak"):
        payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")


def test_month_bundle_has_the_ready_proof_after_its_receipt(world, paid, sent_jobs):
    other = make_invoice("Ahmad Fauzi", "2026-03")
    invoices.pay_invoice(world.mitra_a, other.id, version=1, method="cash")
    ready = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    payment_proofs.process_proof(ready.id)
    rejected = payment_proofs.attach_proof(world.mitra_a, paid.id,
                                           gen.encode(gen.blurred_slip()), "buram.jpg")
    payment_proofs.process_proof(rejected.id)
    job = receipts.start_receipt_bundle(world.mitra_a, owner_id=world.mitra_a.user_id,
                                        period="2026-03")
    assert receipts.build_bundle_job(job.id)["status"] == "done"
    reader = PdfReader(str(receipts.file_job_path(world.mitra_a, job.id)))
    texts = [p.extract_text() for p in reader.pages]
    # Ahmad's receipt, Dewi's receipt, then Dewi's one ready slip (not the rejected one).
    assert len(reader.pages) == 3
    assert "Ahmad Fauzi" in texts[0] and "Dewi Lestari" in texts[1]
    assert "Bukti transfer" in texts[2] and "Dewi Lestari" in texts[2]
    assert len(reader.pages[2].images) == 1
    assert "Bukti transfer" not in texts[0] + texts[1]


def test_orphaned_proof_files_are_pruned_by_the_nightly_cleanup(world, paid, sent_jobs, dirs):
    import os
    import time

    from fibernode.services import maintenance

    view = payment_proofs.attach_proof(world.mitra_a, paid.id, SLIP, "slip.jpg")
    with new_session() as s:
        kept = dirs / "uploads" / s.get(PaymentProof, view.id).original_path
    folder = kept.parent
    orphan = folder / "0000-orig.jpg"  # its row went with a deleted invoice
    fresh = folder / "1111-orig.jpg"  # an upload committing right now
    orphan.write_bytes(b"x")
    fresh.write_bytes(b"x")
    day_old = time.time() - 25 * 3600
    for path in (kept, orphan):
        os.utime(path, (day_old, day_old))

    with pytest.raises(PermissionDenied):
        payment_proofs.prune_orphan_files(world.mitra_a)
    result = maintenance.cleanup(Actor.system("cleanup"))

    assert result.proof_files == 1
    assert kept.exists() and fresh.exists() and not orphan.exists()
    [log] = logs("payment_proof.prune_files")
    assert log.meta["count"] == 1 and log.meta["files"][0].endswith("0000-orig.jpg")
