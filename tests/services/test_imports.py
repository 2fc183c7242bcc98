"""CSV subscriber import: parsing real-world files, every rule, preview, confirm, races."""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    CustomerStatus,
    ImportJob,
    ImportRow,
    ImportRowOutcome,
    ImportStatus,
    Package,
    User,
)
from fibernode.services import customers, imports, packages, ratelimit, users
from fibernode.services.crypto import decrypt_nik
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from tests.factories import World, superadmin_id

pytestmark = [
    pytest.mark.both_dialects(
        "PostgreSQL gets one COPY, SQLite batched INSERTs; the import's row locks differ too"),
    # Celery is not running here: record what would have been sent to the worker.
    pytest.mark.usefixtures("sent_jobs"),
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "import"
HEADER = ("nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
          "tanggal_register")
INVALID, VALID = ImportRowOutcome.INVALID, ImportRowOutcome.VALID
IMPORTED, SKIPPED = ImportRowOutcome.IMPORTED, ImportRowOutcome.SKIPPED
REGISTERED = "Pelanggan dengan nomor {} sudah terdaftar di {}."
BAD_DATE = ("Tanggal register harus berformat YYYY-MM-DD atau DD/MM/YYYY "
            "(contoh: 2025-01-15).")
BAD_AMOUNT = "harus berupa angka Rupiah (contoh: 100000 atau 100.000)."


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upload(world, name: str):
    return imports.upload_import(world.admin, name, fixture(name))


def preview(actor, job_id) -> dict[int, tuple[ImportRowOutcome, list[str]]]:
    """Every row of the import (all pages) as ``{line_no: (outcome, problems)}``."""
    first = imports.get_import(actor, job_id)
    rows = list(first.rows)
    for page in range(2, first.pages + 1):
        rows += imports.get_import(actor, job_id, page=page).rows
    return {r.line_no: (r.outcome, r.problems) for r in rows}


def csv_rows(n: int, *, area: str = "WiFi Sukamaju", prefix: str = "0813") -> bytes:
    """``n`` valid rows for one owner with distinct phone numbers."""
    lines = [HEADER] + [
        f"Pelanggan {i},{prefix}{i:08d},0,{i % 28 + 1},{area},Paket 10 Mbps,100000,100000,,"
        "2025-01-01" for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def customer_count() -> int:
    with new_session() as s:
        return s.exec(select(sa.func.count()).select_from(Customer)).one()


def customer(phone: str, owner_id=None) -> Customer:
    with new_session() as s:
        q = select(Customer).where(Customer.phone == phone)
        if owner_id is not None:
            q = q.where(Customer.owner_id == owner_id)
        return s.exec(q).one()


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


def table_counts() -> tuple[int, int, int, int]:
    with new_session() as s:
        return tuple(s.exec(select(sa.func.count()).select_from(m)).one()
                     for m in (ImportJob, ImportRow, ActivityLog, Customer))


def package_name(package_id) -> str:
    with new_session() as s:
        return s.get(Package, package_id).name


# --- previews of real-world files ----------------------------------------------------------


def test_spec_example_preview_and_import(world, sent_jobs):
    job = upload(world, "spec_example.csv")
    assert (job.status, job.total_rows, job.valid_rows, job.invalid_rows) == (
        ImportStatus.PREVIEWED, 4, 2, 2)
    assert (job.progress_done, job.progress_total, job.error) == (4, 4, None)
    assert job.filename == "spec_example.csv" and job.created_by_name == "Super Admin"
    # Ahmad's and Dewi's numbers belong to the seeded subscribers of WiFi Sukamaju.
    assert preview(world.admin, job.id) == {
        2: (INVALID, [REGISTERED.format("6281234567890", "WiFi Sukamaju")]),
        3: (INVALID, [REGISTERED.format("6289876543210", "WiFi Sukamaju")]),
        4: (VALID, []),
        5: (VALID, []),
    }
    row = job.rows[3]
    assert (row.line_no, row.name, row.phone, row.area, row.package, row.total) == (
        5, "Dewi Lestari", "6287766554433", "Net Mekarjaya", "Paket 10 Mbps", 80_000)
    assert job.can_confirm and not job.is_running
    before = customer_count()

    done = imports.confirm_import(world.admin, job.id)

    assert (done.status, done.imported_rows, done.skipped_rows, done.failed_rows) == (
        ImportStatus.DONE, 2, 0, 2)
    assert done.finished_at is not None and done.progress_percent == 100
    assert preview(world.admin, job.id) == {
        2: (INVALID, [REGISTERED.format("6281234567890", "WiFi Sukamaju")]),
        3: (INVALID, [REGISTERED.format("6289876543210", "WiFi Sukamaju")]),
        4: (IMPORTED, []),
        5: (IMPORTED, []),
    }
    assert customer_count() == before + 2
    mitra2 = world.mitra_b.user_id
    budi, dewi = customer("6281122334455", mitra2), customer("6287766554433", mitra2)
    assert (budi.name, package_name(budi.package_id), budi.billing_date, budi.discount,
            budi.total_bill, budi.status, budi.register_date, budi.nik) == (
        "Budi Santoso", "Paket 50 Mbps", 15, 0, 250_000, CustomerStatus.ACTIVE,
        date(2025, 3, 10), None)
    assert (dewi.discount, dewi.total_bill, dewi.billing_date, dewi.register_date) == (
        20_000, 80_000, 20, date(2025, 4, 5))
    assert decrypt_nik(dewi.nik) == "3201234567890004"
    assert sent_jobs == []

    [up], [confirm], [imported] = logs("import.upload"), logs("import.confirm"), \
        logs("customer.import")
    assert up.user_id == confirm.user_id == imported.user_id == world.admin.user_id
    assert up.meta["total_rows"] == 4 and up.meta["filename"] == "spec_example.csv"
    assert imported.resource_id == job.id
    assert {k: imported.meta[k] for k in ("job_id", "filename", "imported", "skipped",
                                          "failed")} == {
        "job_id": str(job.id), "filename": "spec_example.csv", "imported": 2, "skipped": 0,
        "failed": 2}
    # One audit row for the whole import, none per subscriber.
    assert [log.meta.get("name") for log in logs("customer.create")
            if not log.meta.get("seed")] == []


def test_bom_semicolon_file_with_mixed_case_header(world):
    job = upload(world, "bom_semicolon.csv")
    assert preview(world.admin, job.id) == {2: (VALID, []), 3: (VALID, []), 4: (VALID, [])}
    imports.confirm_import(world.admin, job.id)
    citra = customer("6281211110001")
    assert (citra.owner_id, citra.total_bill, citra.billing_date) == (
        world.mitra_a.user_id, 100_000, 1)
    dodi = customer("6281211110002")
    assert (dodi.owner_id, package_name(dodi.package_id), dodi.discount, dodi.total_bill,
            dodi.billing_date, dodi.register_date) == (
        world.mitra_b.user_id, "Paket 30 Mbps", 25_000, 175_000, 28, date(2025, 6, 1))
    assert decrypt_nik(dodi.nik) == "3201234567890003"  # spaces inside the NIK removed
    assert customer("6281211110003").owner_id == superadmin_id()


def test_excel_quoting_and_multiline_cells(world):
    job = upload(world, "excel_quoted.csv")
    assert preview(world.admin, job.id) == {n: (VALID, []) for n in (2, 3, 4, 5)}
    assert [(r.line_no, r.name, r.total) for r in job.rows] == [
        (2, "Hartono, S.Kom", 100_000),
        (3, 'Ibu "Ani" Wijaya', 140_000),
        (4, "Joko Susilo", 100_000),  # one record spanning two physical lines
        (5, "Kartini", 100_000),
    ]
    imports.confirm_import(world.admin, job.id)
    ani = customer("6281233330002")
    assert (ani.name, ani.discount, ani.total_bill, ani.owner_id) == (
        'Ibu "Ani" Wijaya', 10_000, 140_000, superadmin_id())
    assert decrypt_nik(ani.nik) == "3201234567890010"
    assert customer("6281233330003").name == "Joko Susilo"


def test_messy_phone_numbers_and_amounts(world):
    job = upload(world, "messy_phones_amounts.csv")
    assert preview(world.admin, job.id) == {
        2: (VALID, []),
        3: (VALID, []),
        4: (VALID, []),
        5: (INVALID, ["Nomor telepon 6.28123E+12 tertulis sebagai angka ilmiah. Ubah format "
                      "kolom telepon menjadi Teks di Excel."]),
        6: (INVALID, ["Nomor telepon harus 10–15 digit (contoh: 6281234567890)."]),
        7: (INVALID, ["Nomor telepon harus diawali 62 (contoh: 6281234567890)."]),
        8: (INVALID, ["Diskon harus berupa angka Rupiah (contoh: 10000 atau 10.000)."]),
        9: (VALID, []),
    }
    assert [r.phone for r in job.rows if r.outcome == VALID] == [
        "6281234560001", "6281234560002", "6281234560003", "6281234560008"]
    imports.confirm_import(world.admin, job.id)
    made = customer("6281234560002")
    assert (made.discount, made.total_bill) == (50_000, 100_000)
    assert customer("6281234560001").discount == 0  # an empty discount means none


def test_dates_in_both_formats(world):
    job = upload(world, "dd_mm_yyyy_dates.csv")
    assert preview(world.admin, job.id) == {
        2: (VALID, []),
        3: (VALID, []),
        4: (INVALID, [BAD_DATE]),  # 31 February
        5: (INVALID, [BAD_DATE]),  # month 13
        6: (INVALID, ["Tanggal register tidak boleh di masa depan."]),
        7: (VALID, []),
        8: (INVALID, [BAD_DATE]),  # two-digit year
    }
    imports.confirm_import(world.admin, job.id)
    assert [customer(p).register_date for p in
            ("6281255550001", "6281255550002", "6281255550006")] == [
        date(2025, 1, 15), date(2025, 3, 5), date(2024, 12, 1)]


def test_blank_lines_are_ignored_but_counted_as_spreadsheet_rows(world):
    job = upload(world, "trailing_blank_lines.csv")
    assert job.total_rows == 2
    assert preview(world.admin, job.id) == {2: (VALID, []), 4: (VALID, [])}


def test_every_rule_has_its_message(world):
    job = upload(world, "errors_every_rule.csv")
    assert (job.total_rows, job.valid_rows, job.invalid_rows) == (26, 1, 25)
    assert preview(world.admin, job.id) == {
        2: (INVALID, ["Nama pelanggan wajib diisi."]),
        3: (INVALID, ["Nomor telepon wajib diisi."]),
        4: (INVALID, ["Diskon harus berupa angka Rupiah (contoh: 10000 atau 10.000)."]),
        5: (INVALID, ["Tanggal tagihan harus antara 1 dan 28."]),
        6: (INVALID, ["Tanggal tagihan harus antara 1 dan 28."]),
        7: (INVALID, ["Tanggal tagihan harus berupa angka bulat."]),
        8: (INVALID, ["Tanggal tagihan wajib diisi."]),
        9: (INVALID, ["Area 'WiFi Antah' tidak cocok dengan mitra mana pun."]),
        10: (INVALID, ["Area wajib diisi."]),
        11: (INVALID, ["Paket 'Paket 1 Gbps' tidak ditemukan."]),
        12: (INVALID, ["Tarif 100.000 tidak sama dengan harga paket Rp 150.000."]),
        13: (INVALID, ["Total bayar harus tarif − diskon (Rp 140.000)."]),
        14: (INVALID, ["Diskon tidak boleh melebihi harga paket (Rp 100.000)."]),
        15: (INVALID, ["Diskon tidak boleh negatif."]),
        16: (INVALID, ["NIK harus tepat 16 digit angka."]),
        17: (INVALID, ["Tanggal register wajib diisi."]),
        18: (INVALID, [BAD_DATE]),
        19: (INVALID, ["Tanggal register tidak boleh di masa depan."]),
        20: (INVALID, ["Tarif paket wajib diisi."]),
        21: (INVALID, [f"Tarif paket {BAD_AMOUNT}"]),
        22: (INVALID, ["Total bayar wajib diisi."]),
        23: (INVALID, [f"Total bayar {BAD_AMOUNT}"]),
        24: (INVALID, ["Nama paket wajib diisi."]),
        # An unquoted "100,000" shifts every later cell one column to the right.
        25: (INVALID, [
            "Baris ini berisi lebih banyak kolom daripada baris judul. Nilai yang memuat "
            "tanda koma atau titik koma harus diapit tanda kutip.",
            "Tarif 100 tidak sama dengan harga paket Rp 100.000.",
            "Total bayar harus tarif − diskon (Rp 100).",
            "NIK harus tepat 16 digit angka.",
            "Tanggal register wajib diisi.",
        ]),
        # One reason per problem, in column order.
        26: (INVALID, [
            "Nama pelanggan wajib diisi.",
            "Nomor telepon harus diawali 62 (contoh: 6281234567890).",
            "Diskon harus berupa angka Rupiah (contoh: 10000 atau 10.000).",
            "Tanggal tagihan harus antara 1 dan 28.",
            "Area 'Antah' tidak cocok dengan mitra mana pun.",
            "Paket 'Paket X' tidak ditemukan.",
            f"Tarif paket {BAD_AMOUNT}",
            f"Total bayar {BAD_AMOUNT}",
            "NIK harus tepat 16 digit angka.",
            BAD_DATE,
        ]),
        27: (VALID, []),
    }


def test_duplicates_within_the_file_and_against_existing_subscribers(world):
    job = upload(world, "duplicates.csv")
    ahmad = REGISTERED.format("6281234567890", "WiFi Sukamaju")
    assert preview(world.admin, job.id) == {
        2: (VALID, []),
        3: (INVALID, ["Nomor telepon duplikat dengan baris 2."]),
        4: (VALID, []),  # same number, another owner
        5: (INVALID, [ahmad]),
        6: (VALID, []),  # Ahmad's number at the superadmin is new there
        7: (INVALID, ["Nomor telepon duplikat dengan baris 5.", ahmad]),
    }
    # Invalid rows show the number normalised when it can be.
    assert [r.phone for r in job.rows][:2] == ["6281277770001", "6281277770001"]


def test_inactive_owner_and_package(world):
    users.set_user_active(world.admin, world.mitra_b.user_id, False)
    with new_session() as s:
        pkg30 = s.exec(select(Package.id).where(Package.name == "Paket 30 Mbps")).one()
    packages.set_package_active(world.admin, pkg30, False)
    content = "\n".join([
        HEADER,
        "Satu,081299990001,0,5,Net Mekarjaya,Paket 10 Mbps,100000,100000,,2025-01-01",
        "Dua,081299990002,0,5,WiFi Sukamaju,Paket 30 Mbps,200000,200000,,2025-01-01",
    ]).encode()
    job = imports.upload_import(world.admin, "nonaktif.csv", content)
    assert preview(world.admin, job.id) == {
        2: (INVALID, ["Area 'Net Mekarjaya' milik mitra yang sedang dinonaktifkan."]),
        3: (INVALID, ["Paket 'Paket 30 Mbps' sudah tidak aktif."]),
    }


# --- file-level problems -------------------------------------------------------------------


FILE_ERRORS = {
    "missing column": (
        fixture("missing_column.csv"),
        "Kolom 'telepon' dan 'area' tidak ditemukan di baris judul. Baris pertama harus "
        f"berisi judul kolom: {HEADER}."),
    "xlsx renamed .csv": (fixture("binary.xlsx.csv"), imports.FILE_EXCEL),
    "png renamed .csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
                         imports.FILE_BINARY),
    "latin-1": (f"{HEADER}\nJos\xe9,081211112222,0,5,WiFi Sukamaju,Paket 10 Mbps,100000,"
                "100000,,2025-01-01\n".encode("latin-1"), imports.FILE_ENCODING),
    "utf-16": (f"{HEADER}\n".encode("utf-16"), imports.FILE_UTF16),
    "empty": (b"", imports.FILE_EMPTY),
    "only whitespace": (b"\xef\xbb\xbf \r\n\r\n", imports.FILE_EMPTY),
    "header only": (f"{HEADER}\r\n\r\n".encode(), imports.FILE_NO_DATA),
    "repeated column": (f"{HEADER},Nama\n".encode(),
                        "Kolom 'nama' muncul lebih dari satu kali di baris judul."),
    "unclosed quote": (
        f'{HEADER}\nA,081211112222,0,5,WiFi Sukamaju,"Paket 10 Mbps,100000,100000,,'
        "2025-01-01\nB,081211113333,0,5,WiFi Sukamaju,Paket 10 Mbps,100000,100000,,"
        "2025-01-01\n".encode(),
        'File CSV tidak dapat dibaca mulai baris 2: periksa tanda kutip (") yang tidak '
        "ditutup atau tidak diikuti pemisah kolom."),
}


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_unusable_files_are_rejected_without_writing_anything(world, case):
    content, message = FILE_ERRORS[case]
    before = table_counts()
    with pytest.raises(ValidationFailed) as exc:
        imports.upload_import(world.admin, "pelanggan.csv", content)
    assert exc.value.details == {"file": message}
    assert exc.value.message == message
    assert table_counts() == before


def test_file_size_limit(world):
    content = HEADER.encode() + b"\n" + b"x" * imports.MAX_FILE_BYTES
    before = table_counts()
    with pytest.raises(ValidationFailed) as exc:
        imports.upload_import(world.admin, "besar.csv", content)
    assert exc.value.details == {
        "file": "Ukuran file 5,1 MB melebihi batas 5 MB. Bagi file menjadi beberapa bagian."}
    assert table_counts() == before


def test_uploads_have_a_per_user_quota(world, real_rate_limits):
    for _ in range(ratelimit.IMPORTS_PER_5_MIN):
        imports.upload_import(world.admin, "pelanggan.csv", csv_rows(1))
    before = table_counts()
    with pytest.raises(RateLimited) as refused:
        imports.upload_import(world.admin, "pelanggan.csv", csv_rows(1))
    assert refused.value.message == "Terlalu banyak permintaan. Coba lagi sebentar lagi."
    assert table_counts() == before  # no job, no audit row


def test_row_count_limit(world):
    before = table_counts()
    with pytest.raises(ValidationFailed) as exc:
        imports.upload_import(world.admin, "banyak.csv", csv_rows(imports.MAX_ROWS + 1))
    assert exc.value.details == {
        "file": "File berisi 20.001 baris data, melebihi batas 20.000 baris per impor. "
                "Bagi file menjadi beberapa bagian."}
    assert table_counts() == before
    # Exactly the limit is fine (checked on the parser: storing 20,000 rows is slow here).
    assert len(imports.parse_csv(csv_rows(imports.MAX_ROWS)).rows) == imports.MAX_ROWS


def test_excel_sep_line_and_windows_path_filename(world):
    content = ("sep=;\r\n" + HEADER.replace(",", ";") +
               "\r\nSatu;081299990001;0;5;WiFi Sukamaju;Paket 10 Mbps;100.000;100.000;;"
               "2025-01-01\r\n").encode()
    job = imports.upload_import(world.admin, "C:\\Users\\admin\\Desktop\\data.csv", content)
    assert job.filename == "data.csv"
    assert preview(world.admin, job.id) == {2: (VALID, [])}


@pytest.mark.parametrize(("text", "amount"), [
    ("100000", 100_000), ("100.000", 100_000), ("Rp 100.000", 100_000),
    ("Rp100.000,-", 100_000), ("rp. 1.250.000", 1_250_000), ("100.000,00", 100_000),
    ("Rp\xa0150.000", 150_000), ("0", 0), ("-5.000", -5_000), ("", None), ("100,000", None),
    ("10.00", None), ("1e5", None), ("Rp", None),
])
def test_parse_amount(text, amount):
    assert imports.parse_amount(text) == amount


@pytest.mark.parametrize(("text", "value"), [
    ("2025-01-15", date(2025, 1, 15)), ("15/01/2025", date(2025, 1, 15)),
    ("5/3/2025", date(2025, 3, 5)), ("05-03-2025", date(2025, 3, 5)),
    ("2025-01-15 00:00:00", date(2025, 1, 15)), ("2025-02-30", None), ("15/01/25", None),
    ("2025/01/15", None), ("15-01/2025", None), ("", None),
])
def test_parse_date(text, value):
    assert imports.parse_date(text) == value


# --- confirm, re-import, skip, cancel ------------------------------------------------------


def test_reimporting_the_same_file_imports_nothing_twice(world):
    first = upload(world, "excel_quoted.csv")
    imports.confirm_import(world.admin, first.id)
    count = customer_count()

    again = upload(world, "excel_quoted.csv")

    assert (again.valid_rows, again.invalid_rows) == (0, 4)
    assert preview(world.admin, again.id) == {
        2: (INVALID, [REGISTERED.format("6281233330001", "WiFi Sukamaju")]),
        3: (INVALID, [REGISTERED.format("6281233330002", "FiberNode Pusat")]),
        4: (INVALID, [REGISTERED.format("6281233330003", "Net Mekarjaya")]),
        5: (INVALID, [REGISTERED.format("6281233330004", "Net Mekarjaya")]),
    }
    assert not again.can_confirm
    with pytest.raises(Conflict, match="Tidak ada baris valid yang dapat diimpor."):
        imports.confirm_import(world.admin, again.id)
    assert customer_count() == count


def test_rows_that_became_duplicates_after_the_preview_are_skipped(world):
    job = upload(world, "trailing_blank_lines.csv")
    customers.create_customer(world.mitra_b, name="Candra Dulu", phone="0812-8888-0002",
                              package_id=customer("6281234567890").package_id,
                              billing_date=3)
    count = customer_count()

    done = imports.confirm_import(world.admin, job.id)

    assert (done.status, done.imported_rows, done.skipped_rows) == (ImportStatus.DONE, 1, 1)
    assert preview(world.admin, job.id) == {
        2: (IMPORTED, []),
        4: (SKIPPED, [REGISTERED.format("6281288880002", "Net Mekarjaya")]),
    }
    assert customer_count() == count + 1
    assert customer("6281288880002").name == "Candra Dulu"
    assert imports.get_import(world.admin, job.id, outcome="skipped").row_count == 1
    report = imports.error_report_csv(world.admin, job.id).decode("utf-8-sig")
    assert report.splitlines()[1:] == [
        "Candra,081288880002,0,12,Net Mekarjaya,Paket 10 Mbps,100000,100000,,2025-03-02,4,"
        + REGISTERED.format("6281288880002", "Net Mekarjaya")]
    assert logs("customer.import")[0].meta["skipped"] == 1


def test_confirming_twice_is_refused(world):
    job = upload(world, "spec_example.csv")
    imports.confirm_import(world.admin, job.id)
    count = customer_count()
    with pytest.raises(Conflict) as exc:
        imports.confirm_import(world.admin, job.id)
    assert exc.value.message == "Impor ini sudah dikonfirmasi."
    assert customer_count() == count
    assert len(logs("customer.import")) == 1


def test_changes_since_the_preview_skip_rows(world):
    job = upload(world, "spec_example.csv")  # lines 4 and 5 valid, both Net Mekarjaya
    with new_session() as s:
        pkg50 = s.exec(select(Package.id).where(Package.name == "Paket 50 Mbps")).one()
    packages.update_package(world.admin, pkg50, price=275_000)
    done = imports.confirm_import(world.admin, job.id)
    assert (done.imported_rows, done.skipped_rows) == (1, 1)
    assert preview(world.admin, job.id)[4] == (SKIPPED, [
        "Harga paket 'Paket 50 Mbps' berubah menjadi Rp 275.000; periksa tarif lalu impor "
        "ulang baris ini."])


def test_cancel(world):
    job = upload(world, "spec_example.csv")
    cancelled = imports.cancel_import(world.admin, job.id)
    assert cancelled.status == ImportStatus.CANCELLED and cancelled.finished_at
    assert len(logs("import.cancel")) == 1
    # Again: nothing changes, nothing is logged.
    assert imports.cancel_import(world.admin, job.id).status == ImportStatus.CANCELLED
    assert len(logs("import.cancel")) == 1
    with pytest.raises(Conflict, match="Impor ini sudah dibatalkan."):
        imports.confirm_import(world.admin, job.id)

    done = upload(world, "trailing_blank_lines.csv")
    imports.confirm_import(world.admin, done.id)
    with pytest.raises(Conflict, match="Impor yang sudah selesai tidak dapat dibatalkan."):
        imports.cancel_import(world.admin, done.id)


# --- reading imports -----------------------------------------------------------------------


def test_rows_are_paged_and_filtered(world):
    job = upload(world, "errors_every_rule.csv")
    assert (job.row_count, job.pages, len(job.rows)) == (26, 2, 20)
    page2 = imports.get_import(world.admin, job.id, page=2)
    assert [r.line_no for r in page2.rows] == list(range(22, 28))
    invalid = imports.get_import(world.admin, job.id, outcome="invalid")
    assert (invalid.row_count, invalid.pages, invalid.outcome_filter) == (25, 2, INVALID)
    valid = imports.get_import(world.admin, job.id, outcome=VALID)
    assert [(r.line_no, r.name) for r in valid.rows] == [(27, "Yanti")]
    assert imports.get_import(world.admin, job.id, outcome="").row_count == 26
    assert imports.get_import(world.admin, job.id, page=9).rows == []
    with pytest.raises(ValidationFailed, match="Filter hasil baris tidak dikenal."):
        imports.get_import(world.admin, job.id, outcome="rusak")
    with pytest.raises(NotFound, match="Impor tidak ditemukan."):
        imports.get_import(world.admin, uuid.uuid4())
    with pytest.raises(NotFound):
        imports.get_import(world.admin, "bukan-uuid")


def test_list_imports_newest_first(world):
    first = upload(world, "spec_example.csv")
    second = upload(world, "duplicates.csv")
    listing = imports.list_imports(world.admin)
    assert [j.id for j in listing.items] == [second.id, first.id]
    assert (listing.total, listing.pages) == (2, 1)
    assert listing.items[0].rows == [] and listing.items[0].filename == "duplicates.csv"
    assert imports.list_imports(world.admin, page=2).items == []


def test_error_report_keeps_the_original_cells(world):
    job = upload(world, "duplicates.csv")
    report = imports.error_report_csv(world.admin, job.id)
    assert report.startswith(b"\xef\xbb\xbf")
    ahmad = REGISTERED.format("6281234567890", "WiFi Sukamaju")
    assert report.decode("utf-8-sig") == "\r\n".join([
        f"{HEADER},baris,alasan",
        # A cell a spreadsheet would run as a formula is escaped with a quote.
        "Eko Lagi,'+62 812 7777 0001,0,6,wifi sukamaju,Paket 10 Mbps,100000,100000,,2025-01-01,"
        "3,Nomor telepon duplikat dengan baris 2.",
        f"Ahmad Lagi,0812-3456-7890,0,8,WiFi Sukamaju,Paket 10 Mbps,100000,100000,,2025-01-01,"
        f"5,{ahmad}",
        "Ahmad Lagi 2,6281234567890,0,10,WiFi Sukamaju,Paket 10 Mbps,100000,100000,,"
        f"2025-01-01,7,Nomor telepon duplikat dengan baris 5.; {ahmad}",
        "",
    ])
    assert imports.get_import(world.admin, job.id).report_filename == "duplicates-gagal.csv"


def test_error_report_uses_the_uploads_separator_and_can_be_uploaded_again(world):
    content = "\r\n".join([
        HEADER.replace(",", ";"),
        "Tuti;081244440001;0;5;WiFi Sukamaju;Paket 10 Mbps;Rp 100.000;Rp 90.000;"
        "3201234567890099;2025-01-01",
        'Umi;081244440002;0;5;WiFi Sukamaju;Paket 10 Mbps;100.000;100.000;;"2025;01"',
    ]).encode()
    job = imports.upload_import(world.admin, "titik-koma.csv", content)
    report = imports.error_report_csv(world.admin, job.id).decode("utf-8-sig")
    assert report.splitlines() == [
        HEADER.replace(",", ";") + ";baris;alasan",
        "Tuti;081244440001;0;5;WiFi Sukamaju;Paket 10 Mbps;Rp 100.000;Rp 90.000;"
        "3201234567890099;2025-01-01;2;Total bayar harus tarif − diskon (Rp 100.000).",
        'Umi;081244440002;0;5;WiFi Sukamaju;Paket 10 Mbps;100.000;100.000;;"2025;01";3;'
        + BAD_DATE,
    ]
    # The report goes back in as it is: "baris" and "alasan" are ignored.
    again = imports.upload_import(world.admin, "perbaikan.csv", report.encode())
    assert [(r.line_no, r.problems) for r in again.rows] == [
        (2, ["Total bayar harus tarif − diskon (Rp 100.000)."]), (3, [BAD_DATE])]


def test_the_plain_nik_is_never_stored(world):
    job = upload(world, "spec_example.csv")
    imports.confirm_import(world.admin, job.id)
    with new_session() as s:
        stored = s.exec(select(ImportRow.raw, ImportRow.data)).all()
    dumped = json.dumps([list(r) for r in stored])
    for nik in ("3201234567890001", "3201234567890002", "3201234567890004"):
        assert nik not in dumped
    # The error report still gives the superadmin what was in the file.
    assert b"3201234567890001" in imports.error_report_csv(world.admin, job.id)


# --- large files: the Celery path ----------------------------------------------------------


def test_more_than_1000_rows_go_to_the_worker(world, sent_jobs):
    n = imports.SYNC_ROWS + 1
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(n))
    assert (job.status, job.total_rows, job.progress_done, job.progress_total) == (
        ImportStatus.VALIDATING, n, 0, n)
    assert job.is_running and not job.can_confirm
    assert sent_jobs == [(imports.VALIDATE_TASK, (str(job.id),))]
    # The rows appear once the worker has validated them.
    assert (job.rows, job.row_count) == ([], 0)
    with new_session() as s:
        stored = s.get(ImportJob, job.id)
        assert len(stored.pending_rows) == n and stored.pending_rows[0][0] == 2
    with pytest.raises(Conflict, match="File masih divalidasi."):
        imports.confirm_import(world.admin, job.id)

    assert imports.validate_job(job.id) == {"status": "previewed", "valid_rows": n,
                                            "invalid_rows": 0}
    previewed = imports.get_import(world.admin, job.id)
    assert (previewed.status, previewed.valid_rows, previewed.progress_done,
            previewed.progress_total, previewed.row_count) == (
        ImportStatus.PREVIEWED, n, n, n, n)
    assert [(r.line_no, r.name, r.phone) for r in previewed.rows[:2]] == [
        (2, "Pelanggan 0", "6281300000000"), (3, "Pelanggan 1", "6281300000001")]
    with new_session() as s:
        assert s.get(ImportJob, job.id).pending_rows is None
    # A second delivery of the task changes nothing.
    assert imports.validate_job(job.id) == {"status": "previewed"}

    count = customer_count()
    importing = imports.confirm_import(world.admin, job.id)
    assert (importing.status, importing.progress_done, importing.progress_total) == (
        ImportStatus.IMPORTING, 0, n)
    assert sent_jobs[1] == (imports.RUN_TASK, (str(job.id),))
    assert customer_count() == count
    with pytest.raises(Conflict, match="Impor ini sudah dikonfirmasi."):
        imports.confirm_import(world.admin, job.id)

    assert imports.run_job(str(job.id)) == {"status": "done", "imported_rows": n,
                                            "skipped_rows": 0}
    done = imports.get_import(world.admin, job.id)
    assert (done.status, done.imported_rows, done.progress_done, done.progress_total) == (
        ImportStatus.DONE, n, n, n)
    assert customer_count() == count + n
    assert imports.run_job(job.id) == {"status": "superseded"}
    assert customer_count() == count + n
    [log] = logs("customer.import")
    assert log.user_id is None and log.meta["job"] == "celery.import"
    assert log.meta["imported"] == n and log.meta["created_by"] == str(world.admin.user_id)


def test_cancelled_validation_stops(world, sent_jobs):
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(imports.SYNC_ROWS + 1))
    imports.cancel_import(world.admin, job.id)
    assert imports.validate_job(job.id) == {"status": "cancelled"}
    assert imports.get_import(world.admin, job.id).row_count == 0
    with new_session() as s:
        assert s.get(ImportJob, job.id).pending_rows is None


def test_validation_stops_when_cancelled_midway(world, sent_jobs, monkeypatch):
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(imports.SYNC_ROWS + 1))
    real = imports.unit_of_work
    batches = []

    @contextmanager
    def cancel_before_second_batch(actor):
        if actor.is_system:
            batches.append(actor)
            if len(batches) == 2:
                imports.cancel_import(world.admin, job.id)
        with real(actor) as uow:
            yield uow

    monkeypatch.setattr(imports, "unit_of_work", cancel_before_second_batch)
    assert imports.validate_job(job.id) == {"status": "superseded"}
    cancelled = imports.get_import(world.admin, job.id)
    assert (cancelled.status, cancelled.row_count) == (ImportStatus.CANCELLED, imports.CHUNK)


def test_a_redelivered_validation_starts_over(world, sent_jobs, monkeypatch):
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(imports.SYNC_ROWS + 1))
    real = imports.bulk_insert

    def crash_after_first_batch(session, table, rows):
        real(session, table, rows)
        session.commit()  # as if the worker died after this batch was stored
        raise SystemExit("worker killed")

    monkeypatch.setattr(imports, "bulk_insert", crash_after_first_batch)
    with pytest.raises(SystemExit):
        imports.validate_job(job.id)
    monkeypatch.setattr(imports, "bulk_insert", real)
    assert imports.get_import(world.admin, job.id).row_count == imports.CHUNK

    assert imports.validate_job(job.id)["status"] == "previewed"
    again = imports.get_import(world.admin, job.id)
    assert (again.row_count, again.valid_rows) == (imports.SYNC_ROWS + 1,) * 2


def test_a_broker_that_cannot_be_reached_fails_the_job(world, sent_jobs):
    sent_jobs.refuse(ConnectionError("broker down"))
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(imports.SYNC_ROWS + 1))
    assert (job.status, job.error) == (ImportStatus.FAILED, imports.ENQUEUE_FAILED)
    assert len(logs("import.fail")) == 1


def test_an_error_while_importing_rolls_everything_back(world, monkeypatch):
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(imports.SYNC_ROWS + 1))
    imports.validate_job(job.id)
    imports.confirm_import(world.admin, job.id)
    count = customer_count()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "_finish", broken)
    assert imports.run_job(job.id) == {"status": "failed"}
    failed = imports.get_import(world.admin, job.id)
    assert (failed.status, failed.error, failed.imported_rows) == (
        ImportStatus.FAILED, imports.RUN_FAILED, 0)
    assert customer_count() == count
    assert imports.get_import(world.admin, job.id, outcome="valid").row_count == \
        imports.SYNC_ROWS + 1


# --- permissions ---------------------------------------------------------------------------


def _use_cases(job_id):
    return {
        "upload_import": lambda a: imports.upload_import(a, "x.csv", fixture("spec_example.csv")),
        "get_import": lambda a: imports.get_import(a, job_id),
        "list_imports": lambda a: imports.list_imports(a),
        "confirm_import": lambda a: imports.confirm_import(a, job_id),
        "cancel_import": lambda a: imports.cancel_import(a, job_id),
        "error_report_csv": lambda a: imports.error_report_csv(a, job_id),
    }


@pytest.mark.parametrize("use_case", list(_use_cases(None)))
def test_only_the_superadmin_may_import(world, use_case):
    job = upload(world, "spec_example.csv")
    call = _use_cases(job.id)[use_case]
    before = table_counts()
    for mitra in (world.mitra_a, world.mitra_b):
        with pytest.raises(PermissionDenied):
            call(mitra)
    with pytest.raises(AuthenticationRequired):
        call(world.anonymous)
    assert table_counts() == before
    with new_session() as s:
        assert s.get(ImportJob, job.id).status == ImportStatus.PREVIEWED


# --- races (PostgreSQL: real concurrent transactions) --------------------------------------


def run_together(*calls):
    """Start the calls in threads at the same moment; return each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_double_confirm_inserts_once(pg, sent_jobs):
    world = World.seeded()
    job = imports.upload_import(world.admin, "dobel.csv", csv_rows(400))
    count = customer_count()

    results = run_together(lambda: imports.confirm_import(world.admin, job.id),
                           lambda: imports.confirm_import(world.admin, job.id))

    done = [r for r in results if isinstance(r, imports.ImportJobView)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(done) == 1 and len(refused) == 1, results
    assert refused[0].message == "Impor ini sudah dikonfirmasi."
    assert done[0].imported_rows == 400
    assert customer_count() == count + 400
    assert len(logs("customer.import")) == 1


def test_two_imports_of_the_same_file_confirmed_together_insert_once(pg, sent_jobs):
    world = World.seeded()
    content = csv_rows(400)
    a = imports.upload_import(world.admin, "a.csv", content)
    b = imports.upload_import(world.admin, "b.csv", content)
    assert a.valid_rows == b.valid_rows == 400
    count = customer_count()

    results = run_together(lambda: imports.confirm_import(world.admin, a.id),
                           lambda: imports.confirm_import(world.admin, b.id))

    assert all(isinstance(r, imports.ImportJobView) for r in results), results
    assert sorted((r.imported_rows, r.skipped_rows) for r in results) == [(0, 400), (400, 0)]
    assert customer_count() == count + 400
    with new_session() as s:
        phones = s.exec(select(Customer.phone).where(
            Customer.owner_id == world.mitra_a.user_id)).all()
    assert len(phones) == len(set(phones))


def test_concurrent_worker_runs_insert_once(pg, sent_jobs):
    world = World.seeded()
    n = imports.SYNC_ROWS + 1
    a = imports.upload_import(world.admin, "a.csv", csv_rows(n))
    b = imports.upload_import(world.admin, "b.csv", csv_rows(n))
    for job in (a, b):
        imports.validate_job(job.id)
        imports.confirm_import(world.admin, job.id)
    count = customer_count()

    # The same job delivered twice, and another job of the same file, all at once.
    results = run_together(lambda: imports.run_job(a.id), lambda: imports.run_job(a.id),
                           lambda: imports.run_job(b.id))

    assert sorted(r["status"] for r in results) == ["done", "done", "superseded"], results
    assert customer_count() == count + n
    views = [imports.get_import(world.admin, j.id) for j in (a, b)]
    assert sorted((v.imported_rows, v.skipped_rows) for v in views) == [(0, n), (n, 0)]
    assert all(v.progress_done == v.progress_total == n for v in views)
    assert len(logs("customer.import")) == 2


def test_import_owner_is_resolved_case_insensitively_among_active_users(world):
    with new_session() as s:
        names = sorted(s.exec(select(User.business_name)).all())
    assert names == ["FiberNode Pusat", "Net Mekarjaya", "WiFi Sukamaju"]
    content = "\n".join([
        HEADER,
        "Satu,081299990001,0,5,  wifi SUKAMAJU ,Paket 10 Mbps,100000,100000,,2025-01-01",
    ]).encode()
    job = imports.upload_import(world.admin, "area.csv", content)
    imports.confirm_import(world.admin, job.id)
    assert customer("6281299990001").owner_id == world.mitra_a.user_id


def test_worker_progress_is_visible_while_the_import_runs(pg, sent_jobs, monkeypatch):
    world = World.seeded()
    n = imports.SYNC_ROWS + 1
    job = imports.upload_import(world.admin, "besar.csv", csv_rows(n))
    imports.validate_job(job.id)
    imports.confirm_import(world.admin, job.id)
    seen: list[tuple[int, int]] = []
    real_writer = imports._progress_writer

    def observed(job_id, status):
        write = real_writer(job_id, status)

        def write_and_look(done):
            result = write(done)
            # What a poller sees while the insert transaction is still open.
            seen.append((imports.get_import(world.admin, job_id).progress_done,
                         customer_count()))
            return result

        return write_and_look

    monkeypatch.setattr(imports, "_progress_writer", observed)
    count = customer_count()
    imports.run_job(job.id)
    assert seen == [(500, count), (1000, count), (n, count)]
    assert customer_count() == count + n


def test_cleanup_drops_old_finished_imports_and_stale_previews(world):
    from datetime import timedelta

    from fibernode import clock
    from fibernode.services import maintenance
    from fibernode.services.context import Actor

    content = (FIXTURES / "spec_example.csv").read_bytes()
    old_preview = imports.upload_import(world.admin, "lama.csv", content)
    fresh_preview = imports.upload_import(world.admin, "baru.csv", content)
    with new_session() as s:
        s.execute(sa.update(ImportJob).where(ImportJob.id == old_preview.id)
                  .values(updated_at=clock.now() - timedelta(days=8)))
        s.commit()

    result = maintenance.cleanup(Actor.system("cleanup"))

    assert result.import_jobs == 1
    with new_session() as s:
        assert s.get(ImportJob, old_preview.id) is None
        assert s.get(ImportJob, fresh_preview.id) is not None
        assert not s.exec(sa.select(ImportRow).where(ImportRow.job_id == old_preview.id)).all()


def test_escaped_cells_from_an_error_report_import_as_written(world):
    content = (f"{HEADER}\n"
               "Eko Lagi,'+62 812 7777 0001,0,6,WiFi Sukamaju,Paket 10 Mbps,100000,100000,,"
               "2025-01-01\n").encode()
    job = imports.upload_import(world.admin, "perbaikan.csv", content)
    assert job.valid_rows == 1
    assert job.rows[0].phone == "6281277770001"
