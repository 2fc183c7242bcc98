"""Public receipts (JSON and PDF) and finished background files (receipt bundles, exports)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict

from fibernode.api.deps import client_of, request_actor
from fibernode.models import PaymentStatus
from fibernode.services import filejobs, ratelimit, receipts
from fibernode.services.context import Actor
from fibernode.services.errors import NotFound, RateLimited

router = APIRouter(prefix="/api", tags=["receipts"])
PDF_LIMIT = 20  # receipt PDFs per IP per minute
# The JSON receipt shares the receipt page's bucket and budget (per IP per minute), so
# guessing tokens through the API is no cheaper than through the page.
VIEW_BUCKET, VIEW_LIMIT, VIEW_WINDOW_S = "receipt", 30, 60
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


class ReceiptOut(BaseModel):
    """The public receipt (paid) or bill: only the fields switched on in the settings.

    ``null`` means switched off (or not applicable): never show it.
    """

    model_config = ConfigDict(from_attributes=True)

    token: str
    receipt_url: str
    pdf_url: str = ""
    is_paid: bool
    status: PaymentStatus
    customer_name: str
    period: str
    period_label: str
    due_date: date
    total_amount: int
    paid_amount: int
    remaining: int
    paid_at: datetime | None
    verification_code: str
    qr_svg: str
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


@router.get("/receipt/{token}", response_model=ReceiptOut)
def receipt_view(token: str, request: Request) -> ReceiptOut:
    """The receipt page's content as JSON; public, rate-limited per IP like the page.

    Unknown, malformed and deleted tokens all answer the same 404.
    """
    ip, _ua = client_of(request)
    decision = ratelimit.hit(VIEW_BUCKET, ip or "unknown", VIEW_LIMIT, VIEW_WINDOW_S)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    view = receipts.get_receipt(token)
    if view is None:
        raise NotFound("Nota tidak ditemukan.")
    out = ReceiptOut.model_validate(view)
    out.pdf_url = f"/api/receipt/{token}.pdf"
    return out


@router.get("/files/{job_id}")
def download_file(job_id: uuid.UUID,
                  actor: Annotated[Actor, Depends(request_actor)]) -> FileResponse:
    """A finished background file of the caller (or any, for the superadmin)."""
    path = filejobs.file_job_path(actor, job_id)
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, filename=path.name,
                        headers={"Cache-Control": "no-store"})
