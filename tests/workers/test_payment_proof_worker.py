"""A real Celery worker on Redis processes an uploaded transfer-slip photo."""

from __future__ import annotations

import time

import pytest
import redis
from celery import current_app as celery_current_app

from fibernode import db as fn_db
from tests.conftest import REDIS_URL
from tests.workers.test_celery_worker import (  # noqa: F401  (fixtures)
    RESULT_TIMEOUT,
    _use_env,
    celery_procs,
    client_app,
    fresh_pg_database,
    start_worker,
)

pytestmark = [pytest.mark.celery, pytest.mark.timeout(180)]


def test_worker_processes_a_payment_proof(  # noqa: F811  (pytest fixtures)
    monkeypatch, tmp_path, fresh_pg_database, celery_procs, client_app,  # noqa: F811
):
    from fibernode.services import invoices, payment_proofs
    from tests.factories import World
    from tests.services import proof_image_data as gen
    from tests.services.invoice_data import make_invoice

    redis.Redis.from_url(REDIS_URL).flushdb()
    _use_env(monkeypatch, tmp_path, fresh_pg_database, REDIS_URL=REDIS_URL,
             CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))  # the worker inherits it
    client_app()  # the service enqueues through the current app, as the web app does
    assert celery_current_app.conf.broker_url == REDIS_URL
    engine = fn_db.create_engine_for(fresh_pg_database)
    fn_db.set_engine(engine)
    try:
        world = World.seeded()
        inv = make_invoice("Dewi Lestari", "2026-03")
        invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer")
        worker = start_worker(celery_procs)
        view = payment_proofs.attach_proof(world.mitra_a, inv.id,
                                           gen.encode(gen.photographed_slip()), "slip.jpg")
        deadline = time.monotonic() + RESULT_TIMEOUT
        while (view := payment_proofs.get_proof(world.mitra_a, view.id)).is_running:
            worker.assert_running()
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.2)
        assert view.status == "ready", view.steps
        assert [s.step for s in view.steps][-1] == "store"
        path, _media = payment_proofs.proof_file(world.mitra_a, view.id, "processed")
        assert path.is_file() and tmp_path / "uploads" in path.parents
        worker.wait_for_log(f"payment proof {view.id}: {{'status': 'ready'")
    finally:
        fn_db.set_engine(None)
        engine.dispose()
