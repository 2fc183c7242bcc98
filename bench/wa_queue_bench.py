"""Benchmark: the WhatsApp queue on PostgreSQL at production size.

Creates its own database (dropped at the end), migrates it, bulk-loads 200 mitra and
100,000 subscribers with COPY (the loader of ``customers_bench.py``), then times
in-process:

1. ``wa_queue.enqueue_reminders`` for 2,500 subscribers across 5 owners (500 each,
   open invoices due tomorrow): reading them, rendering 2,500 reminders from the
   templates, staggering them per session and inserting them. ``ROUNDS`` runs, the
   queue emptied between them; budget ``ENQUEUE_BUDGET_S`` on the slowest.
2. The worker's claim query (lock the next ready session with ``FOR UPDATE SKIP
   LOCKED``, select its first due message) with 100,000 pending messages over the
   200 mitra's connected sessions (about half of them due) plus 100,000 sent ones as
   history: budget ``CLAIM_BUDGET_MS`` on the p95. For information, the whole claim
   (``wa_queue.claim_next``: the query, marking the message ``sending``, advancing
   the session's pacing, commit), ``CLAIMS`` per round, each taking another session
   (one with a message in flight is never claimed), reset between rounds.

Run: ``.venv/bin/python bench/wa_queue_bench.py`` (PostgreSQL on 127.0.0.1:5432, user
postgres, trust; override with ``BENCH_PG_ADMIN_URL``). Exits 1 when a budget is missed.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench.common import bench_database, finish, percentiles  # noqa: E402
from fibernode import clock  # noqa: E402
from fibernode.db import new_session  # noqa: E402
from fibernode.services import wa_queue  # noqa: E402
from fibernode.services.wa_throttle import RateConfig  # noqa: E402

ENQUEUE_OWNERS = 5
ENQUEUE_BUDGET_S = 1.0
ROUNDS = 5
PER_SESSION = 500  # pending messages per session: 200 x 500 = 100,000
CLAIMS = 150
CLAIM_ROUNDS = 3
CLAIM_BUDGET_MS = 5.0
# The bench is about the database work, not about waiting for quiet hours to end.
CONFIG = RateConfig(quiet_start="", quiet_end="")

INVOICES_SQL = """
INSERT INTO invoices (id, customer_id, owner_id, period, amount, discount, total_amount,
                      paid_amount, status, due_date, receipt_token, version, created_at,
                      updated_at)
SELECT gen_random_uuid(), c.id, c.owner_id, %(period)s, c.total_bill + c.discount,
       c.discount, c.total_bill, 0, 'unpaid', %(due)s, md5(random()::text), 1, now(), now()
FROM customers c WHERE c.owner_id = ANY(%(owners)s)
"""

SESSIONS_SQL = """
INSERT INTO wa_sessions (id, user_id, status, link_expired, batch_count, hour_count,
                         day_count, created_at, updated_at)
SELECT gen_random_uuid(), u.id, 'connected', false, 0, 0, 0, now(), now()
FROM users u WHERE u.role = 'mitra'
ON CONFLICT (user_id) DO NOTHING;
UPDATE wa_sessions SET status = 'connected', next_send_at = NULL;
"""

# Per session: PER_SESSION pending messages 15 s apart starting an hour ago (so ~240 are
# due), and as many already sent the day before (history the claim must not trip over).
QUEUE_SQL = """
INSERT INTO wa_message_queue (id, session_id, owner_id, message_type, phone, content,
                              priority, status, retry_count, max_retries, scheduled_at,
                              sent_at, idempotency_key, created_at, updated_at)
SELECT gen_random_uuid(), s.id, s.user_id, 'custom', '62811' || lpad(g::text, 8, '0'),
       'Pesan uji antrian', 0, st.status, 0, 3,
       CASE WHEN st.status = 'pending' THEN now() - interval '1 hour' + g * interval '15 s'
            ELSE now() - interval '1 day' + g * interval '15 s' END,
       CASE WHEN st.status = 'sent' THEN now() - interval '1 day' + g * interval '15 s' END,
       'bench:' || st.status || ':' || s.id || ':' || g, now(), now()
FROM wa_sessions s
CROSS JOIN generate_series(0, %(per_session)s - 1) AS g
CROSS JOIN (VALUES ('pending'), ('sent')) AS st(status)
"""

RESET_SQL = """
UPDATE wa_message_queue SET status = 'pending', claimed_at = NULL, claimed_by = NULL
WHERE status = 'sending';
UPDATE wa_sessions SET next_send_at = NULL, batch_count = 0, hour_started_at = NULL,
       hour_count = 0, day_date = NULL, day_count = 0;
"""


def bench_enqueue(db, conn: psycopg.Connection) -> tuple[list[float], int]:
    """Seconds of each enqueue run and how many reminders one run queued."""
    # Owners 1..5 of the loader: none of their subscribers is isolated (i % 50 == 0).
    owners = [uid for uid, _ in db.mitra[1:1 + ENQUEUE_OWNERS]]
    today = clock.today()
    tomorrow = today + timedelta(days=1)
    conn.execute(INVOICES_SQL, {"period": "2099-01", "due": tomorrow, "owners": owners})
    conn.execute("ANALYZE invoices")
    conn.commit()
    seconds, enqueued = [], 0
    for _ in range(ROUNDS):
        conn.execute("DELETE FROM wa_message_queue")
        conn.commit()
        t0 = time.perf_counter()
        result = wa_queue.enqueue_reminders(db.admin, today, config=CONFIG,
                                            offsets=[-1])
        seconds.append(time.perf_counter() - t0)
        enqueued = result.enqueued
    conn.execute("DELETE FROM wa_message_queue")
    conn.commit()
    return seconds, enqueued


def bench_claim(conn: psycopg.Connection) -> tuple[list[float], list[float], int, int]:
    """Milliseconds of each claim query and of each whole claim, claims made, pending rows.

    The claim query is what a worker runs to pick its message: lock the next ready
    session (``FOR UPDATE SKIP LOCKED``) and select its first due message, measured in a
    transaction that is rolled back (same state every time). The whole claim
    (``claim_next``) also marks the message ``sending``, advances the session's pacing
    and commits; each takes another session.
    """
    conn.execute(SESSIONS_SQL)
    conn.execute(QUEUE_SQL, {"per_session": PER_SESSION})
    conn.execute("ANALYZE")
    conn.commit()
    pending = conn.execute(
        "SELECT count(*) FROM wa_message_queue WHERE status = 'pending'").fetchone()[0]
    rng = random.Random(5)
    query_ms: list[float] = []
    claim_ms: list[float] = []
    claimed = 0
    now = datetime.now(UTC)
    with new_session() as s:
        for _ in range(2 + CLAIMS * CLAIM_ROUNDS):
            t0 = time.perf_counter()
            session_id = wa_queue._lock_ready_session(s, now, set())
            message = wa_queue._first_due(s, session_id, now)
            query_ms.append((time.perf_counter() - t0) * 1000)
            s.rollback()
            assert message is not None
    query_ms = query_ms[2:]  # warm-up
    for _ in range(CLAIM_ROUNDS):
        conn.execute(RESET_SQL)
        conn.commit()
        now = datetime.now(UTC)
        for _ in range(CLAIMS):
            t0 = time.perf_counter()
            claim = wa_queue.claim_next("bench", now, CONFIG, rng)
            claim_ms.append((time.perf_counter() - t0) * 1000)
            claimed += claim is not None
    conn.execute(RESET_SQL)
    conn.commit()
    return query_ms, claim_ms, claimed, pending


def main() -> int:
    """Load, measure, print the figures; returns the exit code."""
    rng = random.Random(20260204)
    print("loading 200 mitra and 100,000 subscribers …", flush=True)
    with bench_database(rng) as db, psycopg.connect(db.conninfo) as conn:
        print(f"setup {db.setup_seconds:.1f} s")
        seconds, enqueued = bench_enqueue(db, conn)
        slowest = max(seconds)
        enqueue_ok = slowest < ENQUEUE_BUDGET_S and enqueued == 2500
        print(f"\nenqueue_reminders, {enqueued:,} reminders over {ENQUEUE_OWNERS} owners, "
              f"{ROUNDS} runs: median {sorted(seconds)[len(seconds) // 2] * 1000:.0f} ms, "
              f"slowest {slowest * 1000:.0f} ms (budget {ENQUEUE_BUDGET_S * 1000:.0f} ms) "
              f"{'PASS' if enqueue_ok else 'FAIL'}")
        query_ms, claim_ms, claimed, pending = bench_claim(conn)
        median, p95 = percentiles(query_ms)
        claim_ok = p95 < CLAIM_BUDGET_MS and claimed == len(claim_ms)
        sessions = conn.execute("SELECT count(*) FROM wa_sessions").fetchone()[0]
        print(f"claim query with {pending:,} pending rows over {sessions} sessions "
              f"(+{pending:,} sent), {len(query_ms)} runs: median {median:.2f} ms, "
              f"p95 {p95:.2f} ms (budget {CLAIM_BUDGET_MS:.0f} ms) "
              f"{'PASS' if claim_ok else 'FAIL'}")
        median, p95 = percentiles(claim_ms)
        print(f"whole claim (claim_next: query, mark sending, pacing, commit), "
              f"{len(claim_ms)} claims: median {median:.2f} ms, p95 {p95:.2f} ms "
              f"(for information)")
    return finish(not (enqueue_ok and claim_ok))


if __name__ == "__main__":
    raise SystemExit(main())
