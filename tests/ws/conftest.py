"""The app served as production serves it, for websocket clients.

One uvicorn process runs the ASGI app ``fibernode.fibernode.app()`` returns
(``App.__call__`` compiles the pages in Python; the websocket needs no exported
JavaScript) on a fresh migrated and seeded PostgreSQL database, with no Redis
(Reflex keeps state on disk, as a one-worker install does). The test process
shares the database, so it builds data and sessions through the services.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import seeded_process_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def ws_database() -> Iterator[str]:
    """A fresh migrated and seeded PostgreSQL database, used by this process too."""
    with seeded_process_database("fibernode_ws") as url:
        yield url


@pytest.fixture(scope="session")
def ws_server(ws_database) -> Iterator[str]:
    """Base URL of one uvicorn process serving the app's ASGI callable.

    The server's log goes to ``artifacts/ws-server.log`` (git-ignored): a
    crashed handler's traceback is there.
    """
    port = _free_port()
    log_path = PROJECT_ROOT / "artifacts" / "ws-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": ws_database,
        "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_ENV_MODE": "prod",
        "BACKEND_PORT": str(port),
        "API_URL": f"http://127.0.0.1:{port}",
    })
    env.pop("REDIS_URL", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "fibernode.fibernode:app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def estate(ws_server):
    """Sentinel data, fresh-row factories and one live session token per user."""
    from tests.ws import oracle

    est = oracle.build_estate()
    est.tokens = {role: oracle.login(role) for role in oracle.USERNAMES}
    return est
