"""Benchmark: the customer list search and a 10,000-row CSV import on PostgreSQL.

Creates its own database (dropped at the end), migrates it, bulk-loads 200 mitra
and 100,000 subscribers with COPY, then times the services in-process:

1. ``customers.list_customers`` page 1 with a search term, for the superadmin
   and for one mitra: median and p95 of ``RUNS`` calls (budget ``SEARCH_BUDGET_MS``
   on the p95, for the terms of ``SEARCHES`` marked so);
2. a 10,000-row CSV import: upload, validation, confirm and insert, calling the
   same functions the Celery tasks call (budget ``IMPORT_BUDGET_S``).

Run: ``.venv/bin/python bench/customers_bench.py`` (PostgreSQL on 127.0.0.1:5432,
user postgres, trust; override with ``BENCH_PG_ADMIN_URL``). Exits 1 when a
budget is missed.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("APP_ENV", "test")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from fibernode import db as fn_db  # noqa: E402
from fibernode.cli import migrate_url  # noqa: E402
from fibernode.config import reset_settings  # noqa: E402
from fibernode.models import ImportStatus, UserRole  # noqa: E402
from fibernode.services import customers, imports  # noqa: E402
from fibernode.services.context import Actor  # noqa: E402
from fibernode.services.passwords import hash_password  # noqa: E402
from fibernode.services.seed import seed  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MITRA = 200
SUBSCRIBERS = 100_000
IMPORT_ROWS = 10_000
RUNS = 50
# (term, held to the budget): a subscriber's name, the start of a phone number as
# typed (0811… is stored as 62811…), and a surname shared by 5% of all subscribers,
# shown for information: its cost is reading those 5,000 scattered rows.
SEARCHES = (("budi santoso", True), ("0811000123", True), ("santoso", False))
SEARCH_BUDGET_MS = 30.0
IMPORT_BUDGET_S = 10.0

FIRST = ["Ahmad", "Budi", "Citra", "Dewi", "Eko", "Fitri", "Gilang", "Hendra", "Indah",
         "Joko", "Kartika", "Lestari", "Made", "Nur", "Putri", "Rina", "Siti", "Teguh",
         "Umar", "Wahyu", "Yanti", "Agus", "Bayu", "Dian", "Rudi", "Sri", "Tono", "Wati"]
LAST = ["Santoso", "Wijaya", "Saputra", "Lestari", "Hidayat", "Pratama", "Kusuma",
        "Nugroho", "Rahayu", "Setiawan", "Hartono", "Susanto", "Gunawan", "Permana",
        "Siregar", "Nasution", "Wibowo", "Fauzi", "Halim", "Utami"]


def sqlalchemy_url(admin_url: str, name: str) -> str:
    """SQLAlchemy (psycopg 3) URL of database ``name`` on the admin URL's server."""
    base = admin_url.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def bulk_load(conninfo: str, rng: random.Random) -> list[tuple[uuid.UUID, str]]:
    """200 mitra and 100,000 subscribers via COPY; returns the mitra (id, business name)."""
    now = datetime.now(UTC)
    password = hash_password("Mitra123!")  # one hash for all: hashing is not measured
    mitra = [(uuid.uuid4(), f"Net Bench {i:03d}") for i in range(MITRA)]
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        packages = cur.execute("SELECT id, price FROM packages WHERE is_active").fetchall()
        with cur.copy("COPY users (id, username, password_hash, name, role, business_name, "
                      "is_active, created_at, updated_at) FROM STDIN") as copy:
            for i, (uid, business) in enumerate(mitra):
                copy.write_row((uid, f"bench{i:03d}", password, f"Mitra {i:03d}", "mitra",
                                business, True, now, now))
        owners = [uid for uid, _ in mitra]
        start = date(2023, 1, 1)
        with cur.copy("COPY customers (id, owner_id, package_id, name, phone, billing_date, "
                      "discount, total_bill, status, register_date, created_at, updated_at) "
                      "FROM STDIN") as copy:
            for i in range(SUBSCRIBERS):
                package_id, price = packages[i % len(packages)]
                discount = 10_000 if i % 7 == 0 else 0
                status = "isolated" if i % 50 == 0 else "active"
                copy.write_row((
                    uuid.uuid4(), owners[i % MITRA], package_id,
                    f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}", f"62811{i:08d}",
                    i % 28 + 1, discount, price - discount, status,
                    start + timedelta(days=i % 900), now, now,
                ))
        cur.execute("ANALYZE")
        conn.commit()
    return mitra


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and p95 (milliseconds) of ``runs`` calls, after two warm-up calls."""
    for _ in range(2):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def import_csv(mitra: list[tuple[uuid.UUID, str]]) -> bytes:
    """10,000 valid rows spread over the mitra, with new phone numbers."""
    lines = ["nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
             "tanggal_register"]
    for i in range(IMPORT_ROWS):
        nik = f"3201{i:012d}" if i % 2 else ""
        lines.append(f"Impor {i},0857{i:08d},10.000,{i % 28 + 1},{mitra[i % MITRA][1]},"
                     f"Paket 20 Mbps,Rp 150.000,140.000,{nik},15/01/2025")
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    """Run the benchmark; returns the process exit code."""
    name = f"fibernode_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(ADMIN_URL, name)
    conninfo = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = None
    failed = False
    try:
        t0 = time.perf_counter()
        migrate_url(url)
        reset_settings()
        engine = fn_db.create_engine_for(url)
        fn_db.set_engine(engine)
        seed(Actor.system("seed"), demo=True)
        mitra = bulk_load(conninfo, random.Random(7))
        print(f"setup: {MITRA} mitra, {SUBSCRIBERS:,} subscribers in "
              f"{time.perf_counter() - t0:.1f} s")

        with psycopg.connect(conninfo) as conn:
            admin_id = conn.execute(
                "SELECT id FROM users WHERE role = 'superadmin'").fetchone()[0]
        admin = Actor(user_id=admin_id, role=UserRole.SUPERADMIN, name="bench")
        one_mitra = Actor(user_id=mitra[117][0], role=UserRole.MITRA, name="bench mitra")

        print(f"\n1. list_customers page 1 with a search term ({RUNS} runs, "
              f"budget {SEARCH_BUDGET_MS:.0f} ms)")
        for label, actor in (("superadmin", admin), ("mitra", one_mitra)):
            for term, budgeted in SEARCHES:
                page = customers.list_customers(actor, search=term)
                median, p95 = timed(lambda a=actor, t=term: customers.list_customers(
                    a, search=t), RUNS)
                ok = p95 < SEARCH_BUDGET_MS
                if budgeted:
                    failed |= not ok
                verdict = ("PASS" if ok else "FAIL") if budgeted else "(info)"
                print(f"   {label:<10} search={term!r:<14} {page.total:>6} matches  "
                      f"median {median:6.1f} ms  p95 {p95:6.1f} ms  {verdict}")

        print(f"\n2. CSV import of {IMPORT_ROWS:,} rows (budget {IMPORT_BUDGET_S:.0f} s)")
        content = import_csv(mitra)
        imports._enqueue = lambda task, job_id: None  # in-process: no Celery
        phases = []
        t = time.perf_counter()
        job = imports.upload_import(admin, "bench.csv", content)
        phases.append(("upload (check, parse, store)", time.perf_counter() - t))
        t = time.perf_counter()
        imports.validate_job(job.id)
        phases.append(("validate", time.perf_counter() - t))
        t = time.perf_counter()
        imports.confirm_import(admin, job.id)
        result = imports.run_job(job.id)
        phases.append(("confirm + insert", time.perf_counter() - t))
        view = imports.get_import(admin, job.id)
        total = sum(seconds for _, seconds in phases)
        for label, seconds in phases:
            print(f"   {label:<30} {seconds:6.2f} s")
        ok = (total < IMPORT_BUDGET_S and view.status == ImportStatus.DONE
              and view.imported_rows == IMPORT_ROWS)
        failed |= not ok
        print(f"   {'total':<30} {total:6.2f} s  ({view.imported_rows:,} imported, "
              f"status {result['status']})  {'PASS' if ok else 'FAIL'}")
    finally:
        fn_db.set_engine(None)
        if engine is not None:
            engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("\nFAIL" if failed else "\nPASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
