"""What the benchmarks share: a throw-away PostgreSQL database at production size.

``bench_database()`` creates a database, migrates it, seeds the demo data and
bulk-loads 200 mitra and 100,000 subscribers with COPY; it drops the database
afterwards (kept with ``BENCH_KEEP_DB=1``). Services then run in-process on it.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("APP_ENV", "test")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from fibernode import db as fn_db  # noqa: E402
from fibernode.cli import migrate_url  # noqa: E402
from fibernode.config import reset_settings  # noqa: E402
from fibernode.models import UserRole  # noqa: E402
from fibernode.services.context import Actor  # noqa: E402
from fibernode.services.passwords import hash_password  # noqa: E402
from fibernode.services.seed import seed  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MITRA = 200
SUBSCRIBERS = 100_000

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


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and p95 of samples (in their unit)."""
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and p95 (milliseconds) of ``runs`` calls, after two warm-up calls."""
    for _ in range(2):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return percentiles(samples)


@dataclass(frozen=True)
class BenchDatabase:
    """The loaded database: a psycopg conninfo, its mitra and a superadmin actor."""

    name: str
    conninfo: str
    mitra: list[tuple[uuid.UUID, str]]
    admin: Actor
    setup_seconds: float


@contextmanager
def bench_database(rng: random.Random) -> Iterator[BenchDatabase]:
    """A migrated, seeded database with 200 mitra and 100,000 subscribers, then dropped."""
    name = f"fibernode_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(ADMIN_URL, name)
    conninfo = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = None
    try:
        t0 = time.perf_counter()
        migrate_url(url)
        reset_settings()
        engine = fn_db.create_engine_for(url)
        fn_db.set_engine(engine)
        seed(Actor.system("seed"), demo=True)
        mitra = bulk_load(conninfo, rng)
        with psycopg.connect(conninfo) as conn:
            admin_id = conn.execute(
                "SELECT id FROM users WHERE role = 'superadmin'").fetchone()[0]
        admin = Actor(user_id=admin_id, role=UserRole.SUPERADMIN, name="bench")
        yield BenchDatabase(name, conninfo, mitra, admin, time.perf_counter() - t0)
    finally:
        fn_db.set_engine(None)
        if engine is not None:
            engine.dispose()
        if os.environ.get("BENCH_KEEP_DB"):
            print(f"\nkept database {name} (BENCH_KEEP_DB)")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def finish(failed: bool) -> int:
    """Print the overall verdict; returns the process exit code."""
    print("\nFAIL" if failed else "\nPASS")
    return 1 if failed else 0
