"""A job that cannot be queued fails visibly, at once, whichever thread asked for it.

Each use case runs in a fresh web-like process (the Reflex app imported as ``reflex
run`` does) on its own thread, like the web app's executor, with ``REDIS_URL`` on a
closed port: the broker refuses every send. Before the fix, only the thread that first
imported the Celery app used it (and waited ~19 s for Redis before failing the job);
every other thread sent to Celery's built-in app and its job stayed pending forever.
"""

from __future__ import annotations

import json
import socket

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import FileJob, ImportJob, PaymentProof
from fibernode.services import filejobs, imports, invoices, payment_proofs
from tests.conftest import REDIS_URL
from tests.factories import World
from tests.services.invoice_data import make_invoice
from tests.workers.test_celery_app import project_env, run_python

pytestmark = pytest.mark.timeout(180)

# A user waits for the answer: a refused send must fail the job within this.
FAIL_WITHIN_SECONDS = 5

USE_CASES_WITH_THE_BROKER_DOWN = """
import json, sys, threading, time
from datetime import date

import fibernode.fibernode  # the web app, as `reflex run` loads it
from fibernode.services import finance_files, imports, payment_proofs, receipts
from tests.factories import actor_for
from tests.services import proof_image_data as gen

invoice_id, period, first, last = sys.argv[1:]
mitra, admin = actor_for("mitra1"), actor_for("superadmin")
rows = ["nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
        "tanggal_register"] + [
    f"Pelanggan {i},0813{i:08d},0,{i % 28 + 1},WiFi Sukamaju,Paket 10 Mbps,100000,100000,,"
    "2025-01-01" for i in range(imports.SYNC_ROWS + 1)]
use_cases = {
    "recap": lambda: finance_files.start_recap(
        mitra, start=date.fromisoformat(first), end=date.fromisoformat(last), fmt="csv"),
    "bundle": lambda: receipts.start_receipt_bundle(
        mitra, owner_id=mitra.user_id, period=period),
    "proof": lambda: payment_proofs.attach_proof(
        mitra, invoice_id, gen.encode(gen.photographed_slip()), "slip.jpg"),
    "import": lambda: imports.upload_import(admin, "besar.csv", "\\n".join(rows).encode()),
}
out = {}

def run(name):
    started = time.monotonic()
    job = use_cases[name]()
    out[name] = {"id": str(job.id), "seconds": time.monotonic() - started}

for name in use_cases:  # each request on a thread of its own
    thread = threading.Thread(target=run, args=(name,))
    thread.start()
    thread.join()
print(json.dumps(out))
"""


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_job_that_cannot_be_queued_fails_at_once_with_its_message(pg, pg_database,
                                                                    tmp_path):
    world = World.seeded()
    period = clock.current_period()
    paid = make_invoice("Dewi Lestari", period)
    invoices.pay_invoice(world.mitra_a, paid.id, version=1, method="transfer")
    first = clock.period_start(period)
    env = project_env(tmp_path, f"redis://127.0.0.1:{closed_port()}/15",
                      DATABASE_URL=pg_database, UPLOADS_DIR=str(tmp_path / "uploads"))

    out, log = run_python(USE_CASES_WITH_THE_BROKER_DOWN, env, str(paid.id), period,
                          first.isoformat(), clock.today().isoformat())
    jobs = json.loads(out)

    assert set(jobs) == {"recap", "bundle", "proof", "import"}
    for name in ("recap", "bundle"):
        view = filejobs.get_file_job(world.mitra_a, jobs[name]["id"])
        assert (view.status, view.error, view.is_running) == (
            "failed", filejobs.ENQUEUE_FAILED, False)
    proof = payment_proofs.get_proof(world.mitra_a, jobs["proof"]["id"])
    assert (proof.status, proof.reject_reason) == ("failed", payment_proofs.ENQUEUE_FAILED)
    assert proof.steps[-1].step == "enqueue" and "OperationalError" in proof.steps[-1].detail
    upload = imports.get_import(world.admin, jobs["import"]["id"])
    assert (upload.status, upload.error, upload.is_running) == (
        "failed", imports.ENQUEUE_FAILED, False)
    with new_session() as s:  # nothing left waiting for a worker
        for model in (FileJob, PaymentProof, ImportJob):
            assert set(s.exec(select(model.status)).all()) == {"failed"}, model
        assert s.exec(select(sa.func.count()).select_from(FileJob)).one() == 2
    assert log.count("cannot queue background job") == 4
    for name, job in jobs.items():
        assert job["seconds"] < FAIL_WITHIN_SECONDS, (name, job)


def test_a_process_without_the_workers_app_fails_a_job_at_once_instead_of_losing_it(world):
    from fibernode.services import finance_files, jobqueue

    previous = jobqueue.install_sender(None)
    try:
        job = finance_files.start_recap(world.mitra_a, start=clock.today(),
                                        end=clock.today(), fmt="csv")
    finally:
        jobqueue.install_sender(previous)
    view = filejobs.get_file_job(world.mitra_a, job.id)
    assert (view.status, view.error, view.is_running) == (
        "failed", filejobs.ENQUEUE_FAILED, False)


def test_the_web_app_and_the_workers_install_the_celery_sender(tmp_path):
    code = ("import fibernode.fibernode\n"
            "import workers.celery_app as c\n"
            "from fibernode.services import jobqueue\n"
            "assert jobqueue._sender is c.send, jobqueue._sender\n"
            "print('ok')\n")
    out, _log = run_python(code, project_env(tmp_path, REDIS_URL))
    assert out.strip().endswith("ok")
