"""Benchmark: the monthly prepaid billing run on PostgreSQL at 100,000 subscribers.

Creates its own database (dropped at the end), migrates it, bulk-loads 200 mitra
and 100,000 subscribers with COPY (the loader of ``customers_bench.py``; 2% of
them isolated) and 12 months of invoice history (1.2 million invoices, one
``INSERT … SELECT`` over ``generate_series``), then times in-process:

1. ``billing.run_billing`` for next month's period, creating ~98,000 invoices:
   budget ``RUN_BUDGET_S`` and at most ``RATIO_BUDGET`` times a hand-written
   ``INSERT … SELECT … ON CONFLICT DO NOTHING`` doing the same work on the same
   data, measured in the same process: ``ROUNDS`` alternating rounds, best of each
   (the period's invoices are deleted, the table vacuumed and a checkpoint taken
   before every measured insert, so all start from the same state);
2. the same run again, creating nothing: budget ``RERUN_BUDGET_S``;
3. for information, ``preview_billing`` (the confirm dialog's counts) and one day of
   the scheduled run (one billing day, ~3,500 invoices).

Run: ``.venv/bin/python bench/billing_bench.py`` (PostgreSQL on 127.0.0.1:5432, user
postgres, trust; override with ``BENCH_PG_ADMIN_URL``). Exits 1 when a budget is
missed.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench.common import MITRA, SUBSCRIBERS, bench_database, finish  # noqa: E402
from fibernode import clock  # noqa: E402
from fibernode.services import billing  # noqa: E402

HISTORY_MONTHS = 12
RUN_BUDGET_S = 10.0
RATIO_BUDGET = 1.5
RERUN_BUDGET_S = 3.0
# Measured rounds of the monthly run and the hand-written insert, alternating; the
# best of each is compared (the least disturbed by whatever else the machine does).
ROUNDS = 2

# A 32-character URL-safe token (192 bits) from gen_random_uuid(), the same shape as
# the service's tokens.
RECEIPT_KEY_SQL = ("rtrim(translate(encode(substr(uuid_send(gen_random_uuid()) || "
                   "uuid_send(gen_random_uuid()), 1, 24), 'base64'), '+/', '-_'), '=')")

# 12 past periods for every subscriber, all paid but the latest (that one open). Ids
# are time-ordered like the service's (UUIDv7 of the month's run), so the primary key
# index looks like one the service has been filling for a year. Filler bytes come from
# random(): cheap, and only their shape matters here.
HISTORY_SQL = """
INSERT INTO invoices (id, customer_id, owner_id, period, amount, discount, total_amount,
                      paid_amount, status, paid_at, due_date, receipt_token, version,
                      created_at, updated_at)
SELECT encode(overlay(decode(md5(random()::text), 'hex') PLACING
                      substr(int8send((extract(epoch FROM m.month - interval '1 month')
                                       * 1000)::bigint), 3) FROM 1 FOR 6), 'hex')::uuid,
       c.id, c.owner_id, to_char(m.month, 'YYYY-MM'), p.price, c.discount,
       p.price - c.discount,
       CASE WHEN m.month < %(latest)s THEN p.price - c.discount ELSE 0 END,
       CASE WHEN m.month < %(latest)s THEN 'paid' ELSE 'unpaid' END::payment_status,
       CASE WHEN m.month < %(latest)s THEN m.month - interval '20 days' END,
       (m.month - interval '1 month' + (c.billing_date - 1) * interval '1 day')::date,
       rtrim(translate(encode(substr(decode(md5(random()::text) || md5(random()::text), 'hex'),
                                     1, 24), 'base64'), '+/', '-_'), '='), 1,
       m.month - interval '1 month', m.month - interval '1 month'
FROM customers c
JOIN packages p ON p.id = c.package_id
CROSS JOIN generate_series(%(first)s::date, %(latest)s::date, interval '1 month') AS m(month)
"""

# What a developer would write by hand for one period: the reference for the service.
HAND_WRITTEN_SQL = """
INSERT INTO invoices (id, customer_id, owner_id, period, amount, discount, total_amount,
                      paid_amount, status, due_date, receipt_token, version, created_at,
                      updated_at)
SELECT gen_random_uuid(), c.id, c.owner_id, %(period)s, p.price, c.discount,
       p.price - c.discount, 0, 'unpaid', make_date(%(year)s, %(month)s, c.billing_date),
       """ + RECEIPT_KEY_SQL + """, 1, now(), now()
FROM customers c
JOIN packages p ON p.id = c.package_id
WHERE c.status = 'active' AND c.register_date < make_date(%(year)s, %(month)s, c.billing_date)
ON CONFLICT (customer_id, period) DO NOTHING
"""


def month_start(period: str) -> date:
    """The first day of a ``YYYY-MM`` period."""
    year, month = billing.parse_period(period)
    return date(year, month, 1)


def load_history(conninfo: str, target: str) -> int:
    """The 12 periods before ``target`` for every subscriber; returns the invoice count.

    The secondary indexes and the constraints are dropped for the load and made
    again afterwards (sorting once is much faster than 1.2 million random index
    insertions, one join faster than 1.2 million foreign key lookups); only the
    primary key, which other tables' foreign keys need, stays.
    """
    latest = date(*_shift(*billing.parse_period(target), -1), 1)
    first = date(*_shift(latest.year, latest.month, -(HISTORY_MONTHS - 1)), 1)
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'invoices'::regclass AND contype IN ('f', 'u')").fetchall()
        indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = 'invoices'::regclass AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "                WHERE c.conindid = i.indexrelid)").fetchall()
        for constraint, _definition in constraints:
            conn.execute(f'ALTER TABLE invoices DROP CONSTRAINT "{constraint}"')
        for index, _definition in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        conn.execute(HISTORY_SQL, {"first": first, "latest": latest})
        for _index, definition in indexes:
            conn.execute(definition)
        for constraint, definition in constraints:
            conn.execute(f'ALTER TABLE invoices ADD CONSTRAINT "{constraint}" {definition}')
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE invoices")
        return conn.execute("SELECT count(*) FROM invoices").fetchone()[0]


def _shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + delta
    return index // 12, index % 12 + 1


def reset_period(conninfo: str, period: str) -> None:
    """Delete ``period``'s invoices, vacuum and checkpoint.

    Every measured insert then starts from the same state, including right after a
    checkpoint (the first change to each page after one writes the whole page to
    the WAL, a large part of an insert's cost here).
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM invoices WHERE period = %s", (period,))
        conn.execute("VACUUM ANALYZE invoices")
        conn.execute("CHECKPOINT")


def hand_written(conninfo: str, period: str) -> tuple[float, int]:
    """Seconds (statement + commit) and rows of the hand-written insert."""
    due_year, due_month = _shift(*billing.parse_period(period), -1)
    with psycopg.connect(conninfo) as conn:
        t0 = time.perf_counter()
        cur = conn.execute(HAND_WRITTEN_SQL, {"period": period, "year": due_year,
                                              "month": due_month})
        conn.commit()
        return time.perf_counter() - t0, cur.rowcount


def timed_once(fn):
    """Seconds and result of one call."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> int:
    """Run the benchmark; returns the process exit code."""
    failed = False
    today = clock.today()
    target = billing.period_after(today)  # next month: the usual manual run
    with bench_database(random.Random(7)) as db:
        conninfo, admin, t_subs = db.conninfo, db.admin, db.setup_seconds
        t0 = time.perf_counter()
        history = load_history(conninfo, target)
        print(f"setup: {MITRA} mitra, {SUBSCRIBERS:,} subscribers in {t_subs:.1f} s; "
              f"{history:,} invoices of history ({HISTORY_MONTHS} periods before {target}) "
              f"in {time.perf_counter() - t0:.1f} s")

        # Warm-up (not measured): the same insert once, so that every measured insert
        # below finds the table in the same state (the period deleted and vacuumed).
        warm, expected = hand_written(conninfo, target)
        print(f"   warm-up hand-written insert: {warm:.2f} s, {expected:,} rows")

        print(f"\n1. run_billing(period={target}) for every owner, against the hand-written "
              f"insert\n   (budget {RUN_BUDGET_S:.0f} s and {RATIO_BUDGET}x; best of "
              f"{ROUNDS} alternating rounds)")
        service_times, hand_times = [], []
        results = []
        t_rerun, again = 0.0, None
        for round_no in range(ROUNDS):
            reset_period(conninfo, target)
            t_run, result = timed_once(
                lambda: billing.run_billing(admin, period=target, today=today))
            service_times.append(t_run)
            results.append(result)
            if round_no == 0:
                t_rerun, again = timed_once(
                    lambda: billing.run_billing(admin, period=target, today=today))
            reset_period(conninfo, target)
            t_hand, rows = hand_written(conninfo, target)
            hand_times.append(t_hand)
            print(f"   round {round_no + 1}: service {t_run:6.2f} s "
                  f"({result.created:,} created), hand-written {t_hand:6.2f} s ({rows:,} rows)")
        best, best_hand = min(service_times), min(hand_times)
        ratio = best / best_hand
        ok_count = all(r.created == expected for r in results)
        ok_run = ok_count and best < RUN_BUDGET_S and ratio <= RATIO_BUDGET
        failed |= not ok_run
        print(f"   best: service {best:.2f} s, hand-written {best_hand:.2f} s, ratio "
              f"{ratio:.2f}; skipped {dict(results[0].skipped)}"
              f"{'' if ok_count else f'; expected {expected:,} created'}  "
              f"{'PASS' if ok_run else 'FAIL'}")

        print(f"\n2. the same run again, creating nothing (budget {RERUN_BUDGET_S:.0f} s)")
        ok_rerun = (t_rerun < RERUN_BUDGET_S and again.created == 0
                    and again.already_existed == expected)
        failed |= not ok_rerun
        print(f"   service        {t_rerun:6.2f} s  created {again.created:,}, already "
              f"existed {again.already_existed:,}  {'PASS' if ok_rerun else 'FAIL'}")

        t_preview, preview = timed_once(
            lambda: billing.preview_billing(admin, period=target, today=today))
        print(f"   preview_billing (info): {t_preview:.2f} s, would create "
              f"{preview.created:,}, already existed {preview.already_existed:,}")

        # One scheduled day, for information: the H-1 run before the 15th of the
        # month after next (a period nobody has yet, so it really inserts).
        run_date = month_start(billing.period_after(month_start(target))) + timedelta(days=13)
        t_day, day = timed_once(lambda: billing.scheduled_run(today=run_date))
        print(f"\n3. scheduled_run(today={run_date}) (info): {t_day:.2f} s, created "
              f"{day.created:,} for {', '.join(day.periods)}")
    return finish(failed)


if __name__ == "__main__":
    sys.exit(main())
