"""CSV subscriber import (superadmin only): upload → preview → confirm → result.

The flow, as the spec's "Import CSV Pelanggan" describes it:

1. :func:`upload_import` checks the file (size, text, header). Files of up to
   ``SYNC_ROWS`` data rows are validated at once, one ``import_rows`` row per data
   line (status ``previewed``); larger ones wait in ``import_jobs.pending_rows``
   for the Celery task ``workers.tasks.validate_import`` (status ``validating``,
   with progress), which calls :func:`validate_job`.
2. :func:`get_import` shows the preview: every line with its outcome and one
   Indonesian reason per problem.
3. :func:`confirm_import` inserts the valid rows in one transaction, set-based.
   Duplicates are checked again under a per-owner lock, so rows that became
   duplicates since the preview are skipped, never inserted twice, also when
   the same import or the same file is confirmed twice at once. Large imports
   run in ``workers.tasks.run_import`` (:func:`run_job`).
4. The result: imported / skipped / failed counts and :func:`error_report_csv`.

The plain NIK never reaches the database: the NIK cell is stored encrypted in
``raw``, ``data`` and ``pending_rows`` alike, with :func:`crypto.encrypt_nik`.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Json
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import select

from fibernode import clock
from fibernode.db import get_engine, new_session
from fibernode.formatting import number, rupiah
from fibernode.models import (
    Customer,
    CustomerStatus,
    ImportJob,
    ImportRow,
    ImportRowOutcome,
    ImportStatus,
    Package,
    User,
)
from fibernode.services import jobqueue, ratelimit
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.crypto import decrypt_nik, encrypt_nik
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.services.exports import neutralise, unneutralise
from fibernode.services.paging import Page, check_per_page
from fibernode.services.uow import UnitOfWork, unit_of_work
from fibernode.services.validation import (  # parse_amount: also this module's API
    as_uuid,
    billing_date_problem,
    clean,
    discount_problem,
    nik_clean,
    nik_problem,
    normalize_phone,
    parse_amount,
    phone_problem,
    required,
)

log = logging.getLogger(__name__)

COLUMNS = ("nama", "telepon", "diskon", "tanggal", "area", "paket_nama", "paket_tarif",
           "total_bayar", "nik", "tanggal_register")
# The NIK is optional, so a sheet without that column is still acceptable.
OPTIONAL_COLUMNS = frozenset({"nik"})
REPORT_COLUMNS = (*COLUMNS, "baris", "alasan")
EXTRA_KEY = "_lebih"  # non-empty cells beyond the header, kept in ``raw``

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
SYNC_ROWS = 1_000  # larger files are validated and imported by a Celery worker
CHUNK = 500  # rows per batch statement and per progress update
PAGE_SIZE = 20
IN_CHUNK = 500  # values per IN (…) list (SQLite has a bound-parameter limit)
# Namespaces for pg_advisory_xact_lock(int, int) (auth uses 1 and 2).
LOCK_IMPORT_JOB = 3
LOCK_IMPORT_OWNER = 4

VALIDATE_TASK = "workers.tasks.validate_import"
RUN_TASK = "workers.tasks.run_import"
SYSTEM_ACTOR = "celery.import"

NOT_FOUND = "Impor tidak ditemukan."
ALREADY_CONFIRMED = "Impor ini sudah dikonfirmasi."
FILE_EMPTY = "File CSV kosong."
FILE_NO_DATA = "File hanya berisi judul kolom, tidak ada data pelanggan."
FILE_EXCEL = ("File ini adalah file Excel, bukan CSV. Di Excel pilih Simpan Sebagai → "
              "'CSV UTF-8 (Comma delimited) (*.csv)', lalu unggah file tersebut.")
FILE_UTF16 = ("File berenkoding UTF-16. Simpan ulang sebagai 'CSV UTF-8 (Comma delimited) "
              "(*.csv)', lalu unggah lagi.")
FILE_BINARY = ("File ini bukan file CSV (isinya data biner). Unggah file .csv yang disimpan "
               "dari Excel atau Google Sheets.")
FILE_ENCODING = ("File tidak berenkoding UTF-8. Di Excel pilih Simpan Sebagai → 'CSV UTF-8 "
                 "(Comma delimited) (*.csv)', lalu unggah lagi.")
ENQUEUE_FAILED = ("Antrian proses latar belakang tidak dapat dihubungi. Tidak ada pelanggan "
                  "yang disimpan; silakan coba lagi nanti.")
VALIDATE_FAILED = ("Terjadi kesalahan sistem saat memvalidasi file. Tidak ada pelanggan yang "
                   "disimpan; silakan unggah ulang file.")
RUN_FAILED = ("Terjadi kesalahan sistem saat menyimpan pelanggan. Tidak ada pelanggan yang "
              "disimpan; silakan unggah ulang file.")

_CONFIRM_CONFLICTS = {
    ImportStatus.VALIDATING: "File masih divalidasi. Tunggu hingga pratinjau selesai.",
    ImportStatus.IMPORTING: ALREADY_CONFIRMED,
    ImportStatus.DONE: ALREADY_CONFIRMED,
    ImportStatus.CANCELLED: "Impor ini sudah dibatalkan.",
    ImportStatus.FAILED: "Impor ini gagal. Unggah ulang file untuk mencoba lagi.",
}
_CANCEL_CONFLICTS = {
    ImportStatus.IMPORTING: "Impor yang sudah dikonfirmasi tidak dapat dibatalkan.",
    ImportStatus.DONE: "Impor yang sudah selesai tidak dapat dibatalkan.",
    ImportStatus.FAILED: "Impor ini sudah gagal; tidak ada yang perlu dibatalkan.",
}

_jobs = ImportJob.__table__
_rows = ImportRow.__table__


# --- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRowView:
    """One data line of the file as the preview shows it.

    ``line_no`` is the row number a spreadsheet shows (the header is line 1);
    ``total`` is the ``total_bayar`` amount, ``None`` when it cannot be read.
    """

    line_no: int
    name: str
    phone: str
    area: str
    package: str
    total: int | None
    outcome: ImportRowOutcome
    problems: list[str]


@dataclass(frozen=True)
class ImportJobView:
    """An import with its counts, progress and (from :func:`get_import`) a page of rows.

    Counts: ``total_rows`` data lines = ``valid_rows`` + ``invalid_rows`` once
    validated; after the import ``imported_rows`` + ``skipped_rows`` =
    ``valid_rows`` and the failed ones are ``invalid_rows``. ``progress_done`` of
    ``progress_total`` counts lines validated (status ``validating``) or
    subscribers inserted (status ``importing``). ``error`` is a file-level problem
    (a failed job). ``row_count`` is the number of rows matching ``outcome_filter``.
    """

    id: uuid.UUID
    filename: str
    status: ImportStatus
    created_by_name: str
    total_rows: int
    valid_rows: int
    invalid_rows: int
    imported_rows: int
    skipped_rows: int
    progress_done: int
    progress_total: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    rows: list[ImportRowView] = field(default_factory=list)
    page: int = 1
    per_page: int = PAGE_SIZE
    row_count: int = 0
    outcome_filter: ImportRowOutcome | None = None

    @property
    def pages(self) -> int:
        """Number of row pages (at least 1)."""
        return max(1, math.ceil(self.row_count / self.per_page))

    @property
    def failed_rows(self) -> int:
        """Rows that cannot be imported (invalid), for the result summary."""
        return self.invalid_rows

    @property
    def progress_percent(self) -> int:
        """Progress of the running step, 0–100."""
        if self.progress_total <= 0:
            return 100 if self.status in (ImportStatus.PREVIEWED, ImportStatus.DONE) else 0
        return min(100, self.progress_done * 100 // self.progress_total)

    @property
    def is_running(self) -> bool:
        """Whether a worker is still busy with it (the UI keeps polling)."""
        return self.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING)

    @property
    def can_confirm(self) -> bool:
        """Whether the import button makes sense."""
        return self.status == ImportStatus.PREVIEWED and self.valid_rows > 0

    @property
    def report_filename(self) -> str:
        """Suggested name of the error report download."""
        stem = self.filename[:-4] if self.filename.lower().endswith(".csv") else self.filename
        return f"{stem or 'impor'}-gagal.csv"


# One page of recent imports (newest first), without their rows.
ImportJobPage = Page[ImportJobView]


def _job_view(job: ImportJob, creator: str | None, **extra: Any) -> ImportJobView:
    return ImportJobView(
        id=job.id, filename=job.filename, status=job.status, created_by_name=creator or "",
        total_rows=job.total_rows, valid_rows=job.valid_rows, invalid_rows=job.invalid_rows,
        imported_rows=job.imported_rows, skipped_rows=job.skipped_rows,
        progress_done=job.progress_done, progress_total=job.progress_total, error=job.error,
        created_at=job.created_at, updated_at=job.updated_at, finished_at=job.finished_at,
        **extra,
    )


def _row_view(line_no: int, raw: dict, data: dict | None, problems: list | None,
              outcome: ImportRowOutcome) -> ImportRowView:
    total = data.get("total_bill") if data else parse_amount(raw.get("total_bayar", ""))
    phone = normalize_phone(raw.get("telepon"))
    if phone_problem(phone):
        phone = clean(raw.get("telepon"))  # show what was written when it is unusable
    return ImportRowView(
        line_no=line_no, name=_name(raw.get("nama")), phone=phone,
        area=clean(raw.get("area")), package=clean(raw.get("paket_nama")),
        total=total, outcome=outcome, problems=list(problems or []),
    )


# --- reading the file ----------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedFile:
    """A CSV file that passed the file-level checks.

    Attributes:
        delimiter: ``,`` or ``;``, sniffed from the header line.
        rows: ``(line_no, raw)`` per non-empty data row; ``raw`` maps each column of
            :data:`COLUMNS` to its cell as written (the NIK still in plain text).
    """

    delimiter: str
    rows: list[tuple[int, dict[str, Any]]]


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed({"file": message})


def _and_list(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " dan " + quoted[-1]


def _sniff_delimiter(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip().lower())


def _column_index(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        key = _header_key(name)
        if key not in COLUMNS:
            continue  # extra columns (notes, numbering) are ignored
        if key in index:
            raise _file_error(f"Kolom '{key}' muncul lebih dari satu kali di baris judul.")
        index[key] = i
    missing = [c for c in COLUMNS if c not in index and c not in OPTIONAL_COLUMNS]
    if missing:
        raise _file_error(
            f"Kolom {_and_list(missing)} tidak ditemukan di baris judul. "
            f"Baris pertama harus berisi judul kolom: {','.join(COLUMNS)}."
        )
    return index


def parse_csv(content: bytes) -> ParsedFile:
    """Check and read an uploaded subscriber CSV.

    Accepts UTF-8 with or without BOM, ``,`` or ``;`` separators (sniffed from the
    header), Excel-style quoting, header names in any case and with stray spaces,
    and ignores fully empty rows.

    Args:
        content: The file as uploaded.

    Returns:
        The separator and the non-empty data rows.

    Raises:
        ValidationFailed: ``{"file": …}`` for an empty, too large, binary or
            non-UTF-8 file, a missing or repeated column, no data or too many rows.
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    content = bytes(content)
    if not content.strip():
        raise _file_error(FILE_EMPTY)
    if len(content) > MAX_FILE_BYTES:
        size = number(math.ceil(len(content) * 10 / (1024 * 1024)) / 10)
        raise _file_error(f"Ukuran file {size} MB melebihi batas 5 MB. "
                          "Bagi file menjadi beberapa bagian.")
    if content.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise _file_error(FILE_EXCEL)
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _file_error(FILE_UTF16)
    if b"\x00" in content:
        raise _file_error(FILE_BINARY)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(FILE_ENCODING) from exc
    if not text.strip():
        raise _file_error(FILE_EMPTY)

    # Excel may write a "sep=;" line first and hides it when opening the file, so the
    # header is still row 1 for the user.
    if (sep := re.match(r"sep=([,;])[ \t]*(?:\r\n|\r|\n)", text, flags=re.IGNORECASE)):
        delimiter, text = sep[1], text[sep.end():]
    else:
        delimiter = _sniff_delimiter(text)
    # strict: an unclosed quote is an error instead of silently eating the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    index: dict[str, int] | None = None
    width = 0
    rows: list[tuple[int, dict[str, Any]]] = []
    # Records, not physical lines: a quoted cell may span lines, and a spreadsheet
    # shows each record as one row (blank ones included).
    line_no = 0
    while True:
        line_no += 1
        starts_at = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _file_error(
                f"File CSV tidak dapat dibaca mulai baris {starts_at}: periksa tanda kutip "
                '(") yang tidak ditutup atau tidak diikuti pemisah kolom.'
            ) from exc
        if not any(cell.strip() for cell in cells):
            continue
        if index is None:
            index, width = _column_index(cells), len(cells)
            continue
        raw = {col: (unneutralise(cells[index[col]])
                     if col in index and index[col] < len(cells) else "")
               for col in COLUMNS}
        extra = [cell for cell in cells[width:] if cell.strip()]
        if extra:
            raw[EXTRA_KEY] = extra
        rows.append((line_no, raw))
    if index is None:
        raise _file_error(FILE_EMPTY)
    if not rows:
        raise _file_error(FILE_NO_DATA)
    if len(rows) > MAX_ROWS:
        raise _file_error(f"File berisi {number(len(rows))} baris data, melebihi batas "
                          f"{number(MAX_ROWS)} baris per impor. Bagi file menjadi beberapa "
                          "bagian.")
    return ParsedFile(delimiter, rows)


_DATE_ISO_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_DATE_DMY_RE = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})")
_SCIENTIFIC_RE = re.compile(r"\d[.,]\d*[eE]\+?\d+$")  # Excel's 6,28123E+12
_DAY_RE = re.compile(r"\d{1,3}")
_LINE_BREAK_RE = re.compile(r"\s*[\r\n]+\s*")


def parse_date(text: str | None) -> date | None:
    """Read ``YYYY-MM-DD`` or ``DD/MM/YYYY`` (also ``DD-MM-YYYY``); ``None`` if invalid."""
    s = (text or "").strip()
    try:
        if (m := _DATE_ISO_RE.fullmatch(s)):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if (m := _DATE_DMY_RE.fullmatch(s)):
            return date(int(m[4]), int(m[3]), int(m[1]))
    except ValueError:
        return None
    return None


# --- validating rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Owner:
    id: uuid.UUID
    name: str
    active: bool


@dataclass(frozen=True)
class _Package:
    id: uuid.UUID
    name: str
    price: int
    active: bool


@dataclass(frozen=True)
class Checked:
    """The validation result of one row: what goes into ``import_rows``."""

    outcome: ImportRowOutcome
    problems: list[str]
    data: dict[str, Any] | None


def _name(cell: str | None) -> str:
    cell = cell or ""
    if "\n" in cell or "\r" in cell:
        # A cell wrapped in Excel (Alt+Enter) becomes one line, as the form would give.
        cell = _LINE_BREAK_RE.sub(" ", cell)
    return clean(cell)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pick(candidates: list, text: str):
    """The active candidate written exactly so, else the first active one, else ``None``."""
    active = [c for c in candidates if c.active]
    exact = [c for c in active if c.name == text]
    return (exact or active or [None])[0]


def _existing_phones(session, owner_ids: Iterable[uuid.UUID],
                     phones: Iterable[str]) -> set[tuple[uuid.UUID, str]]:
    """``(owner_id, phone)`` of the subscribers that already exist among those given."""
    owners, phones = set(owner_ids), sorted(set(phones))
    found: set[tuple[uuid.UUID, str]] = set()
    if not owners:
        return found
    # By phone only, so idx_customers_phone answers it; owners are few, compared here.
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter instead of thousands of bound values.
        batches = [Customer.phone == sa.any_(sa.cast(sa.bindparam("p", phones),
                                                     ARRAY(sa.String)))]
    else:
        batches = [Customer.phone.in_(chunk) for chunk in _chunks(phones, IN_CHUNK)]
    for condition in batches:
        q = sa.select(Customer.owner_id, Customer.phone).where(condition)
        found.update((o, p) for o, p in session.execute(q).all() if o in owners)
    return found


def _plain_raw_nik(raw: dict) -> str:
    stored = raw.get("nik") or ""
    return decrypt_nik(stored) if stored else ""


def validate_rows(session, rows: Sequence[tuple[int, dict[str, Any]]]) -> list[Checked]:
    """Apply every import rule to the rows of one file.

    Args:
        session: Where owners, packages and existing subscribers are looked up.
        rows: ``(line_no, raw)`` in file order, with the NIK cell encrypted (as stored).

    Returns:
        One result per row, in the same order.
    """
    owners: dict[str, list[_Owner]] = {}
    for uid, business, active in session.execute(
            sa.select(User.id, User.business_name, User.is_active).order_by(User.business_name)):
        owners.setdefault(business.strip().lower(), []).append(_Owner(uid, business, active))
    packages: dict[str, list[_Package]] = {}
    for pid, name, price, active in session.execute(
            sa.select(Package.id, Package.name, Package.price, Package.is_active)
            .order_by(Package.name, Package.id)):
        packages.setdefault(name.strip().lower(), []).append(_Package(pid, name, price, active))

    today = clock.today()
    staged: list[tuple[list[str], dict[str, Any] | None, tuple[uuid.UUID, str] | None]] = []
    for _line_no, raw in rows:
        problems: list[str] = []
        cell = {col: (raw.get(col) or "").strip() for col in COLUMNS if col != "nik"}
        if raw.get(EXTRA_KEY):
            problems.append("Baris ini berisi lebih banyak kolom daripada baris judul. Nilai "
                            "yang memuat tanda koma atau titik koma harus diapit tanda kutip.")

        name = _name(cell["nama"])
        if (p := required(name, "Nama pelanggan", 255)):
            problems.append(p)

        phone = normalize_phone(cell["telepon"])
        if _SCIENTIFIC_RE.search(cell["telepon"]):
            problems.append(f"Nomor telepon {cell['telepon']} tertulis sebagai angka ilmiah. "
                            "Ubah format kolom telepon menjadi Teks di Excel.")
            phone = ""
        elif cell["telepon"] and not phone:
            problems.append(phone_problem("-"))  # something, but no digits at all
        elif (p := phone_problem(phone)):
            problems.append(p)
            phone = ""

        discount = 0 if not cell["diskon"] else parse_amount(cell["diskon"])
        discount_ok = discount is not None
        if not discount_ok:
            problems.append("Diskon harus berupa angka Rupiah (contoh: 10000 atau 10.000).")

        billing_date: Any = int(cell["tanggal"]) if _DAY_RE.fullmatch(cell["tanggal"]) \
            else cell["tanggal"]
        if not cell["tanggal"]:
            problems.append("Tanggal tagihan wajib diisi.")
        elif (p := billing_date_problem(billing_date)):
            problems.append(p)

        owner = None
        if not cell["area"]:
            problems.append("Area wajib diisi.")
        else:
            candidates = owners.get(cell["area"].lower(), [])
            owner = _pick(candidates, cell["area"])
            if owner is None and candidates:
                problems.append(f"Area '{cell['area']}' milik mitra yang sedang dinonaktifkan.")
            elif owner is None:
                problems.append(f"Area '{cell['area']}' tidak cocok dengan mitra mana pun.")

        tarif = parse_amount(cell["paket_tarif"]) if cell["paket_tarif"] else None
        pkg = None
        if not cell["paket_nama"]:
            problems.append("Nama paket wajib diisi.")
        else:
            candidates = packages.get(cell["paket_nama"].lower(), [])
            # Same name twice: the one whose price the file states is meant.
            priced = [c for c in candidates if c.price == tarif]
            pkg = _pick(priced, cell["paket_nama"]) or _pick(candidates, cell["paket_nama"])
            if pkg is None and candidates:
                problems.append(f"Paket '{cell['paket_nama']}' sudah tidak aktif.")
            elif pkg is None:
                problems.append(f"Paket '{cell['paket_nama']}' tidak ditemukan.")

        if not cell["paket_tarif"]:
            problems.append("Tarif paket wajib diisi.")
        elif tarif is None:
            problems.append("Tarif paket harus berupa angka Rupiah (contoh: 100000 atau "
                            "100.000).")
        elif pkg is not None and tarif != pkg.price:
            problems.append(f"Tarif {number(tarif)} tidak sama dengan harga paket "
                            f"{rupiah(pkg.price)}.")

        if discount_ok and (p := discount_problem(discount, pkg.price if pkg else None)):
            problems.append(p)

        total = parse_amount(cell["total_bayar"]) if cell["total_bayar"] else None
        if not cell["total_bayar"]:
            problems.append("Total bayar wajib diisi.")
        elif total is None:
            problems.append("Total bayar harus berupa angka Rupiah (contoh: 100000 atau "
                            "100.000).")
        elif tarif is not None and discount_ok and total != tarif - discount:
            problems.append(f"Total bayar harus tarif − diskon ({rupiah(tarif - discount)}).")

        nik = nik_clean(_plain_raw_nik(raw))
        if (p := nik_problem(nik)):
            problems.append(p)

        register_date = parse_date(cell["tanggal_register"])
        if not cell["tanggal_register"]:
            problems.append("Tanggal register wajib diisi.")
        elif register_date is None:
            problems.append("Tanggal register harus berformat YYYY-MM-DD atau DD/MM/YYYY "
                            "(contoh: 2025-01-15).")
        elif register_date > today:
            problems.append("Tanggal register tidak boleh di masa depan.")

        key = (owner.id, phone) if owner is not None and phone else None
        data = None
        if not problems:
            data = {
                "owner_id": str(owner.id), "package_id": str(pkg.id), "name": name,
                "phone": phone, "nik": encrypt_nik(nik) if nik else None,
                "billing_date": billing_date, "discount": discount,
                "total_bill": pkg.price - discount, "price": pkg.price,
                "register_date": register_date.isoformat(),
            }
        staged.append((problems, data, key))

    # Duplicates: earlier lines of the file first, then subscribers already stored.
    existing = _existing_phones(session, (k[0] for _, _, k in staged if k),
                                (k[1] for _, _, k in staged if k))
    owner_names = {o.id: o.name for group in owners.values() for o in group}
    first_line: dict[tuple[uuid.UUID, str], int] = {}
    results: list[Checked] = []
    for (line_no, _raw), (problems, data, key) in zip(rows, staged, strict=True):
        if key is not None:
            if key in first_line:
                problems.append(f"Nomor telepon duplikat dengan baris {first_line[key]}.")
            else:
                first_line[key] = line_no
            if key in existing:
                problems.append(f"Pelanggan dengan nomor {key[1]} sudah terdaftar di "
                                f"{owner_names.get(key[0], '')}.")
        if problems:
            results.append(Checked(ImportRowOutcome.INVALID, problems, None))
        else:
            results.append(Checked(ImportRowOutcome.VALID, [], data))
    return results


# --- helpers -------------------------------------------------------------------------------


def _as_uuid(job_id: Any) -> uuid.UUID:
    return as_uuid(job_id, NOT_FOUND)


def _load_job(session, job_id: uuid.UUID) -> tuple[ImportJob, str | None]:
    row = session.exec(
        select(ImportJob, User.name).outerjoin(User, User.id == ImportJob.created_by)
        .where(ImportJob.id == job_id)
    ).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    return row[0], row[1]


def _safe_filename(filename: str | None) -> str:
    # Browsers on Windows may send the whole path; keep only the name.
    name = PureWindowsPath(PurePosixPath(clean(filename)).name).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return (name or "impor.csv")[:255]


def _encrypt_raw(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    out["nik"] = encrypt_nik(raw["nik"]) if (raw.get("nik") or "").strip() else ""
    return out


def _fail_unqueued(waiting: ImportStatus) -> Callable[[uuid.UUID, Exception], None]:
    """The failure policy of :func:`jobqueue.enqueue_on_commit` for a job left ``waiting``."""
    return lambda job_id, _exc: _fail(job_id, ENQUEUE_FAILED, waiting)


def _fail(job_id: uuid.UUID, message: str, *statuses: ImportStatus) -> None:
    """Mark a running job failed (in its own transaction), if it still is in ``statuses``."""
    with unit_of_work(Actor.system(SYSTEM_ACTOR)) as uow:
        changed = uow.session.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status.in_(statuses))
            .values(status=ImportStatus.FAILED, error=message, finished_at=clock.now(),
                    updated_at=clock.now(), pending_rows=None)
        ).rowcount
        if changed:
            uow.audit("import.fail", "import_jobs", job_id, error=message)


def _copy_converter(column: sa.Column) -> Callable[[Any], Any] | None:
    """How a Python value is handed to COPY for ``column`` (``None``: as it is)."""
    if isinstance(column.type, sa.JSON):
        return lambda v: None if v is None else Json(v)
    if isinstance(column.type, sa.Enum):
        return lambda v: v.value if isinstance(v, enum.Enum) else v
    return None


def bulk_insert(session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction, as fast as the database allows.

    PostgreSQL gets one ``COPY`` (several times faster than batched INSERTs); SQLite an
    ``executemany``. Every row must have the same keys, with values already in their
    stored form (aware datetimes, enum members, dicts for JSON columns).
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        session.execute(sa.insert(table), list(rows))
        return
    columns = list(rows[0])
    convert = [(c, _copy_converter(table.c[c])) for c in columns]
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with conn.connection.driver_connection.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row([f(row[c]) if f else row[c] for c, f in convert])


def _write_checked(session, ids: Sequence[uuid.UUID], checked: Sequence[Checked]) -> None:
    """Store validation results on existing rows (``raw`` stays as it is)."""
    values = [(i, c.outcome.value, json.dumps(c.problems) if c.problems else None,
               json.dumps(c.data) if c.data is not None else None)
              for i, c in zip(ids, checked, strict=True)]
    if session.get_bind().dialect.name == "postgresql":
        # One statement per batch, with four array parameters.
        session.execute(sa.text(
            "UPDATE import_rows AS r SET outcome = CAST(v.outcome AS import_row_outcome), "
            "problems = CAST(v.problems AS json), data = CAST(v.data AS json) "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:outcomes AS text[]), "
            "CAST(:problems AS text[]), CAST(:data AS text[])) AS v(id, outcome, problems, data) "
            "WHERE r.id = v.id"
        ), {"ids": [v[0] for v in values], "outcomes": [v[1] for v in values],
            "problems": [v[2] for v in values], "data": [v[3] for v in values]})
        return
    session.execute(
        sa.update(_rows).where(_rows.c.id == sa.bindparam("row_id"))
        .values(outcome=sa.bindparam("outcome"), problems=sa.bindparam("problems"),
                data=sa.bindparam("data")),
        [{"row_id": i, "outcome": c.outcome, "problems": c.problems or None, "data": c.data}
         for i, c in zip(ids, checked, strict=True)],
    )


def _row_records(job_id: uuid.UUID, stored: Sequence[tuple[int, dict]],
                 checked: Sequence[Checked]) -> list[dict[str, Any]]:
    return [{"id": uuid.uuid4(), "job_id": job_id, "line_no": line_no, "raw": raw,
             "data": c.data, "problems": c.problems or None, "outcome": c.outcome}
            for (line_no, raw), c in zip(stored, checked, strict=True)]


def _counts(checked: Sequence[Checked]) -> tuple[int, int]:
    valid = sum(1 for c in checked if c.outcome == ImportRowOutcome.VALID)
    return valid, len(checked) - valid


# --- use cases -----------------------------------------------------------------------------


def upload_import(actor: Actor, filename: str, content: bytes) -> ImportJobView:
    """Read an uploaded subscriber CSV and prepare its preview (superadmin only).

    Files of up to ``SYNC_ROWS`` data rows are validated at once and come back
    ``previewed``; larger ones come back ``validating``, without rows until a worker
    has validated them (poll :func:`get_import` for the progress).

    Args:
        actor: The superadmin.
        filename: The uploaded file's name (only for display).
        content: The file's bytes.

    Returns:
        The new import with its first page of rows.

    Raises:
        PermissionDenied: a mitra calls.
        ValidationFailed: ``{"file": …}`` when the file itself is unusable; no
            import is created then.
        RateLimited: more than ``ratelimit.IMPORTS_PER_5_MIN`` uploads in 5 minutes.
    """
    require_superadmin(actor)
    ratelimit.require_quota(actor, "import", ratelimit.IMPORTS_PER_5_MIN, 300)
    parsed = parse_csv(content)
    filename = _safe_filename(filename)
    total = len(parsed.rows)
    is_async = total > SYNC_ROWS
    now = clock.now()
    with unit_of_work(actor) as uow:
        s = uow.session
        job = ImportJob(created_by=actor.user_id, filename=filename,
                        delimiter=parsed.delimiter, total_rows=total,
                        status=ImportStatus.VALIDATING if is_async else ImportStatus.PREVIEWED,
                        progress_total=total, created_at=now, updated_at=now)
        stored = [(line_no, _encrypt_raw(raw)) for line_no, raw in parsed.rows]
        if is_async:
            # One value for the worker, instead of rows it would rewrite one by one.
            job.pending_rows = [[line_no, raw] for line_no, raw in stored]
            s.add(job)
            s.flush()
        else:
            checked = validate_rows(s, stored)
            job.valid_rows, job.invalid_rows = _counts(checked)
            job.progress_done = total
            s.add(job)
            s.flush()
            bulk_insert(s, _rows, _row_records(job.id, stored, checked))
        uow.audit("import.upload", "import_jobs", job.id, filename=filename,
                  size=len(content), total_rows=total, valid_rows=job.valid_rows,
                  invalid_rows=job.invalid_rows, background=is_async)
        if is_async:
            jobqueue.enqueue_on_commit(uow, VALIDATE_TASK, job.id,
                                       fail=_fail_unqueued(ImportStatus.VALIDATING))
        job_id = job.id
    return get_import(actor, job_id)


def get_import(actor: Actor, job_id: uuid.UUID, *, page: int = 1,
               outcome: ImportRowOutcome | str | None = None) -> ImportJobView:
    """An import with its counts, progress and one page of its rows (superadmin only).

    Args:
        actor: The superadmin.
        job_id: The import.
        page: 1-based page of rows (``PAGE_SIZE`` per page), in file order.
        outcome: Only rows with this outcome (``valid``, ``invalid``, ``imported``,
            ``skipped``); ``None`` or empty for all.

    Raises:
        PermissionDenied: a mitra calls.
        NotFound: no such import.
        ValidationFailed: unknown outcome.
    """
    require_superadmin(actor)
    job_id = _as_uuid(job_id)
    if outcome in (None, ""):
        outcome = None
    else:
        try:
            outcome = ImportRowOutcome(outcome)
        except ValueError as exc:
            raise ValidationFailed({"outcome": "Filter hasil baris tidak dikenal."}) from exc
    page = max(1, int(page or 1))
    with new_session() as s:
        job, creator = _load_job(s, job_id)
        q = sa.select(ImportRow.line_no, ImportRow.raw, ImportRow.data, ImportRow.problems,
                      ImportRow.outcome).where(ImportRow.job_id == job_id)
        if outcome is not None:
            q = q.where(ImportRow.outcome == outcome)
        count = s.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
        rows = s.execute(q.order_by(ImportRow.line_no)
                         .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        views = [_row_view(*r) for r in rows]
    return _job_view(job, creator, rows=views, page=page, row_count=int(count),
                     outcome_filter=outcome)


def list_imports(actor: Actor, page: int = 1, per_page: int | None = None) -> ImportJobPage:
    """Recent imports, newest first, ``PAGE_SIZE`` per page (superadmin only).

    Raises:
        PermissionDenied: a mitra calls.
        ValidationFailed: ``per_page`` outside 1–100.
    """
    require_superadmin(actor)
    page = max(1, int(page or 1))
    size = check_per_page(per_page, PAGE_SIZE)
    with new_session() as s:
        total = s.execute(sa.select(sa.func.count()).select_from(ImportJob)).scalar_one()
        rows = s.exec(
            select(ImportJob, User.name).outerjoin(User, User.id == ImportJob.created_by)
            .order_by(ImportJob.created_at.desc(), ImportJob.id)
            .offset((page - 1) * size).limit(size)
        ).all()
        items = [_job_view(job, creator) for job, creator in rows]
    return ImportJobPage(items, int(total), page, size)


def confirm_import(actor: Actor, job_id: uuid.UUID) -> ImportJobView:
    """Import the valid rows of a previewed import (superadmin only).

    Up to ``SYNC_ROWS`` valid rows are inserted now (status ``done``); more go to
    a worker (status ``importing``; poll :func:`get_import`). Either way all rows
    go in one transaction, and rows whose phone number got registered for the
    same owner since the preview are skipped. Confirming twice, even at the same
    moment, never inserts twice.

    Raises:
        PermissionDenied: a mitra calls.
        NotFound: no such import.
        Conflict: the import is not (or no longer) waiting for confirmation, or has
            no valid rows.
    """
    require_superadmin(actor)
    job_id = _as_uuid(job_id)
    with new_session() as s:
        job, _creator = _load_job(s, job_id)
    if job.status == ImportStatus.PREVIEWED and job.valid_rows == 0:
        raise Conflict("Tidak ada baris valid yang dapat diimpor.")
    is_async = job.valid_rows > SYNC_ROWS
    with unit_of_work(actor) as uow:
        s = uow.session
        now = clock.now()
        # The claim is the transaction's first statement: it takes the row lock on
        # PostgreSQL and the write lock on SQLite, so a second confirm waits here and
        # then finds the status changed.
        claimed = s.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id,
                                   _jobs.c.status == ImportStatus.PREVIEWED)
            .values(status=ImportStatus.IMPORTING, progress_done=0,
                    progress_total=job.valid_rows, updated_at=now)
        ).rowcount
        if not claimed:
            status = s.execute(sa.select(_jobs.c.status).where(_jobs.c.id == job_id)).scalar()
            if status is None:
                raise NotFound(NOT_FOUND)
            raise Conflict(_CONFIRM_CONFLICTS.get(ImportStatus(status), ALREADY_CONFIRMED))
        uow.audit("import.confirm", "import_jobs", job_id, filename=job.filename,
                  valid_rows=job.valid_rows, background=is_async)
        if is_async:
            jobqueue.enqueue_on_commit(uow, RUN_TASK, job_id,
                                       fail=_fail_unqueued(ImportStatus.IMPORTING))
        else:
            imported, skipped = _insert_valid_rows(s, job_id, progress=None)
            _finish(uow, job, imported, skipped)
    return get_import(actor, job_id)


def cancel_import(actor: Actor, job_id: uuid.UUID) -> ImportJobView:
    """Abandon an import that has not been confirmed (superadmin only).

    Cancelling an already cancelled import changes nothing.

    Raises:
        PermissionDenied: a mitra calls.
        NotFound: no such import.
        Conflict: the import was already confirmed, finished or failed.
    """
    require_superadmin(actor)
    job_id = _as_uuid(job_id)
    with unit_of_work(actor) as uow:
        s = uow.session
        now = clock.now()
        changed = s.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status.in_(
                (ImportStatus.VALIDATING, ImportStatus.PREVIEWED)))
            .values(status=ImportStatus.CANCELLED, finished_at=now, updated_at=now,
                    pending_rows=None)
        ).rowcount
        if changed:
            uow.audit("import.cancel", "import_jobs", job_id)
        else:
            status = s.execute(sa.select(_jobs.c.status).where(_jobs.c.id == job_id)).scalar()
            if status is None:
                raise NotFound(NOT_FOUND)
            if ImportStatus(status) != ImportStatus.CANCELLED:
                raise Conflict(_CANCEL_CONFLICTS[ImportStatus(status)])
    return get_import(actor, job_id)


def error_report_csv(actor: Actor, job_id: uuid.UUID) -> bytes:
    """The rows that were not imported, with their line number and reasons (superadmin only).

    Columns: the spec's columns as written in the upload, then ``baris`` (line
    number) and ``alasan`` (the reasons, separated by ``; ``). Invalid rows and,
    after the import, skipped ones are listed. UTF-8 with BOM and the upload's
    separator, so Excel opens it as it opened the original.

    Raises:
        PermissionDenied: a mitra calls.
        NotFound: no such import.
    """
    require_superadmin(actor)
    job_id = _as_uuid(job_id)
    buf = io.StringIO()
    with new_session() as s:
        job, _creator = _load_job(s, job_id)
        writer = csv.writer(buf, delimiter=job.delimiter or ",", lineterminator="\r\n")
        writer.writerow(REPORT_COLUMNS)
        rows = s.execute(
            sa.select(ImportRow.line_no, ImportRow.raw, ImportRow.problems)
            .where(ImportRow.job_id == job_id,
                   ImportRow.outcome.in_((ImportRowOutcome.INVALID, ImportRowOutcome.SKIPPED)))
            .order_by(ImportRow.line_no)
        ).all()
        for line_no, raw, problems in rows:
            cells = [raw.get(col, "") for col in COLUMNS]
            cells[COLUMNS.index("nik")] = _plain_raw_nik(raw)
            # The report is opened in a spreadsheet: never let a cell run as a formula.
            writer.writerow([*(neutralise(str(c or "")) for c in cells), line_no,
                             "; ".join(problems or [])])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# --- the import itself (synchronous confirm and the worker) --------------------------------


def _lock_owners(session, owner_ids: Iterable[uuid.UUID]) -> None:
    """Serialise imports per owner until commit, so duplicate checks see each other.

    On SQLite the transaction already holds the database's only write lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # One key per owner, taken in ascending key order by every import, so two imports
    # cannot deadlock. Advisory locks leave the users rows alone: logins and new
    # subscribers do not wait.
    keys = sorted({int.from_bytes(o.bytes[:4], "big", signed=True) for o in owner_ids})
    if keys:
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(CAST(:keys AS int[])) "
                    "WITH ORDINALITY AS t(k, n) ORDER BY n"),
            {"ns": LOCK_IMPORT_OWNER, "keys": keys},
        )


def _insert_valid_rows(session, job_id: uuid.UUID,
                       progress: Callable[[int], None] | None) -> tuple[int, int]:
    """Insert the job's valid rows as subscribers; mark them imported or skipped.

    Runs inside the caller's transaction. Rows whose owner, package or price changed
    since the preview, or whose phone the owner already has, are skipped.

    Returns:
        ``(imported, skipped)``.
    """
    rows = session.execute(
        sa.select(_rows.c.id, _rows.c.data)
        .where(_rows.c.job_id == job_id, _rows.c.outcome == ImportRowOutcome.VALID)
        .order_by(_rows.c.line_no)
    ).all()
    parsed: dict[str, Any] = {}  # ids and dates repeat: parse each text once

    def cached_uuid(text: str) -> uuid.UUID:
        if (value := parsed.get(text)) is None:
            value = parsed[text] = uuid.UUID(text)
        return value

    def as_date(text: str) -> date:
        if (value := parsed.get(text)) is None:
            value = parsed[text] = date.fromisoformat(text)
        return value

    owner_ids = {cached_uuid(d["owner_id"]) for _, d in rows}
    _lock_owners(session, owner_ids)
    owners = {uid: (name, active) for uid, name, active in session.execute(
        sa.select(User.id, User.business_name, User.is_active).where(User.id.in_(owner_ids))
    )} if owner_ids else {}
    package_ids = {cached_uuid(d["package_id"]) for _, d in rows}
    packages = {pid: (name, price, active) for pid, name, price, active in session.execute(
        sa.select(Package.id, Package.name, Package.price, Package.is_active)
        .where(Package.id.in_(package_ids))
    )} if package_ids else {}
    existing = _existing_phones(session, owner_ids, (d["phone"] for _, d in rows))

    now = clock.now()
    inserts: list[dict[str, Any]] = []
    skipped: list[tuple[uuid.UUID, Checked]] = []
    for row_id, d in rows:
        owner_id, package_id = cached_uuid(d["owner_id"]), cached_uuid(d["package_id"])
        owner_name, owner_active = owners.get(owner_id, ("", False))
        pkg_name, price, pkg_active = packages.get(package_id, ("", None, False))
        key = (owner_id, d["phone"])
        reason = None
        if key in existing:
            reason = (f"Pelanggan dengan nomor {d['phone']} sudah terdaftar di "
                      f"{owner_name}.")
        elif not owner_active:
            reason = f"Area '{owner_name}' milik mitra yang sedang dinonaktifkan."
        elif not pkg_active:
            reason = f"Paket '{pkg_name}' sudah tidak aktif."
        elif price != d["price"]:
            reason = (f"Harga paket '{pkg_name}' berubah menjadi {rupiah(price)}; "
                      "periksa tarif lalu impor ulang baris ini.")
        if reason:
            skipped.append((row_id, Checked(ImportRowOutcome.SKIPPED, [reason], d)))
            continue
        existing.add(key)
        inserts.append({
            "id": uuid.uuid4(), "owner_id": owner_id, "package_id": package_id,
            "name": d["name"], "phone": d["phone"], "nik": d["nik"], "address": None,
            "billing_date": d["billing_date"], "discount": d["discount"],
            "total_bill": d["total_bill"], "status": CustomerStatus.ACTIVE,
            "register_date": as_date(d["register_date"]), "notes": None,
            "created_at": now, "updated_at": now,
        })
    done = 0
    for chunk in _chunks(inserts, CHUNK):
        bulk_insert(session, Customer.__table__, chunk)
        done += len(chunk)
        if progress is not None:
            progress(done)
    if skipped:
        _write_checked(session, [i for i, _ in skipped], [c for _, c in skipped])
    session.execute(
        sa.update(_rows).where(_rows.c.job_id == job_id,
                               _rows.c.outcome == ImportRowOutcome.VALID)
        .values(outcome=ImportRowOutcome.IMPORTED)
    )
    return len(inserts), len(skipped)


def _finish(uow: UnitOfWork, job: ImportJob, imported: int, skipped: int) -> None:
    """Record the result in the job (still ``importing``) and write the import's audit row.

    Raises:
        _Superseded: another run finished the job first (the caller rolls back).
    """
    now = clock.now()
    changed = uow.session.execute(
        sa.update(_jobs).where(_jobs.c.id == job.id, _jobs.c.status == ImportStatus.IMPORTING)
        .values(status=ImportStatus.DONE, imported_rows=imported, skipped_rows=skipped,
                progress_done=imported + skipped, progress_total=job.valid_rows,
                finished_at=now, updated_at=now)
    ).rowcount
    if not changed:
        raise _Superseded()
    uow.audit("customer.import", "import_jobs", job.id, job_id=job.id, filename=job.filename,
              imported=imported, skipped=skipped, failed=job.invalid_rows,
              created_by=job.created_by)


class _Superseded(Exception):  # noqa: N818 - control flow, never shown
    """The job was finished or cancelled by someone else meanwhile."""


def _progress_writer(job_id: uuid.UUID, status: ImportStatus) -> Callable[[int], bool]:
    """Store ``progress_done`` in its own short transaction, so pollers see it at once."""

    def write(done: int) -> bool:
        with get_engine().begin() as conn:
            return bool(conn.execute(
                sa.update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status == status)
                .values(progress_done=done, updated_at=clock.now())
            ).rowcount)

    return write


def validate_job(job_id: uuid.UUID | str) -> dict[str, Any]:
    """Validate a large import's rows (the ``validate_import`` task).

    The rows waiting in ``pending_rows`` are validated, then stored ``CHUNK`` at a
    time, each batch with the progress in its own transaction; the job becomes
    ``previewed`` at the end. A cancelled job stops at the next batch; any
    unexpected error fails the job.

    Returns:
        The job's status and counts (for the task result).
    """
    job_id = _as_uuid(job_id)
    actor = Actor.system(SYSTEM_ACTOR)
    try:
        with new_session() as s:
            job = s.get(ImportJob, job_id)
            if job is None or job.status != ImportStatus.VALIDATING:
                return {"status": job.status.value if job else None}
            stored = [(line_no, raw) for line_no, raw in job.pending_rows or []]
            checked = validate_rows(s, stored)
        done = 0
        for start in range(0, len(stored), CHUNK):
            part = slice(start, start + CHUNK)
            with unit_of_work(actor) as uow:
                uow.bookkeeping("validation progress of an import; its outcome is audited")
                still = uow.session.execute(
                    sa.update(_jobs).where(_jobs.c.id == job_id,
                                           _jobs.c.status == ImportStatus.VALIDATING)
                    .values(progress_done=done + len(stored[part]), updated_at=clock.now())
                ).rowcount
                if not still:
                    raise _Superseded()
                if start == 0:
                    # Rows of an earlier, interrupted delivery of this task.
                    uow.session.execute(sa.delete(_rows).where(_rows.c.job_id == job_id))
                bulk_insert(uow.session, _rows,
                            _row_records(job_id, stored[part], checked[part]))
                done += len(stored[part])
        valid, invalid = _counts(checked)
        with unit_of_work(actor) as uow:
            uow.session.execute(
                sa.update(_jobs).where(_jobs.c.id == job_id,
                                       _jobs.c.status == ImportStatus.VALIDATING)
                .values(status=ImportStatus.PREVIEWED, valid_rows=valid, invalid_rows=invalid,
                        progress_done=len(stored), progress_total=len(stored),
                        pending_rows=None, updated_at=clock.now())
            )
            uow.audit("import.validate", "import_jobs", job_id, valid_rows=valid,
                      invalid_rows=invalid)
        return {"status": ImportStatus.PREVIEWED.value, "valid_rows": valid,
                "invalid_rows": invalid}
    except _Superseded:
        return {"status": "superseded"}
    except Exception:
        log.exception("validating import %s failed", job_id)
        _fail(job_id, VALIDATE_FAILED, ImportStatus.VALIDATING)
        return {"status": ImportStatus.FAILED.value}


def run_job(job_id: uuid.UUID | str) -> dict[str, Any]:
    """Insert a large import's valid rows (the ``run_import`` task), in one transaction.

    Progress (subscribers inserted) is stored every ``CHUNK`` rows on PostgreSQL;
    SQLite allows one writer at a time, so there it jumps to the total at the end.
    A second delivery of the same job waits for the first and then does nothing;
    an unexpected error rolls everything back and fails the job.

    Returns:
        The job's status and counts (for the task result).
    """
    job_id = _as_uuid(job_id)
    actor = Actor.system(SYSTEM_ACTOR)
    try:
        with unit_of_work(actor) as uow:
            s = uow.session
            if s.get_bind().dialect.name == "postgresql":
                # Two deliveries of this job queue up here; progress is written by
                # other connections, so the job row itself stays unlocked until the end.
                s.execute(sa.select(sa.func.pg_advisory_xact_lock(
                    LOCK_IMPORT_JOB, sa.func.hashtext(str(job_id)))))
                progress = _progress_writer(job_id, ImportStatus.IMPORTING)
                claimed = s.execute(sa.select(_jobs.c.status).where(
                    _jobs.c.id == job_id)).scalar() == ImportStatus.IMPORTING
            else:
                # The first write takes SQLite's lock for the whole transaction.
                progress = None
                claimed = s.execute(
                    sa.update(_jobs).where(_jobs.c.id == job_id,
                                           _jobs.c.status == ImportStatus.IMPORTING)
                    .values(updated_at=clock.now())
                ).rowcount == 1
            if not claimed:
                raise _Superseded()
            job = s.get(ImportJob, job_id)
            imported, skipped = _insert_valid_rows(s, job_id, progress=progress)
            _finish(uow, job, imported, skipped)
        return {"status": ImportStatus.DONE.value, "imported_rows": imported,
                "skipped_rows": skipped}
    except _Superseded:
        return {"status": "superseded"}
    except Exception:
        log.exception("import %s failed", job_id)
        _fail(job_id, RUN_FAILED, ImportStatus.IMPORTING)
        return {"status": ImportStatus.FAILED.value}
