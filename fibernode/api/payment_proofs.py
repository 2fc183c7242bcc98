"""Payment-proof photos (bukti transfer): upload, list with the processing log, view, delete.

The caller is the user behind the web-session cookie (like every download of the UI);
another tenant's invoice or proof answers 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from fibernode.api.deps import request_actor
from fibernode.services import payment_proofs, proof_images
from fibernode.services.context import Actor
from fibernode.services.errors import ValidationFailed

router = APIRouter(prefix="/api", tags=["payment-proofs"])
ActorDep = Annotated[Actor, Depends(request_actor)]


class ProofStepOut(BaseModel):
    """One processing step."""

    step: str
    label: str
    outcome: Literal["ok", "flagged", "error"]
    duration_ms: int
    detail: str


class ProofOut(BaseModel):
    """A proof photo with its status and processing log."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    payment_id: uuid.UUID
    status: Literal["pending", "processing", "ready", "rejected", "failed"]
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
    original_url: str
    processed_url: str | None
    steps: list[ProofStepOut]


class ProofList(BaseModel):
    """The proofs of one invoice, newest first."""

    items: list[ProofOut]
    total: int


def file_url(proof_id: uuid.UUID, variant: str) -> str:
    """The URL the browser loads a proof image from."""
    return f"/api/payment-proofs/{proof_id}/file?variant={variant}"


def to_out(view: payment_proofs.ProofView) -> ProofOut:
    """The API shape of a proof view."""
    return ProofOut(
        id=view.id, invoice_id=view.invoice_id, payment_id=view.payment_id,
        status=view.status, status_label=view.status_label, reject_reason=view.reject_reason,
        original_filename=view.original_filename, original_mime=view.original_mime,
        original_size=view.original_size, width=view.width, height=view.height,
        processed_width=view.processed_width, processed_height=view.processed_height,
        blur_score=view.blur_score, blank_score=view.blank_score,
        document_found=view.document_found, skew_angle=view.skew_angle,
        uploaded_by_name=view.uploaded_by_name, created_at=view.created_at,
        processed_at=view.processed_at, original_url=file_url(view.id, "original"),
        processed_url=file_url(view.id, "processed") if view.is_ready else None,
        steps=[ProofStepOut(step=s.step, label=s.label, outcome=s.outcome,
                            duration_ms=s.duration_ms, detail=s.detail) for s in view.steps],
    )


@router.post("/invoices/{invoice_id}/payment-proofs", status_code=201, response_model=ProofOut)
async def upload_proof(invoice_id: uuid.UUID, actor: ActorDep,
                       file: Annotated[UploadFile, File()],
                       payment_id: Annotated[uuid.UUID | None, Form()] = None) -> ProofOut:
    """Attach a photo of the transfer slip (multipart ``file``; JPEG/PNG/WebP, ≤ 10 MB).

    Processed in the background: poll the list until the status is ``ready``,
    ``rejected`` (retake: ``reject_reason`` says why) or ``failed``.
    """
    data = await file.read(proof_images.MAX_BYTES + 1)  # one byte over: refused, not cut
    if len(data) > proof_images.MAX_BYTES:
        raise ValidationFailed({"file": proof_images.TOO_LARGE})
    view = await run_in_threadpool(payment_proofs.attach_proof, actor, invoice_id, data,
                                   file.filename or "bukti", payment_id=payment_id)
    return to_out(view)


@router.get("/invoices/{invoice_id}/payment-proofs", response_model=ProofList)
def list_proofs(invoice_id: uuid.UUID, actor: ActorDep) -> ProofList:
    """The invoice's proof photos with status and processing log."""
    items = [to_out(v) for v in payment_proofs.list_proofs(actor, invoice_id)]
    return ProofList(items=items, total=len(items))


@router.get("/payment-proofs/{proof_id}", response_model=ProofOut)
def get_proof(proof_id: uuid.UUID, actor: ActorDep) -> ProofOut:
    """One proof photo (status and processing log)."""
    return to_out(payment_proofs.get_proof(actor, proof_id))


@router.get("/payment-proofs/{proof_id}/file")
def proof_file(proof_id: uuid.UUID, actor: ActorDep,
               variant: Annotated[Literal["processed", "original"],
                                  Query()] = "processed") -> FileResponse:
    """The processed JPEG (only once ready) or the original as uploaded."""
    path, media = payment_proofs.proof_file(actor, proof_id, variant)
    return FileResponse(path, media_type=media, filename=f"bukti-{variant}{path.suffix}",
                        content_disposition_type="inline",
                        headers={"Cache-Control": "private, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})


@router.delete("/payment-proofs/{proof_id}", status_code=204)
def delete_proof(proof_id: uuid.UUID, actor: ActorDep) -> Response:
    """Delete a proof photo (the payment stays)."""
    payment_proofs.delete_proof(actor, proof_id)
    return Response(status_code=204)
