"""Property-based fuzz of the whole OpenAPI schema against a live server on PostgreSQL.

Schemathesis generates requests for every operation (valid and invalid bodies,
parameters and ids) and sends them over real HTTP to uvicorn serving the API on a
migrated, seeded PostgreSQL database, as the superadmin and as a mitra. Whatever
it sends, the server must never answer 5xx.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_pg_database, drop_pg_database, migrate

# Operations whose side effects would end the fuzzing session itself or only
# repeat slow work (every other operation is fuzzed, deletes included).
SKIP_PATHS = r"^/api/(auth/logout|backups.*)$"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# Fixed, so a failure in CI reproduces; FUZZ_SEED explores further.
SEED = os.environ.get("FUZZ_SEED", "20261121")


@pytest.fixture(scope="module")
def live_api() -> Iterator[dict]:
    """uvicorn serving ``create_api()`` on a fresh PostgreSQL database, with tokens."""
    import uvicorn

    from fibernode import db as fn_db
    from fibernode.api import create_api
    from fibernode.config import reset_settings
    from fibernode.services import api_tokens
    from fibernode.services.context import Actor
    from fibernode.services.seed import seed
    from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD

    name, url = create_pg_database("fibernode_fuzz")
    migrate(url)
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    reset_settings()
    fn_db.set_engine(None)
    seed(Actor.system("seed"), demo=True)
    client = Actor.anonymous("10.99.0.1", "schemathesis")
    tokens = {
        "superadmin": api_tokens.login(client, "superadmin", ADMIN_PASSWORD).access_token,
        "mitra": api_tokens.login(client, "mitra1", MITRA_PASSWORD).access_token,
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_api(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "tokens": tokens}
    finally:
        server.should_exit = True
        thread.join(10)
        fn_db.set_engine(None)
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
        reset_settings()
        drop_pg_database(name)


def _schemathesis(live_api: dict, role: str) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(  # noqa: S603 - our own venv's CLI, fixed arguments
        [str(cli), "run", f"{live_api['base']}/api/openapi.json",
         "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {live_api['tokens'][role]}",
         "--exclude-path-regex", SKIP_PATHS,
         "--max-examples", str(EXAMPLES),
         "--seed", SEED,
         # Not the "coverage" phase: its filter lambdas make hypothesis ast.parse its
         # own source, which on CPython 3.11 fails intermittently ("AST constructor
         # recursion depth mismatch") and counts as an error of the run.
         "--phases", "examples,fuzzing",
         "--workers", "1",
         "--request-timeout", "30",
         "--no-color"],
        capture_output=True, text=True, timeout=1500, check=False)


@pytest.mark.parametrize("role", ["superadmin", "mitra"])
def test_no_server_errors(live_api, role):
    run = _schemathesis(live_api, role)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # It really ran: many generated cases ("Test cases: N generated, N passed").
    cases = re.search(r"Test cases:\s*(\d+) generated, (\d+) passed", run.stdout)
    assert cases and int(cases.group(2)) > 500, run.stdout[-3000:]
