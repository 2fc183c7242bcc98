"""The project's Celery app is the only app: every thread and every process sends to its broker.

Celery's current app is thread-local. A thread that has none falls back to Celery's
built-in app, whose broker is RabbitMQ's ``amqp://guest@localhost:5672//``: jobs sent
from the web app's executor threads failed to connect, or, on a machine running
RabbitMQ, vanished there, and the jobs the user waited on stayed pending forever.

The fresh processes below get a ``celeryconfig`` for that built-in app that points it at
an in-memory broker: if the code under test ever used it (as the code before the fix
did), the job is lost exactly as it was in RabbitMQ and the test fails, without anything
contacting 127.0.0.1:5672.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery, current_app

from fibernode.config import PROJECT_ROOT
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.timeout(180)

QUEUE = "celery"  # the project's default queue: a Redis list of that name
FALLBACK_TRAP = '''\
"""Configuration of Celery's built-in fallback app, for tests only (never 127.0.0.1:5672)."""
broker_url = "memory://"
'''
# The worker's task name -> the service's name for it, which the service sends.
SENDERS = {
    "workers.tasks.build_finance_file": "finance_files.BUILD_TASK",
    "workers.tasks.build_receipt_bundle": "receipts.BUNDLE_TASK",
    "workers.tasks.process_payment_proof": "payment_proofs.PROCESS_TASK",
    "workers.tasks.validate_import": "imports.VALIDATE_TASK",
}


def project_env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a fresh FiberNode process whose broker is ``redis_url``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PYTHONPATH")}
    (tmp_path / "fn_fallback_trap.py").write_text(FALLBACK_TRAP)
    env.update({
        "APP_ENV": "test",
        "REDIS_URL": redis_url,
        "FIBERNODE_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "CELERY_CONFIG_MODULE": "fn_fallback_trap",
        "PYTHONPATH": os.pathsep.join((str(PROJECT_ROOT), str(tmp_path))),
        **extra,
    })
    return env


def run_python(code: str, env: dict[str, str], *args: str) -> tuple[str, str]:
    """Run ``python -c code`` in a fresh interpreter; returns (last output line, its log)."""
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", code, *args], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    print(done.stderr[-4000:])  # shown by pytest when an assertion below fails
    return done.stdout.strip().splitlines()[-1], done.stderr


def take_queued(job_ids: list[str]) -> dict[str, str]:
    """Remove our messages from the project's Redis queue; returns job id -> task name."""
    client = redis.Redis.from_url(REDIS_URL)
    found: dict[str, str] = {}
    try:
        for raw in client.lrange(QUEUE, 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            if args and args[0] in job_ids:
                found[args[0]] = message["headers"]["task"]
                client.lrem(QUEUE, 1, raw)
    finally:
        client.close()
    return found


def test_no_thread_falls_back_to_celerys_built_in_amqp_app(monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    # What a thread without the project's app sent to: RabbitMQ's default (no connection
    # is opened here).
    built_in = Celery("built-in", set_as_current=False)
    assert built_in.connection_for_write().as_uri() == "amqp://guest:**@localhost:5672//"
    built_in.close()

    from celery import _state

    from workers import celery_app

    seen = []
    thread = threading.Thread(target=lambda: seen.append(current_app._get_current_object()))
    thread.start()
    thread.join()
    assert seen == [celery_app.app]
    assert _state.default_app is celery_app.app
    assert not celery_app.app.conf.broker_url.startswith("amqp")


SEND_FROM_FRESH_THREADS = f"""
import json, sys, threading
import workers.celery_app  # the worker, beat and web app import it in their main thread
from celery import _state
from fibernode.services import finance_files, imports, jobqueue, payment_proofs, receipts

tasks = [{", ".join(SENDERS.values())}]
for task, job_id in zip(tasks, sys.argv[1:], strict=True):
    thread = threading.Thread(target=jobqueue.send_task, args=(task, job_id))
    thread.start()
    thread.join()
print(json.dumps({{"default_app": _state.default_app.main}}))
"""


def test_a_send_from_a_fresh_thread_reaches_the_projects_redis(tmp_path):
    job_ids = [str(uuid.uuid4()) for _ in SENDERS]
    out, _log = run_python(SEND_FROM_FRESH_THREADS, project_env(tmp_path, REDIS_URL), *job_ids)
    assert take_queued(job_ids) == dict(zip(job_ids, SENDERS, strict=True))
    # Celery's built-in app was never even created.
    assert json.loads(out) == {"default_app": "fibernode"}


SEND_FROM_THE_WEB_EXECUTOR = """
import json, sys, threading
from concurrent.futures import ThreadPoolExecutor
import fibernode.fibernode  # the web app, as `reflex run` loads it
from fibernode.services import finance_files, jobqueue

job_ids = sys.argv[1:]
all_waiting = threading.Barrier(len(job_ids))

def send(job_id):
    all_waiting.wait()  # each send on its own executor thread, at the same time
    jobqueue.send_task(finance_files.BUILD_TASK, job_id)
    return threading.get_ident()

with ThreadPoolExecutor(max_workers=len(job_ids)) as pool:
    print(json.dumps({"threads": len(set(pool.map(send, job_ids)))}))
"""


def test_the_web_process_sends_from_every_executor_thread_to_the_projects_redis(tmp_path):
    job_ids = [str(uuid.uuid4()) for _ in range(3)]
    out, _log = run_python(SEND_FROM_THE_WEB_EXECUTOR, project_env(tmp_path, REDIS_URL),
                           *job_ids)
    assert json.loads(out) == {"threads": 3}
    assert take_queued(job_ids) == dict.fromkeys(job_ids, "workers.tasks.build_finance_file")


def test_every_task_the_services_send_is_registered_by_the_workers():
    import workers.tasks  # noqa: F401 - registers the tasks
    from fibernode.services import finance_files, imports, payment_proofs, receipts
    from workers.celery_app import app

    sent = {finance_files.BUILD_TASK, receipts.BUNDLE_TASK, payment_proofs.PROCESS_TASK,
            imports.VALIDATE_TASK, imports.RUN_TASK}
    assert sent <= set(app.tasks)
