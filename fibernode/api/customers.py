"""Subscriber downloads: the export of the current filter and import error reports."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from fibernode.api.deps import request_actor
from fibernode.services import exports, imports
from fibernode.services.context import Actor
from fibernode.services.errors import ValidationFailed

router = APIRouter(prefix="/api", tags=["customers"])
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
SPOOL_BYTES = 8 * 1024 * 1024  # bigger exports spill to a temporary file


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed({field: "ID tidak valid."}) from None


def _chunks(spool, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()


@router.get("/customers/export")
def export_customers(
    actor: Annotated[Actor, Depends(request_actor)],
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",  # noqa: A002 - API name
    search: str = "",
    status: str | None = None,
    package_id: str | None = None,
    owner_id: str | None = None,
    billing_date: Annotated[int | None, Query(ge=1, le=28)] = None,
    sort: str = "name",
) -> StreamingResponse:
    """Subscribers of the given filter as CSV or XLSX (superadmin only)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by _chunks
    try:
        exports.export_customers(
            actor, format, spool, search=search, status=status or None,
            package_id=_uuid(package_id, "package_id"), owner_id=_uuid(owner_id, "owner_id"),
            billing_date=billing_date, sort=sort)
    except BaseException:
        spool.close()
        raise
    filename = exports.export_filename(format)
    return StreamingResponse(
        _chunks(spool), media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store"})


@router.get("/imports/{job_id}/errors.csv")
def import_error_report(job_id: uuid.UUID,
                        actor: Annotated[Actor, Depends(request_actor)]) -> Response:
    """The rows of an import that were not imported, with the reason (superadmin only)."""
    data = imports.error_report_csv(actor, job_id)
    return Response(data, media_type=MEDIA["csv"],
                    headers={"Content-Disposition": 'attachment; filename="impor-error.csv"',
                             "Cache-Control": "no-store"})
