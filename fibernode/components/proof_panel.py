"""The transfer-slip photos (bukti transfer) of one invoice: a sheet shared by pages.

Used by ``/invoices`` (opened right after a transfer payment, and from a row) and by
the customer detail page's invoice history. The photo is taken with the phone's
back camera (``capture="environment"``) or picked from the gallery, uploaded
through Reflex's upload endpoint, and processed by a worker; the sheet polls until
the status settles and shows the processed thumbnail, a link to the original, a
prominent retake message when the photo was rejected, and the processing log.
Images are loaded from ``/api/payment-proofs/<id>/file`` with the session cookie.
"""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from fibernode.formatting import date_time
from fibernode.services import payment_proofs, proof_images
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.state.session import current_actor, to_login

UPLOAD_ID = "proof-upload"
POLL_SECONDS = 90


def _rows(views: list[payment_proofs.ProofView]) -> tuple[list[dict], list[dict]]:
    proofs, steps = [], []
    for v in views:
        base = f"/api/payment-proofs/{v.id}/file?variant="
        proofs.append({
            "id": str(v.id), "status": v.status, "status_label": v.status_label,
            "reason": v.reject_reason or "", "filename": v.original_filename,
            "created": date_time(v.created_at), "by": v.uploaded_by_name,
            "processed_url": base + "processed" if v.is_ready else "",
            "original_url": base + "original",
        })
        steps += [{"proof_id": str(v.id), "label": s.label, "outcome": s.outcome,
                   "ms": f"{s.duration_ms} ms", "detail": s.detail} for s in v.steps]
    return proofs, steps


class ProofState(rx.State):
    """The proof sheet: which invoice, its photos and their processing logs."""

    invoice_id: str = ""
    title: str = ""
    open: bool = False
    proofs: list[dict[str, str]] = []
    steps: list[dict[str, str]] = []
    uploading: bool = False
    error: str = ""
    polling: bool = False

    @rx.var
    def retake(self) -> bool:
        """Whether the newest photo was rejected (the upload offers a retake)."""
        return bool(self.proofs) and self.proofs[0]["status"] == "rejected"

    @rx.var
    def running(self) -> bool:
        """Whether a photo is still waiting for the worker."""
        return any(p["status"] in ("pending", "processing") for p in self.proofs)

    def _load(self, actor) -> None:
        try:
            views = payment_proofs.list_proofs(actor, uuid.UUID(self.invoice_id))
        except (ServiceError, ValueError) as exc:
            self.proofs, self.steps = [], []
            self.error = getattr(exc, "message", "Tagihan tidak ditemukan.")
            return
        self.proofs, self.steps = _rows(views)

    @rx.event
    async def open_for(self, invoice_id: str, title: str):
        """Show the photos of an invoice (and keep polling while one is processed)."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.invoice_id, self.title, self.error, self.uploading = invoice_id, title, "", False
        self._load(actor)
        self.open = True
        yield rx.clear_selected_files(UPLOAD_ID)
        if self.running:
            yield ProofState.poll

    @rx.event
    def set_open(self, value: bool):
        """Close the sheet."""
        self.open = value

    @rx.event
    async def refresh(self):
        """Read the statuses again ("Periksa lagi")."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._load(actor)
        return ProofState.poll if self.running else None

    @rx.event
    async def handle_upload(self, files: list[rx.UploadFile]):
        """Store the photo and let a worker process it."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        if not files or not self.invoice_id:
            return
        self.uploading, self.error = True, ""
        yield
        upload = files[0]
        data = await upload.read(proof_images.MAX_BYTES + 1)
        try:
            if len(data) > proof_images.MAX_BYTES:
                raise ValidationFailed({"file": proof_images.TOO_LARGE})
            # Hashing, storing and the database off the event loop (up to 10 MB).
            await asyncio.to_thread(payment_proofs.attach_proof, actor,
                                    uuid.UUID(self.invoice_id), data,
                                    upload.name or "bukti.jpg")
        except ServiceError as exc:
            self.uploading = False
            self.error = exc.details.get("file") or exc.message
            yield rx.clear_selected_files(UPLOAD_ID)
            return
        self.uploading = False
        self._load(actor)
        yield rx.clear_selected_files(UPLOAD_ID)
        yield ProofState.poll

    @rx.event(background=True)
    async def poll(self):
        """Follow the worker until no photo of the open invoice is pending any more."""
        async with self:
            if self.polling:
                return
            self.polling = True
        try:
            for _ in range(POLL_SECONDS):
                await asyncio.sleep(1)
                async with self:
                    actor = await current_actor(self)
                    if actor is None or not self.open or not self.invoice_id:
                        return
                    self._load(actor)
                    if not self.running:
                        return
        finally:
            async with self:
                self.polling = False

    @rx.event
    async def delete(self, proof_id: str):
        """Remove a photo (the payment stays)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            payment_proofs.delete_proof(actor, uuid.UUID(proof_id))
        except (ServiceError, ValueError) as exc:
            self.error = getattr(exc, "message", "Foto tidak ditemukan.")
            return None
        self._load(actor)
        return rx.toast.success("Foto bukti dihapus.")


P = ProofState


def _upload_zone(label: rx.Var | str) -> rx.Component:
    zone = rx.upload.root(
        rx.el.div(
            rx.icon("camera", size=28, class_name="fn-empty-icon"),
            rx.el.strong(label),
            rx.el.span("Foto slip atau tangkapan layar transfer. JPG, PNG atau WebP, "
                       "maksimal 10 MB.", class_name="fn-muted"),
            class_name="fn-dropzone",
        ),
        id=UPLOAD_ID,
        multiple=False,
        max_files=1,
        accept={"image/*": []},
        on_drop=P.handle_upload(rx.upload_files(upload_id=UPLOAD_ID)),
        disabled=P.uploading,
        data_testid="proof-upload",
    )
    # The dropzone's own <input type=file>: ask phones for the back camera directly.
    zone.children[0].children[0].capture = rx.Var.create("environment")
    return zone


def _steps(proof) -> rx.Component:
    return rx.el.details(
        rx.el.summary("Log pemrosesan", class_name="fn-muted"),
        rx.el.div(rx.el.table(rx.el.tbody(rx.foreach(P.steps, lambda s: rx.cond(
            s["proof_id"] == proof["id"],
            rx.el.tr(
                rx.el.td(s["label"]),
                rx.el.td(s["ms"], class_name="fn-nowrap"),
                rx.el.td(rx.match(
                    s["outcome"],
                    ("ok", rx.el.span("ok", class_name="fn-pill fn-pill-green")),
                    ("flagged", rx.el.span("ditandai", class_name="fn-pill fn-pill-amber")),
                    rx.el.span("error", class_name="fn-pill fn-pill-red"))),
                rx.el.td(s["detail"], class_name="fn-muted"),
                data_testid="proof-step",
            ),
        ))), class_name="fn-table"), class_name="fn-table-wrap"),
        data_testid="proof-log",
    )


def _proof_card(proof) -> rx.Component:
    return rx.el.div(
        rx.el.div(
            rx.el.strong(proof["status_label"], data_testid="proof-status",
                         data_status=proof["status"]),
            rx.el.span(proof["created"], " · ", proof["by"], class_name="fn-muted"),
            class_name="fn-card-row",
        ),
        rx.cond(proof["reason"] != "", rx.el.div(
            rx.icon("triangle_alert", size=20), rx.el.strong(proof["reason"]),
            class_name="fn-alert fn-alert-error", role="alert", data_testid="proof-reject",
        )),
        rx.cond(proof["processed_url"] != "", rx.el.a(
            rx.el.img(src=proof["processed_url"], alt="Bukti transfer (diolah)",
                      loading="lazy", data_testid="proof-thumb",
                      style={"max_width": "100%", "max_height": "320px",
                             "border_radius": "8px", "display": "block"}),
            href=proof["processed_url"], target="_blank", rel="noopener")),
        rx.el.div(
            rx.el.a(rx.icon("image", size=14), "Lihat foto asli", href=proof["original_url"],
                    target="_blank", rel="noopener", class_name="fn-chip",
                    data_testid="proof-original"),
            rx.button(rx.icon("trash_2", size=14), "Hapus", size="1", variant="soft",
                      color_scheme="gray", on_click=P.delete(proof["id"])),
            class_name="fn-toolbar-actions",
        ),
        _steps(proof),
        class_name="fn-card fn-stack-tight",
        data_testid="proof-card",
    )


def proof_sheet() -> rx.Component:
    """The sheet with the invoice's proof photos, upload / retake, statuses and logs."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.el.div(class_name="fn-sheet-grip"),
            rx.el.div(
                rx.dialog.title("Bukti Transfer", class_name="fn-sheet-title"),
                rx.dialog.close(rx.el.button(rx.icon("x", size=20), class_name="fn-icon-btn",
                                             aria_label="Tutup", type="button")),
                class_name="fn-sheet-head",
            ),
            rx.dialog.description(P.title, class_name="fn-muted"),
            rx.el.div(
                _upload_zone(rx.cond(P.retake, "Foto ulang bukti transfer",
                                     "Unggah bukti transfer")),
                rx.cond(P.uploading, rx.el.div(rx.spinner(), "Mengunggah…",
                                               class_name="fn-card-row")),
                rx.cond(P.error != "", rx.el.div(
                    rx.icon("circle_alert", size=18), P.error,
                    class_name="fn-alert fn-alert-error", role="alert",
                    data_testid="proof-error")),
                rx.cond(P.running, rx.el.div(
                    rx.spinner(), "Foto sedang diproses…",
                    rx.button("Periksa lagi", size="1", variant="soft", on_click=P.refresh,
                              data_testid="proof-refresh"),
                    class_name="fn-card-row")),
                rx.foreach(P.proofs, _proof_card),
                class_name="fn-form",
            ),
            class_name="fn-sheet",
            data_testid="proof-sheet",
        ),
        open=P.open,
        on_open_change=P.set_open,
    )
