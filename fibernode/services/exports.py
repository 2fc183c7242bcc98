"""Subscriber export to CSV or Excel (superadmin only), streamed from the database."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from fibernode import clock
from fibernode.models import Customer, CustomerStatus
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.crypto import decrypt_nik
from fibernode.services.customers import filtered_query
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work

FORMATS = ("csv", "xlsx")
FORMAT_MESSAGE = "Format ekspor harus csv atau xlsx."
# The import columns of the spec first (same names, same order), so an export can be
# imported again; the extra columns after them are ignored by the import.
IMPORT_COLUMNS = ("nama", "telepon", "diskon", "tanggal", "area", "paket_nama",
                  "paket_tarif", "total_bayar", "nik", "tanggal_register")
EXTRA_COLUMNS = ("status", "alamat", "catatan")
COLUMNS = IMPORT_COLUMNS + EXTRA_COLUMNS
STATUS_LABELS = {
    CustomerStatus.ACTIVE: "Aktif",
    CustomerStatus.ISOLATED: "Isolir",
    CustomerStatus.INACTIVE: "Nonaktif",
}
# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MONEY_COLUMNS = frozenset({"diskon", "paket_tarif", "total_bayar"})
INT_COLUMNS = frozenset({"tanggal"})
DATE_COLUMNS = frozenset({"tanggal_register"})
MONEY_FORMAT = '"Rp" #,##0'
DATE_FORMAT = "yyyy-mm-dd"
WIDTHS = {"nama": 28, "telepon": 16, "diskon": 12, "tanggal": 9, "area": 22,
          "paket_nama": 18, "paket_tarif": 14, "total_bayar": 14, "nik": 19,
          "tanggal_register": 17, "status": 10, "alamat": 40, "catatan": 40}
STREAM_BATCH = 500


def neutralise(text: str) -> str:
    """Make a text cell inert in spreadsheets: a leading formula character gets a ``'``."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def unneutralise(text: str) -> str:
    """Undo :func:`neutralise`, so an exported file or error report imports as written."""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def _check_format(fmt: str) -> str:
    fmt = (fmt or "").strip().lower()
    if fmt not in FORMATS:
        raise ValidationFailed({"format": FORMAT_MESSAGE})
    return fmt


def export_filename(fmt: str) -> str:
    """The download name for an export made today, e.g. ``pelanggan-2026-11-21.csv``.

    Raises:
        ValidationFailed: unknown format.
    """
    return f"pelanggan-{clock.today().isoformat()}.{_check_format(fmt)}"


def _records(rows) -> Iterator[dict[str, Any]]:
    """One dict per subscriber, keyed by column, with typed values (not yet neutralised)."""
    for c, pkg, owner in rows:
        yield {
            "nama": c.name, "telepon": c.phone, "diskon": c.discount,
            "tanggal": c.billing_date, "area": owner.business_name, "paket_nama": pkg.name,
            "paket_tarif": pkg.price, "total_bayar": c.total_bill,
            "nik": decrypt_nik(c.nik) if c.nik else "", "tanggal_register": c.register_date,
            "status": STATUS_LABELS.get(c.status, str(c.status)),
            "alamat": c.address or "", "catatan": c.notes or "",
        }


def _write_csv(records: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    # utf-8-sig writes the BOM Excel needs to read the file as UTF-8.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    count = 0
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for rec in records:
            writer.writerow([
                rec[col].isoformat() if isinstance(rec[col], date)
                else neutralise(rec[col]) if isinstance(rec[col], str) else rec[col]
                for col in COLUMNS
            ])
            count += 1
    finally:
        text.flush()
        text.detach()  # leave the caller's stream open
    return count


def _xlsx_cell(ws, col: str, value: Any) -> WriteOnlyCell:
    if isinstance(value, str):
        # Control characters are not allowed in XLSX; the text is then stored as an
        # explicit string so that it can never become a formula.
        cell = WriteOnlyCell(ws, value=neutralise(ILLEGAL_CHARACTERS_RE.sub("", value)))
        cell.data_type = "s"
        cell.number_format = "@"
        return cell
    cell = WriteOnlyCell(ws, value=value)
    if col in MONEY_COLUMNS:
        cell.number_format = MONEY_FORMAT
    elif col in DATE_COLUMNS:
        cell.number_format = DATE_FORMAT
    return cell


def _write_xlsx(records: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    # Write-only mode streams rows to disk instead of holding every cell in memory.
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Pelanggan")
    for i, col in enumerate(COLUMNS):
        ws.column_dimensions[get_column_letter(i + 1)].width = WIDTHS[col]
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for col in COLUMNS:
        cell = WriteOnlyCell(ws, value=col)
        cell.font = bold
        cell.alignment = Alignment(horizontal="center")
        header.append(cell)
    ws.append(header)
    count = 0
    for rec in records:
        ws.append([_xlsx_cell(ws, col, rec[col]) for col in COLUMNS])
        count += 1
    wb.save(out)
    return count


def export_customers(actor: Actor, fmt: str, out: BinaryIO, *, search: str = "",
                     status: CustomerStatus | str | None = None,
                     package_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None,
                     billing_date: int | None = None, sort: str = "name") -> int:
    """Write the subscribers of the current list filter to ``out`` (superadmin only).

    The filters and the sort are those of :func:`customers.list_customers`. The
    columns are the CSV import's columns (so the file can be imported again)
    followed by status, address and notes; the NIK is decrypted. Text cells that
    a spreadsheet would run as a formula are prefixed with ``'``. Rows are
    streamed from the database, and the export itself is audited because it
    hands out personal data.

    Args:
        actor: The superadmin.
        fmt: ``"csv"`` (UTF-8 with BOM, comma separated) or ``"xlsx"``.
        out: A binary stream to write to; it is left open.
        search: Part of the name or phone, as in the list.
        status: Only this status.
        package_id: Only this package.
        owner_id: Only this owner.
        billing_date: Only this billing day.
        sort: One of ``customers.SORTS``.

    Returns:
        How many subscribers were written.

    Raises:
        PermissionDenied: for a mitra.
        ValidationFailed: unknown format, status or sort.
    """
    require_superadmin(actor)
    fmt = _check_format(fmt)
    q, order = filtered_query(actor, search=search, status=status, package_id=package_id,
                              owner_id=owner_id, billing_date=billing_date, sort=sort)
    q = q.order_by(*order, Customer.id).execution_options(yield_per=STREAM_BATCH)
    with unit_of_work(actor) as uow:
        records = _records(uow.session.exec(q))
        count = (_write_csv if fmt == "csv" else _write_xlsx)(records, out)
        uow.audit("customer.export", "customers", None, format=fmt, rows=count,
                  filter={"search": search or None, "status": status or None,
                          "package_id": package_id, "owner_id": owner_id,
                          "billing_date": billing_date, "sort": sort})
    return count
