"""Payment proofs (bukti transfer): photos of transfer slips attached to payments.

:func:`attach_proof` checks the upload (type by magic bytes, size, pixel count;
see :mod:`proof_images`), stores the original under the uploads volume
(``proofs/<owner>/<yyyy-mm>/<id>-orig.<ext>``), records the row as ``pending`` with
its audit row in one transaction, and only after the commit asks a Celery worker
(task ``process_payment_proof``) to run :func:`process_proof`. The worker logs
every step (``payment_proof_steps``: outcome and milliseconds) and ends the proof
``ready`` (processed JPEG next to the original), ``rejected`` (blurry or nearly
blank: the user is asked to retake it, the processed file is not used) or
``failed`` (an error; the log says at which step).

A rejected or failed proof leaves the payment untouched: the money was recorded by
:func:`fibernode.services.invoices.pay_invoice`; the photo is only evidence.

Only the payment's owner (mitra) and the superadmin see proofs; for anyone else a
proof, like the invoice, does not exist (:class:`NotFound`). Ready proofs of
payments that were not reversed go into the month's receipt bundle
(:func:`bundle_pages`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import (
    Invoice,
    Payment,
    PaymentProof,
    PaymentProofStatus,
    PaymentProofStep,
    User,
)
from fibernode.services import jobqueue, proof_images, storage
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.scoping import scoped
from fibernode.services.uow import unit_of_work
from fibernode.services.validation import as_uuid

log = logging.getLogger(__name__)

PROOFS_DIR = "proofs"
PROCESS_TASK = "workers.tasks.process_payment_proof"  # the worker task that processes a proof
MAX_PROOFS_PER_INVOICE = 10
NOT_FOUND = "Bukti transfer tidak ditemukan."
INVOICE_NOT_FOUND = "Tagihan tidak ditemukan."
NO_PAYMENT = "Catat pembayaran tagihan ini terlebih dahulu, lalu unggah bukti transfernya."
TOO_MANY = (f"Satu tagihan paling banyak {MAX_PROOFS_PER_INVOICE} foto bukti. Hapus foto "
            "yang tidak dipakai terlebih dahulu.")
NOT_READY = "Foto bukti belum selesai diproses."
NOT_PROCESSED = "Foto ini tidak lolos pemeriksaan, jadi tidak ada hasil olahannya."
FAILED_MESSAGE = "Foto gagal diproses. Silakan unggah ulang."
ENQUEUE_FAILED = "Antrian proses latar belakang tidak dapat dihubungi. Silakan unggah ulang."
STATUS_LABELS = {
    "pending": "Menunggu diproses",
    "processing": "Sedang diproses",
    "ready": "Siap",
    "rejected": "Perlu diulang",
    "failed": "Gagal diproses",
}
STEP_LABELS = {
    "upload": "Unggah", "decode": "Baca gambar", "detect": "Deteksi dokumen",
    "warp": "Luruskan perspektif", "deskew": "Luruskan kemiringan", "quality": "Cek kualitas",
    "contrast": "Kontras", "resize": "Ubah ukuran", "encode": "Simpan JPEG",
    "store": "Simpan file", "enqueue": "Antrian",
}
_proofs = PaymentProof.__table__


@dataclass(frozen=True)
class ProofStepView:
    """One logged processing step."""

    step: str
    label: str
    outcome: str  # ok, flagged, error
    duration_ms: int
    detail: str


@dataclass(frozen=True)
class ProofView:
    """A proof photo as the UI and the API show it (``steps`` oldest first)."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    payment_id: uuid.UUID
    owner_id: uuid.UUID
    status: str
    status_label: str
    reject_reason: str | None
    original_filename: str
    original_mime: str
    original_size: int
    width: int | None
    height: int | None
    processed_width: int | None
    processed_height: int | None
    blur_score: float | None
    blank_score: float | None
    document_found: bool | None
    skew_angle: float | None
    uploaded_by_name: str
    created_at: datetime
    processed_at: datetime | None
    steps: tuple[ProofStepView, ...]

    @property
    def is_ready(self) -> bool:
        """Whether the processed image can be shown and bundled."""
        return self.status == PaymentProofStatus.READY

    @property
    def is_running(self) -> bool:
        """Whether a worker still has to finish it (the UI keeps polling)."""
        return self.status in (PaymentProofStatus.PENDING, PaymentProofStatus.PROCESSING)


# --- files ---------------------------------------------------------------------------------


def uploads_root() -> Path:
    """The uploads volume (``UPLOADS_DIR``)."""
    return get_settings().uploads_dir


def absolute(relative: str) -> Path:
    """A stored proof file, refusing anything outside ``uploads_dir/proofs``."""
    root = (uploads_root() / PROOFS_DIR).resolve()
    path = (uploads_root() / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"proof path outside {root}: {relative!r}")
    return path


def _write_atomic(relative: str, data: bytes) -> Path:
    path = absolute(relative)
    storage.write_atomic(path, data)
    return path


def _remove(*relatives: str | None) -> None:
    for relative in relatives:
        if not relative:
            continue
        try:
            absolute(relative).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.warning("cannot delete proof file %s", relative, exc_info=True)


ORPHAN_AGE_SECONDS = 24 * 3600


def prune_orphan_files(actor: Actor, *, min_age_seconds: int = ORPHAN_AGE_SECONDS) -> int:
    """Delete proof files no row refers to any more (older than a day).

    Deleting a subscriber or an invoice removes its proof rows by cascade, and a
    crash can leave half-written files; the nightly cleanup calls this. Files
    younger than ``min_age_seconds`` are kept: an upload may be committing now.

    Returns:
        How many files were removed.
    """
    require_superadmin(actor)
    root = uploads_root() / PROOFS_DIR
    if not root.is_dir():
        return 0
    with new_session() as s:
        referenced = set()
        for original, processed in s.exec(select(PaymentProof.original_path,
                                                 PaymentProof.processed_path)):
            referenced.add(original)
            if processed:
                referenced.add(processed)
    removed = [p.relative_to(uploads_root()).as_posix() for p in storage.delete_old_files(
        root, time.time() - min_age_seconds,
        keep=lambda p: p.relative_to(uploads_root()).as_posix() in referenced)]
    if removed:
        with unit_of_work(actor) as uow:
            uow.audit("payment_proof.prune_files", "payment_proofs", None,
                      files=removed[:100], count=len(removed))
    return len(removed)


# --- views ---------------------------------------------------------------------------------


def _views(session, proofs: list[PaymentProof]) -> list[ProofView]:
    if not proofs:
        return []
    ids = [p.id for p in proofs]
    steps: dict[uuid.UUID, list[ProofStepView]] = {i: [] for i in ids}
    for row in session.exec(select(PaymentProofStep).where(PaymentProofStep.proof_id.in_(ids))
                            .order_by(PaymentProofStep.proof_id, PaymentProofStep.seq)).all():
        steps[row.proof_id].append(ProofStepView(row.step, STEP_LABELS.get(row.step, row.step),
                                                 row.outcome, row.duration_ms,
                                                 row.detail or ""))
    uploader_ids = {p.uploaded_by for p in proofs if p.uploaded_by}
    names = dict(session.exec(select(User.id, User.name).where(User.id.in_(uploader_ids)))
                 .all()) if uploader_ids else {}
    return [ProofView(
        id=p.id, invoice_id=p.invoice_id, payment_id=p.payment_id, owner_id=p.owner_id,
        status=p.status, status_label=STATUS_LABELS.get(p.status, p.status),
        reject_reason=p.reject_reason, original_filename=p.original_filename,
        original_mime=p.original_mime, original_size=p.original_size, width=p.width,
        height=p.height, processed_width=p.processed_width,
        processed_height=p.processed_height, blur_score=p.blur_score,
        blank_score=p.blank_score, document_found=p.document_found, skew_angle=p.skew_angle,
        uploaded_by_name=names.get(p.uploaded_by, "") if p.uploaded_by else "",
        created_at=p.created_at, processed_at=p.processed_at, steps=tuple(steps[p.id]),
    ) for p in proofs]


def _visible_invoice(session, actor: Actor, invoice_id: Any) -> Invoice:
    invoice_id = as_uuid(invoice_id, INVOICE_NOT_FOUND)
    inv = session.exec(scoped(select(Invoice).where(Invoice.id == invoice_id), actor,
                              Invoice.owner_id)).first()
    if inv is None:
        raise NotFound(INVOICE_NOT_FOUND)
    return inv


def _visible_proof(session, actor: Actor, proof_id: Any) -> PaymentProof:
    require_user(actor)
    proof_id = as_uuid(proof_id, NOT_FOUND)
    proof = session.exec(scoped(select(PaymentProof).where(PaymentProof.id == proof_id),
                                actor, PaymentProof.owner_id)).first()
    if proof is None:
        raise NotFound(NOT_FOUND)
    return proof


# --- use cases -----------------------------------------------------------------------------


def attach_proof(actor: Actor, invoice_id: uuid.UUID | str, data: bytes, filename: str, *,
                 payment_id: uuid.UUID | str | None = None) -> ProofView:
    """Attach a photo of the transfer slip to a payment of an invoice.

    Args:
        actor: The superadmin, or the mitra owning the invoice (a person, not a job).
        invoice_id: The paid (or partly paid) invoice.
        data: The file as uploaded (JPEG, PNG or WebP, at most 10 MB / 50 MP).
        filename: The name the browser gave it (kept for display only).
        payment_id: Which payment of the invoice; default its latest non-reversed one.

    Returns:
        The ``pending`` proof; a worker processes it after the commit.

    Raises:
        AuthenticationRequired: nobody is logged in.
        PermissionDenied: a background job (proofs are uploaded by people).
        NotFound: no such invoice (or payment) in the actor's scope.
        ValidationFailed: not an acceptable image (``details["file"]``), or no payment yet.
    """
    require_user(actor)
    if not actor.is_authenticated:
        raise PermissionDenied("Bukti transfer hanya dapat diunggah oleh pengguna yang login.")
    with new_session() as s:  # scope first: another tenant learns nothing about the file
        _visible_invoice(s, actor, invoice_id)
    try:
        info = proof_images.inspect_upload(data or b"")
    except proof_images.ImageRejected as exc:
        raise ValidationFailed({"file": exc.message}) from exc
    name = os.path.basename((filename or "").replace("\\", "/")).strip()[:255] or "bukti"
    proof_id = uuid.uuid4()
    now = clock.now()
    with unit_of_work(actor) as uow:
        s = uow.session
        inv = _visible_invoice(s, actor, invoice_id)
        q = select(Payment).where(Payment.invoice_id == inv.id, Payment.reversed_at.is_(None))
        if payment_id is not None:
            q = q.where(Payment.id == as_uuid(payment_id, NOT_FOUND))
        payment = s.exec(q.order_by(Payment.recorded_at.desc(), Payment.id.desc())).first()
        if payment is None:
            if payment_id is not None:
                raise NotFound("Pembayaran tidak ditemukan.")
            raise ValidationFailed({"file": NO_PAYMENT})
        count = s.exec(select(sa.func.count()).select_from(PaymentProof)
                       .where(PaymentProof.invoice_id == inv.id)).one()
        if count >= MAX_PROOFS_PER_INVOICE:
            raise ValidationFailed({"file": TOO_MANY})
        relative = (f"{PROOFS_DIR}/{inv.owner_id}/{clock.period_of(now)}/"
                    f"{proof_id}-orig{info.extension}")
        proof = PaymentProof(
            id=proof_id, owner_id=inv.owner_id, payment_id=payment.id, invoice_id=inv.id,
            uploaded_by=actor.user_id, status=PaymentProofStatus.PENDING.value,
            original_filename=name, original_path=relative, original_mime=info.mime,
            original_size=len(data), original_sha256=hashlib.sha256(data).hexdigest(),
            width=info.width, height=info.height, created_at=now, updated_at=now)
        s.add(proof)
        s.add(PaymentProofStep(proof_id=proof_id, seq=0, step="upload", outcome="ok",
                               duration_ms=0, detail=f"{info.mime}, {len(data) // 1024} KB, "
                                                     f"{info.width}×{info.height} px"))
        uow.audit("payment_proof.attach", "payment_proofs", proof_id, invoice_id=inv.id,
                  payment_id=payment.id, size=len(data), mime=info.mime,
                  sha256=proof.original_sha256)
        s.flush()
        try:
            _write_atomic(relative, data)
            view = _views(s, [proof])[0]
        except BaseException:
            _remove(relative)
            raise
        jobqueue.enqueue_on_commit(uow, PROCESS_TASK, proof_id, fail=_fail_unqueued)
    return view


def _fail_unqueued(proof_id: uuid.UUID, exc: Exception) -> None:
    _finish(proof_id, status=PaymentProofStatus.FAILED, reason=ENQUEUE_FAILED,
            steps=[proof_images.Step("enqueue", "error", 0, f"{type(exc).__name__}: {exc}")],
            expect=(PaymentProofStatus.PENDING,))


def list_proofs(actor: Actor, invoice_id: uuid.UUID | str) -> list[ProofView]:
    """The proofs of one invoice, newest first, each with its processing log.

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such invoice in the actor's scope.
    """
    require_user(actor)
    with new_session() as s:
        inv = _visible_invoice(s, actor, invoice_id)
        proofs = list(s.exec(select(PaymentProof).where(PaymentProof.invoice_id == inv.id)
                             .order_by(PaymentProof.created_at.desc(),
                                       PaymentProof.id)).all())
        return _views(s, proofs)


def get_proof(actor: Actor, proof_id: uuid.UUID | str) -> ProofView:
    """One proof with its processing log (for polling).

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such proof in the actor's scope.
    """
    with new_session() as s:
        return _views(s, [_visible_proof(s, actor, proof_id)])[0]


def proof_file(actor: Actor, proof_id: uuid.UUID | str,
               which: str = "processed") -> tuple[Path, str]:
    """The file behind a proof, for viewing: ``processed`` (JPEG) or ``original``.

    Returns:
        The path and its media type.

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such proof in the actor's scope, or its file is gone.
        Conflict: the processed image is asked for before it exists.
        ValidationFailed: ``which`` is neither ``processed`` nor ``original``.
    """
    if which not in ("processed", "original"):
        raise ValidationFailed({"variant": "Pilih 'processed' atau 'original'."})
    with new_session() as s:
        proof = _visible_proof(s, actor, proof_id)
    if which == "original":
        relative, media = proof.original_path, proof.original_mime
    else:
        if proof.status in (PaymentProofStatus.REJECTED, PaymentProofStatus.FAILED):
            raise Conflict(NOT_PROCESSED)
        if proof.status != PaymentProofStatus.READY or not proof.processed_path:
            raise Conflict(NOT_READY)
        relative, media = proof.processed_path, "image/jpeg"
    path = absolute(relative)
    if not path.is_file():
        raise NotFound(NOT_FOUND)
    return path, media


def delete_proof(actor: Actor, proof_id: uuid.UUID | str) -> None:
    """Delete a proof photo (row, log and files; the payment stays). Audited.

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such proof in the actor's scope.
    """
    require_user(actor)
    with unit_of_work(actor) as uow:
        proof = _visible_proof(uow.session, actor, proof_id)
        files = (proof.original_path, proof.processed_path)
        uow.audit("payment_proof.delete", "payment_proofs", proof.id,
                  invoice_id=proof.invoice_id, payment_id=proof.payment_id,
                  status=proof.status, sha256=proof.original_sha256)
        uow.session.delete(proof)
        uow.after_commit(lambda: _remove(*files))


# --- worker side ---------------------------------------------------------------------------


def _claim(proof_id: uuid.UUID) -> PaymentProof | None:
    """Mark a pending (or redelivered processing) proof as processing; ``None`` if not."""
    with unit_of_work(Actor.system("celery.payment_proofs")).bookkeeping(
            "claim of a proof to process; its outcome is audited") as uow:
        changed = uow.session.execute(
            sa.update(_proofs).where(_proofs.c.id == proof_id, _proofs.c.status.in_(
                (PaymentProofStatus.PENDING.value, PaymentProofStatus.PROCESSING.value)))
            .values(status=PaymentProofStatus.PROCESSING.value, updated_at=clock.now())
        ).rowcount
    if not changed:
        return None
    with new_session() as s:
        return s.get(PaymentProof, proof_id)


def _finish(proof_id: uuid.UUID, *, status: PaymentProofStatus, reason: str | None,
            steps: Iterable[proof_images.Step], expect=(PaymentProofStatus.PROCESSING,),
            **values: Any) -> bool:
    """Store the outcome and the step log in one transaction (audited as the system)."""
    now = clock.now()
    with unit_of_work(Actor.system("celery.payment_proofs")) as uow:
        s = uow.session
        changed = s.execute(
            sa.update(_proofs).where(_proofs.c.id == proof_id,
                                     _proofs.c.status.in_([e.value for e in expect]))
            .values(status=status.value, reject_reason=reason, updated_at=now,
                    processed_at=now, **values)
        ).rowcount
        if not changed:
            return False
        # A redelivered task starts the log again after the upload line.
        s.execute(sa.delete(PaymentProofStep.__table__).where(
            PaymentProofStep.__table__.c.proof_id == proof_id,
            PaymentProofStep.__table__.c.seq > 0))
        for seq, step in enumerate(steps, 1):
            s.add(PaymentProofStep(proof_id=proof_id, seq=seq, step=step.step,
                                   outcome=step.outcome, duration_ms=step.duration_ms,
                                   detail=(step.detail or "")[:2000] or None))
        uow.audit(f"payment_proof.{status.value}", "payment_proofs", proof_id,
                  reason=reason, **{k: v for k, v in values.items()
                                    if k in ("blur_score", "blank_score", "skew_angle")})
    return True


def process_proof(proof_id: uuid.UUID | str) -> dict[str, Any]:
    """Run the opencv pipeline on a pending proof (the ``process_payment_proof`` task).

    Returns:
        ``{"status": …}``: ``ready``, ``rejected``, ``failed``, ``skipped`` (not pending
        any more) or ``None`` (no such proof).
    """
    try:
        proof_id = as_uuid(proof_id, NOT_FOUND)
    except NotFound:
        return {"status": None}
    proof = _claim(proof_id)
    if proof is None:
        return {"status": "skipped"}
    steps: list[proof_images.Step] = []
    processed_relative = None
    try:
        data = absolute(proof.original_path).read_bytes()
        result = proof_images.process(data)
        steps = list(result.steps)
        metrics = {
            "blur_score": result.blur_score, "blank_score": result.blank_score,
            "document_found": result.document_found, "skew_angle": result.skew_angle,
        }
        if result.status == "ready":
            processed_relative = proof.original_path.rsplit("-orig", 1)[0] + "-proc.jpg"
            start = time.perf_counter()
            _write_atomic(processed_relative, result.jpeg)
            steps.append(proof_images.Step("store", "ok",
                                           int((time.perf_counter() - start) * 1000),
                                           f"{len(result.jpeg) // 1024} KB"))
            status, reason = PaymentProofStatus.READY, None
            metrics.update(processed_path=processed_relative,
                           processed_width=result.processed_width,
                           processed_height=result.processed_height)
        elif result.status == "rejected":
            status, reason = PaymentProofStatus.REJECTED, result.reason
        else:
            status, reason = PaymentProofStatus.FAILED, FAILED_MESSAGE
        if not _finish(proof_id, status=status, reason=reason, steps=steps, **metrics):
            _remove(processed_relative)  # deleted meanwhile
        return {"status": status.value, "reason": reason}
    except Exception as exc:
        log.exception("payment proof %s failed", proof_id)
        _remove(processed_relative)
        steps.append(proof_images.Step("store" if steps else "decode", "error", 0,
                                       f"{type(exc).__name__}: {exc}"))
        _finish(proof_id, status=PaymentProofStatus.FAILED, reason=FAILED_MESSAGE, steps=steps)
        return {"status": "failed"}


# --- receipt bundle ------------------------------------------------------------------------


def ready_proof_files(invoice_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Path]]:
    """Processed images of the ready proofs of non-reversed payments, per invoice.

    Not a use case (no actor): the receipt bundle worker has already checked who asked.
    """
    ids = list(invoice_ids)
    out: dict[uuid.UUID, list[Path]] = {}
    with new_session() as s:
        for start in range(0, len(ids), 500):
            rows = s.exec(select(PaymentProof.invoice_id, PaymentProof.processed_path)
                          .join(Payment, Payment.id == PaymentProof.payment_id)
                          .where(PaymentProof.invoice_id.in_(ids[start:start + 500]),
                                 PaymentProof.status == PaymentProofStatus.READY.value,
                                 PaymentProof.processed_path.is_not(None),
                                 Payment.reversed_at.is_(None))
                          .order_by(PaymentProof.created_at, PaymentProof.id)).all()
            for invoice_id, relative in rows:
                try:
                    path = absolute(relative)
                except ValueError:
                    continue
                if path.is_file():
                    out.setdefault(invoice_id, []).append(path)
    return out


def bundle_pages(paths: list[Path], title: str) -> bytes:
    """A5 PDF pages, one per proof image, headed ``title`` (for the receipt bundle)."""
    from fpdf import FPDF

    from fibernode.services.receipts import MARGIN, PAGE_H, PAGE_W, _latin1

    pdf = FPDF(orientation="portrait", unit="mm", format=(PAGE_W, PAGE_H))
    pdf.set_auto_page_break(False)
    pdf.set_creator("FiberNode Internet")
    for number, path in enumerate(paths, 1):
        pdf.add_page()
        pdf.set_xy(MARGIN, MARGIN)
        pdf.set_font("Helvetica", "B", 11)
        label = f"Bukti transfer - {title}" + (f" ({number})" if len(paths) > 1 else "")
        pdf.cell(PAGE_W - 2 * MARGIN, 6, _latin1(label), new_x="LMARGIN", new_y="NEXT")
        top = MARGIN + 9
        pdf.image(str(path), x=MARGIN, y=top, keep_aspect_ratio=True,
                  w=PAGE_W - 2 * MARGIN, h=PAGE_H - top - MARGIN)
    return bytes(pdf.output())
