"""Benchmark: the finance figures and exports on PostgreSQL at 1.2 million invoices.

Creates its own database (dropped at the end), migrates it and loads the data of
``payments_bench.py`` with its loaders: 200 mitra, 100,000 subscribers and 12 months
of invoices per subscriber (1.2 million) with their ``payments`` ledger rows; then
pays 90% of the running month's invoices already due, reverses ``REVERSALS`` of last
month's payments this month (so revenue has reversals to subtract) and runs the
nightly revenue roll-up, all in a child process (the timings then run in a process
that loaded nothing, like a server started on existing data). It times, in-process
on the calling side:

1. the superadmin dashboard figures: ``dashboard.overview`` (the headline figures,
   the 12-month series and the due list in one session), ``RUNS`` runs: budget
   ``ADMIN_BUDGET_MS`` on the p95 **and** at most ``RATIO_BUDGET`` times the same
   figures read with hand-written SQL through psycopg (the statements below),
   timed in the same run, alternating one call of each; their results must be
   equal, and the medians are compared;
2. a mitra's dashboard (the same call): budget ``MITRA_BUDGET_MS`` on the p95;
3. a one-year XLSX recap of all owners (``finance_files.write_recap`` from 1 January
   to 31 December of the loaded year, to a temporary file): budget
   ``RECAP_BUDGET_S``;
4. with ``--frontend``: the login page's initial JavaScript (the scripts and
   module preloads its HTML references) of this app's production build against a
   blank Reflex app's ``/`` (same Reflex, same Radix theme plugin), budget
   ``JS_RATIO_BUDGET``; for information, whether plotly's chunk is among them.

Run: ``.venv/bin/python bench/finance_bench.py [--frontend]`` (PostgreSQL on
127.0.0.1:5432, user postgres, trust; override with ``BENCH_PG_ADMIN_URL``).
``BENCH_KEEP_DB=1`` keeps the database; ``BENCH_DB=<name>`` runs again on a kept
one without loading; ``--frontend-only`` measures only the JavaScript. Exits 1 when
a budget is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import (  # noqa: E402
    ADMIN_URL,
    MITRA,
    SUBSCRIBERS,
    BenchDatabase,
    bench_database,
    finish,
    percentiles,
    sqlalchemy_url,
)
from bench.payments_bench import load_invoices  # noqa: E402
from fibernode import clock  # noqa: E402
from fibernode import db as fn_db  # noqa: E402
from fibernode.cli import migrate_url  # noqa: E402
from fibernode.config import reset_settings  # noqa: E402
from fibernode.models import UserRole  # noqa: E402
from fibernode.services.context import Actor  # noqa: E402

RUNS = 30
ADMIN_BUDGET_MS = 150.0
RATIO_BUDGET = 1.3
MITRA_BUDGET_MS = 30.0
RECAP_BUDGET_S = 30.0
JS_RATIO_BUDGET = 1.10
REVERSALS = 2_000
SERIES_MONTHS = 12
DUE_SOON_LIMIT = 50

# Reverse some of last month's full payments during this month: the ledger row is
# marked reversed and its invoice goes back to unpaid, as invoices.unpay_invoice does.
REVERSE_SQL = """
WITH picked AS (
    SELECT p.id, p.invoice_id FROM payments p JOIN invoices i ON i.id = p.invoice_id
    WHERE i.period = %(period)s AND p.reversed_at IS NULL AND i.paid_amount = i.total_amount
    ORDER BY md5(p.id::text) LIMIT %(n)s
), marked AS (
    UPDATE payments p SET reversed_at = %(at)s, reversed_by = p.recorded_by,
                          reversal_reason = 'bench'
    FROM picked WHERE p.id = picked.id RETURNING p.invoice_id
)
UPDATE invoices i SET paid_amount = 0, status = 'unpaid', paid_at = NULL, paid_by = NULL,
                      payment_method = NULL, version = i.version + 1
FROM marked WHERE i.id = marked.invoice_id
"""

# payments_bench leaves the running month open; by today most invoices already due are
# paid: 90% of them, recorded at 10:00 Jakarta on their due date (never in the future),
# so this month's revenue is read from a real share of the ledger.
PAY_CURRENT_SQL = """
WITH paid AS (
    UPDATE invoices SET paid_amount = total_amount, status = 'paid', paid_by = owner_id,
           payment_method = 'cash', version = version + 1,
           paid_at = least((due_date + time '10:00') AT TIME ZONE 'Asia/Jakarta', now())
    WHERE period = %(period)s AND due_date <= %(today)s AND paid_amount = 0
      AND abs(hashtext(id::text)) %% 10 <> 0
    RETURNING id, owner_id, total_amount, paid_at
)
INSERT INTO payments (id, invoice_id, owner_id, amount, method, recorded_by, recorded_at)
SELECT gen_random_uuid(), id, owner_id, total_amount, 'cash', owner_id, paid_at FROM paid
"""

# --- the dashboard in hand-written SQL ----------------------------------------------------
# ``{owner}`` is empty for every owner, or ``AND owner_id = %(owner)s`` for one (two
# statements rather than one generic ``IS NULL OR`` plan). Written against the same
# schema, so ended months' revenue comes from the nightly roll-up (``revenue_months``
# up to the ``revenue_closed_through`` setting) and later months from the ledger.
HEADLINE_SQL = """
SELECT c.active, c.isolated, i.n, i.billed, i.paid, i.paid_n, o.n, o.owed
FROM (SELECT count(*) FILTER (WHERE status = 'active') AS active,
             count(*) FILTER (WHERE status = 'isolated') AS isolated
      FROM customers WHERE true {owner}) c,
     (SELECT count(*) AS n, coalesce(sum(total_amount), 0) AS billed,
             coalesce(sum(paid_amount), 0) AS paid,
             count(*) FILTER (WHERE paid_amount >= total_amount) AS paid_n
      FROM invoices WHERE period = %(period)s {owner}) i,
     (SELECT count(*) AS n, coalesce(sum(total_amount - paid_amount), 0) AS owed
      FROM invoices WHERE due_date < %(today)s AND paid_amount < total_amount {owner}) o
"""
CLOSED_SQL = "SELECT value FROM settings WHERE key = 'revenue_closed_through'"
ROLLUP_SQL = """
SELECT period, sum(received) - sum(reversed) FROM revenue_months
WHERE period >= %(first)s AND period <= %(through)s {owner}
GROUP BY period
"""
# Live months as buckets of width_bucket over their boundaries (1 = the first live month).
LEDGER_SQL = """
SELECT bucket, sum(amount) FROM (
    SELECT width_bucket(recorded_at, %(bounds)s) AS bucket, amount FROM payments
    WHERE recorded_at >= %(start)s AND recorded_at < %(end)s {owner}
    UNION ALL
    SELECT width_bucket(reversed_at, %(bounds)s), -amount FROM payments
    WHERE reversed_at >= %(start)s AND reversed_at < %(end)s {owner}
) ledger GROUP BY bucket
"""
# 0 = registered before the first month, 1..12 the months.
GROWTH_SQL = """
SELECT bucket, n, sum(n) OVER (ORDER BY bucket) FROM (
    SELECT width_bucket(register_date, %(days)s) AS bucket, count(*) AS n FROM customers
    WHERE register_date < %(end_day)s {owner}
    GROUP BY 1
) g
"""
DUE_SOON_SQL = """
SELECT i.id, i.total_amount - i.paid_amount FROM invoices i
JOIN customers c ON c.id = i.customer_id
JOIN packages p ON p.id = c.package_id
JOIN users o ON o.id = i.owner_id
WHERE i.due_date >= %(today)s AND i.due_date <= %(tomorrow)s
  AND i.paid_amount < i.total_amount {owner}
ORDER BY i.due_date, lower(c.name), i.id
LIMIT %(limit)s
"""


def _months(end_period: str, count: int) -> list[str]:
    year, month = map(int, end_period.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _jakarta_start(period: str) -> datetime:
    year, month = map(int, period.split("-"))
    return datetime.combine(date(year, month, 1), dtime(), clock.JAKARTA).astimezone(UTC)


def _next_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def hand_dashboard(conn: psycopg.Connection, owner: uuid.UUID | None,
                   today: date) -> dict:
    """The dashboard's figures, series and due list with the statements above."""
    period = clock.current_period(today)
    months = _months(period, SERIES_MONTHS)
    end = _next_period(months[-1])

    def run(sql: str, args: dict, column: str = "owner_id"):
        where = "" if owner is None else f"AND {column} = %(owner)s"
        return conn.execute(sql.format(owner=where), {**args, "owner": owner})

    (active, isolated, count, billed, paid, paid_count, overdue_count,
     overdue_amount) = run(HEADLINE_SQL, {"period": period, "today": today}).fetchone()
    through = (conn.execute(CLOSED_SQL).fetchone() or [None])[0]
    revenue: dict[str, int] = {}
    if through is not None and through >= months[0]:
        revenue.update(run(ROLLUP_SQL, {"first": months[0], "through": through}).fetchall())
    live = [m for m in months if through is None or m > through]
    if live:
        bounds = [_jakarta_start(m) for m in [*live, end]]
        for bucket, amount in run(LEDGER_SQL, {"bounds": bounds, "start": bounds[0],
                                               "end": bounds[-1]}):
            revenue[live[bucket - 1]] = amount
    growth = {bucket: (n, total) for bucket, n, total in run(GROWTH_SQL, {
        "days": [date.fromisoformat(m + "-01") for m in months],
        "end_day": date.fromisoformat(end + "-01")})}
    due = [(row[0], int(row[1])) for row in run(DUE_SOON_SQL, {
        "today": today, "tomorrow": today + timedelta(days=1), "limit": DUE_SOON_LIMIT},
        "i.owner_id")]
    series, running = [], growth.get(0, (0, 0))[1]
    for bucket, month in enumerate(months, start=1):
        new, running = growth.get(bucket, (0, running))
        series.append((month, int(revenue.get(month) or 0), int(new), int(running)))
    stats = {"active_customers": active, "isolated_customers": isolated,
             "invoice_count": count, "billed": int(billed), "paid": int(paid),
             "unpaid": int(billed) - int(paid), "paid_count": paid_count,
             "unpaid_count": count - paid_count, "overdue_count": overdue_count,
             "overdue_amount": int(overdue_amount), "revenue": series[-1][1]}
    return {"stats": stats, "series": series, "due": due}


def service_dashboard(actor: Actor, today: date) -> dict:
    """The same through the services the dashboard page and the API call."""
    from fibernode.services import dashboard

    view = dashboard.overview(actor, today=today)
    stats, points, due = view.stats, view.series, view.due_soon
    return {
        "stats": {name: getattr(stats, name) for name in (
            "active_customers", "isolated_customers", "invoice_count", "billed", "paid",
            "unpaid", "paid_count", "unpaid_count", "overdue_count", "overdue_amount",
            "revenue")},
        "series": [(p.period, p.revenue, p.new_customers, p.customers_total) for p in points],
        "due": [(v.id, v.remaining) for v in due],
    }


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _report(label: str, samples: list[float], budget: float | None) -> bool:
    median, p95 = percentiles(samples)
    ok = budget is None or p95 < budget
    verdict = "(info)" if budget is None else ("PASS" if ok else "FAIL")
    print(f"   {label:<34} median {median:7.1f} ms  p95 {p95:7.1f} ms  {verdict}")
    return ok


# --- database --------------------------------------------------------------------------------


@contextmanager
def finance_database(rng: random.Random) -> Iterator[BenchDatabase]:
    """The loaded database: a new one (payments_bench's data), or ``BENCH_DB`` again."""
    name = os.environ.get("BENCH_DB")
    if not name:
        with bench_database(rng) as db:
            t0 = time.perf_counter()
            today = clock.today()
            n_invoices, n_payments = load_invoices(db.conninfo, today)
            with psycopg.connect(db.conninfo) as conn:
                reversed_ = conn.execute(REVERSE_SQL, {
                    "period": _months(clock.current_period(today), 2)[0], "n": REVERSALS,
                    "at": clock.now() - timedelta(minutes=5)}).rowcount
                paid_now = conn.execute(PAY_CURRENT_SQL, {
                    "period": clock.current_period(today), "today": today}).rowcount
                n_payments += paid_now
                conn.commit()
                conn.autocommit = True
                # Settle the bulk load before timing: every table vacuumed (so autovacuum
                # has nothing left to do meanwhile) and its dirty pages written out.
                conn.execute("VACUUM ANALYZE")
                conn.execute("CHECKPOINT")
            # Fresh pooled connections, as after a server start: the ones opened before
            # the load (indexes dropped and rebuilt under them) answer ~40% slower.
            fn_db.get_engine().dispose()
            print(f"setup: {MITRA} mitra, {SUBSCRIBERS:,} subscribers in "
                  f"{db.setup_seconds:.1f} s; {n_invoices:,} invoices, {n_payments:,} payments "
                  f"({paid_now:,} of them this month, {reversed_:,} reversed this month) in "
                  f"{time.perf_counter() - t0:.1f} s; "
                  f"database {db.name}")
            yield db
        return
    conninfo = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    url = sqlalchemy_url(ADMIN_URL, name)
    migrate_url(url)  # a database kept by an older run gets this checkout's migrations
    reset_settings()
    engine = fn_db.create_engine_for(url)
    fn_db.set_engine(engine)
    try:
        with psycopg.connect(conninfo) as conn:
            admin_id = conn.execute(
                "SELECT id FROM users WHERE role = 'superadmin'").fetchone()[0]
            mitra = conn.execute("SELECT id, business_name FROM users WHERE username LIKE "
                                 "'bench%' ORDER BY username").fetchall()
            counts = conn.execute("SELECT (SELECT count(*) FROM invoices), "
                                  "(SELECT count(*) FROM payments)").fetchone()
        print(f"reusing database {name}: {len(mitra)} mitra, {counts[0]:,} invoices, "
              f"{counts[1]:,} payments")
        admin = Actor(user_id=admin_id, role=UserRole.SUPERADMIN, name="bench")
        yield BenchDatabase(name, conninfo, mitra, admin, 0.0)
    finally:
        fn_db.set_engine(None)
        engine.dispose()


def close_months() -> None:
    """Roll up the ended months of the ledger, as the nightly job has done in production."""
    from fibernode.services import revenue_months

    t0 = time.perf_counter()
    done = revenue_months.close_months(Actor.system("bench"))
    print(f"nightly revenue roll-up: {done['months']} months, {done['rows']} rows in "
          f"{time.perf_counter() - t0:.1f} s")


def bench_dashboards(db: BenchDatabase) -> bool:
    """Budgets 1 and 2; returns True when all passed."""
    ok = True
    today = clock.today()
    mitra_id, business = db.mitra[117]
    mitra = Actor(user_id=mitra_id, role=UserRole.MITRA, name=business)
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        print(f"\n1. superadmin dashboard: dashboard.overview ({RUNS} runs, "
              f"budget {ADMIN_BUDGET_MS:.0f} ms on the p95 and {RATIO_BUDGET}x hand-written "
              "SQL on the median)")
        service = service_dashboard(db.admin, today)
        hand = hand_dashboard(conn, None, today)
        same = service == hand
        if not same:
            for key in service:
                if service[key] != hand[key]:
                    print(f"   MISMATCH {key}:\n     service {service[key]}\n"
                          f"     SQL     {hand[key]}")
        ok &= same
        print(f"   results equal: {'yes' if same else 'NO'}  ({service['stats']['invoice_count']:,}"
              f" invoices this month, {len(service['due'])} due soon)")
        for _ in range(2):
            service_dashboard(db.admin, today)
            hand_dashboard(conn, None, today)
        svc, sql = [], []
        for _ in range(RUNS):  # alternating, so both see the same machine
            svc.append(_time(lambda: service_dashboard(db.admin, today)))
            sql.append(_time(lambda: hand_dashboard(conn, None, today)))
        ok &= _report("services (in-process)", svc, ADMIN_BUDGET_MS)
        _report("hand-written SQL (psycopg)", sql, None)
        ratio = percentiles(svc)[0] / percentiles(sql)[0]
        ratio_ok = ratio <= RATIO_BUDGET
        ok &= ratio_ok
        print(f"   ratio of medians {ratio:.2f}x  {'PASS' if ratio_ok else 'FAIL'}")
        print(f"   ratio of p95s    {percentiles(svc)[1] / percentiles(sql)[1]:.2f}x  (info)")
        _parts(db.admin, today)

        print(f"\n2. mitra dashboard ({business}, {RUNS} runs, budget "
              f"{MITRA_BUDGET_MS:.0f} ms on the p95)")
        service = service_dashboard(mitra, today)
        hand = hand_dashboard(conn, mitra_id, today)
        same = service == hand
        ok &= same
        print(f"   results equal to hand-written SQL: {'yes' if same else 'NO'}")
        svc, sql = [], []
        for _ in range(2):
            service_dashboard(mitra, today)
        for _ in range(RUNS):
            svc.append(_time(lambda: service_dashboard(mitra, today)))
            sql.append(_time(lambda: hand_dashboard(conn, mitra_id, today)))
        ok &= _report("services (in-process)", svc, MITRA_BUDGET_MS)
        _report("hand-written SQL (psycopg)", sql, None)
        _parts(mitra, today)
    return ok


def _parts(actor: Actor, today: date) -> None:
    """For information: each of the three calls on its own."""
    from fibernode.services import dashboard, finance

    for label, fn in (("  dashboard_stats", lambda: dashboard.dashboard_stats(actor, on=today)),
                      ("  finance.series", lambda: finance.series(actor)),
                      ("  due_soon", lambda: dashboard.due_soon(actor, today=today))):
        fn()
        _report(label, [_time(fn) for _ in range(10)], None)


def bench_recap(db: BenchDatabase) -> bool:
    """Budget 3; returns True when it passed."""
    from fibernode.services import finance_files

    year = clock.today().year
    start, end = date(year, 1, 1), date(year, 12, 31)
    with psycopg.connect(db.conninfo) as conn:
        expected = conn.execute("SELECT count(*) FROM invoices WHERE due_date BETWEEN %s AND %s",
                                (start, end)).fetchone()[0]
    print(f"\n3. one-year XLSX recap of all owners ({start} to {end}, {expected:,} invoices, "
          f"budget {RECAP_BUDGET_S:.0f} s)")
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        rows = finance_files.write_recap(db.admin, out, start=start, end=end, fmt="xlsx")
        elapsed = time.perf_counter() - t0
        size = out.seek(0, os.SEEK_END)
    ok = elapsed < RECAP_BUDGET_S
    print(f"   {rows:,} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s  "
          f"{'PASS' if ok else 'FAIL'}")
    if rows != expected:
        print(f"   row count {rows:,} differs from the invoices in range ({expected:,})")
    from fibernode.services import finance

    t0 = time.perf_counter()
    read = sum(1 for _ in finance.recap_records(db.admin, start, end))
    print(f"   of which reading the rows: finance.recap_records alone takes "
          f"{time.perf_counter() - t0:.1f} s for {read:,}  (info)")
    return ok


# --- frontend ------------------------------------------------------------------------------

BLANK_RXCONFIG = """import reflex as rx

config = rx.Config(
    app_name="blank",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(
        theme=rx.theme(accent_color="blue", gray_color="slate", radius="large",
                       appearance="inherit", has_background=False))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
"""
# Reflex's own blank template page (``reflex init``), trimmed of the docs link.
BLANK_APP = """import reflex as rx


class State(rx.State):
    pass


def index() -> rx.Component:
    return rx.container(
        rx.color_mode.button(position="top-right"),
        rx.vstack(rx.heading("Welcome to Reflex!", size="9"),
                  rx.text("Get started by editing ", rx.code("blank/blank.py"), size="5"),
                  rx.button("Check out our docs!"), spacing="5", justify="center",
                  min_height="85vh"),
    )


app = rx.App()
app.add_page(index)
"""
ASSET_RE = re.compile(r"""(?:src|href)=["']([^"']+\.m?js)["']|import\(?\s*["']([^"']+\.m?js)["']""")


def _export(app_dir: Path, env: dict[str, str]) -> Path:
    """``reflex export --frontend-only --no-zip --env prod`` in ``app_dir``; its client dir."""
    t0 = time.perf_counter()
    proc = subprocess.run(  # noqa: S603 - fixed arguments, our own venv's reflex
        [str(ROOT / ".venv" / "bin" / "reflex"), "export", "--frontend-only", "--no-zip",
         "--env", "prod", "--loglevel", "warning"],
        cwd=app_dir, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"reflex export failed in {app_dir}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    client = app_dir / ".web" / "build" / "client"
    print(f"   built {app_dir.name} in {time.perf_counter() - t0:.0f} s")
    return client


def _page_html(client: Path, route: str) -> Path:
    for candidate in (client / route / "index.html", client / f"{route}.html",
                      client / "index.html"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no HTML for /{route} under {client}")


def initial_js(client: Path, route: str) -> tuple[int, list[str]]:
    """Bytes of the JavaScript a page's HTML loads up front (scripts and module preloads)."""
    html = _page_html(client, route).read_text()
    names = sorted({a or b for a, b in ASSET_RE.findall(html)})
    total = 0
    for name in names:
        path = client / name.lstrip("/")
        if path.is_file():
            total += path.stat().st_size
    return total, names


def _build_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "APP_ENV": "development", "FIBERNODE_DATA_DIR": str(data_dir),
        "REFLEX_USE_SYSTEM_BUN": "1", "REFLEX_TELEMETRY_ENABLED": "false",
        "PATH": f"{ROOT / '.tools' / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


def bench_frontend(verbose: bool = False) -> bool:
    """Budget 4: builds both apps in a temporary directory (minutes); True when it passed."""
    print(f"\n4. login page initial JavaScript vs a blank Reflex app (budget "
          f"{JS_RATIO_BUDGET:.2f}x)")
    with tempfile.TemporaryDirectory(prefix="fibernode-js-") as tmp:
        tmp_path = Path(tmp)
        env = _build_env(tmp_path / "data")
        # A copy of the app, so a build never disturbs the checkout's .web.
        app_dir = tmp_path / "fibernode-app"
        app_dir.mkdir()
        for name in ("rxconfig.py", "pyproject.toml", "alembic.ini"):
            shutil.copy2(ROOT / name, app_dir / name)
        for name in ("fibernode", "assets", "reflex.lock", "alembic"):
            shutil.copytree(ROOT / name, app_dir / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        blank_dir = tmp_path / "blank"
        (blank_dir / "blank").mkdir(parents=True)
        (blank_dir / "rxconfig.py").write_text(BLANK_RXCONFIG)
        (blank_dir / "blank" / "__init__.py").write_text("")
        (blank_dir / "blank" / "blank.py").write_text(BLANK_APP)
        shutil.copytree(ROOT / "reflex.lock", blank_dir / "reflex.lock")
        app_env = dict(env, PYTHONPATH=str(app_dir))
        app_client = _export(app_dir, app_env)
        blank_client = _export(blank_dir, dict(env, PYTHONPATH=str(blank_dir)))
        login, login_files = initial_js(app_client, "login")
        blank, blank_files = initial_js(blank_client, "")
        plotly = sorted(p.name for p in (app_client / "assets").glob("*.js")
                        if "plotly" in p.name.lower())
        in_login = [name for name in login_files if any(p in name for p in plotly)]
        if verbose:
            for label, client, files in (("/login", app_client, login_files),
                                         ("blank /", blank_client, blank_files)):
                print(f"   {label}:")
                for name in files:
                    path = client / name.lstrip("/")
                    size = path.stat().st_size if path.is_file() else 0
                    print(f"     {size / 1024:8.1f} KiB  {name}")
    ratio = login / blank if blank else float("inf")
    ok = ratio <= JS_RATIO_BUDGET
    print(f"   /login: {len(login_files)} files, {login / 1024:.1f} KiB; blank /: "
          f"{len(blank_files)} files, {blank / 1024:.1f} KiB")
    print(f"   ratio {ratio:.3f}x  {'PASS' if ok else 'FAIL'}")
    print(f"   plotly chunks in the build: {', '.join(plotly) or 'none found'}; referenced by "
          f"/login: {'yes: ' + ', '.join(in_login) if in_login else 'no'}  (info)")
    return ok


def main() -> int:
    """Run the benchmark; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frontend", action="store_true",
                        help="also compare the login page's JavaScript (builds two apps)")
    parser.add_argument("--frontend-only", action="store_true",
                        help="only compare the JavaScript (no database)")
    parser.add_argument("--verbose", action="store_true",
                        help="list the JavaScript files of both pages")
    parser.add_argument("--load-only", action="store_true",
                        help="load the database and stop (with BENCH_KEEP_DB=1)")
    args = parser.parse_args()
    failed = False
    print("load average at start: {:.1f} {:.1f} {:.1f} on {} cores (other work skews timings)"
          .format(*os.getloadavg(), os.cpu_count()))
    loaded_here = None
    if not (args.frontend_only or args.load_only or os.environ.get("BENCH_DB")):
        loaded_here = load_in_subprocess()
        os.environ["BENCH_DB"] = loaded_here
    try:
        if not args.frontend_only:
            rng = random.Random(11)
            with finance_database(rng) as db:
                close_months()
                if args.load_only:
                    Path(os.environ.get("BENCH_DB_FILE", os.devnull)).write_text(db.name)
                else:
                    failed |= not bench_dashboards(db)
                    failed |= not bench_recap(db)
        if args.frontend or args.frontend_only:
            failed |= not bench_frontend(args.verbose)
    finally:
        if loaded_here:
            if os.environ.get("BENCH_KEEP_DB"):
                print(f"\nkept database {loaded_here} (BENCH_KEEP_DB)")
            else:
                with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{loaded_here}" WITH (FORCE)')
    print("\nload average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return finish(failed)


def load_in_subprocess() -> str:
    """Load a new database in a child process and return its name.

    The timings then run in a process that did not do the loading, like a server
    started on existing data: measured in the loading process itself, the services
    answered up to 1.5x slower (the hand-written SQL did not).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".name") as name_file:
        env = dict(os.environ, BENCH_KEEP_DB="1", BENCH_DB_FILE=name_file.name)
        proc = subprocess.run(  # noqa: S603 - this very script, fixed arguments
            [sys.executable, __file__, "--load-only"], env=env, stdout=subprocess.PIPE,
            text=True, check=False)
        lines = [line for line in proc.stdout.splitlines()
                 if line.startswith(("setup:", "nightly"))]
        print("\n".join(lines))
        name = Path(name_file.name).read_text().strip()
    if proc.returncode != 0 or not name:
        raise RuntimeError(f"loading failed:\n{proc.stdout[-3000:]}")
    return name


if __name__ == "__main__":
    sys.exit(main())
