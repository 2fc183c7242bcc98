"""Public receipt PDFs and finished background files (receipt bundles, later exports)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from fibernode.api.deps import client_of, request_actor
from fibernode.services import filejobs, ratelimit, receipts
from fibernode.services.context import Actor
from fibernode.services.errors import NotFound, RateLimited

router = APIRouter(prefix="/api", tags=["receipts"])
PDF_LIMIT = 20  # receipt PDFs per IP per minute
# Background files by suffix (receipt bundles, recaps, reports, settlements).
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@router.get("/receipt/{token}.pdf")
def receipt_pdf(token: str, request: Request) -> Response:
    """The receipt (or bill) as a PDF; public like the receipt page, rate-limited per IP."""
    ip, _ua = client_of(request)
    decision = ratelimit.hit("receipt-pdf", ip or "unknown", PDF_LIMIT, 60)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    data = receipts.receipt_pdf(token)
    if data is None:
        raise NotFound("Nota tidak ditemukan.")
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": 'inline; filename="nota.pdf"', "Cache-Control": "no-store"})


@router.get("/files/{job_id}")
def download_file(job_id: uuid.UUID,
                  actor: Annotated[Actor, Depends(request_actor)]) -> FileResponse:
    """A finished background file of the caller (or any, for the superadmin)."""
    path = filejobs.file_job_path(actor, job_id)
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, filename=path.name,
                        headers={"Cache-Control": "no-store"})
