"""Every process the product runs starts from a plain ``pip install .`` (no extras).

Each entry point runs in its own interpreter with an import hook that refuses any
module whose distribution is not in the main requirement closure of ``fibernode``
(``[project] dependencies`` of this checkout's pyproject.toml, followed recursively
through the installed packages' metadata). A module only reachable through the
``[test]`` extra (uvicorn, pytest, psutil, ...) therefore fails exactly as it would in
the production image, while the tests can keep running in the full dev install.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from importlib import metadata

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fibernode.config import PROJECT_ROOT


def main_closure(requirements: list[str]) -> set[str]:
    """Canonical names of every installed distribution the requirements pull in.

    Markers are evaluated for this interpreter; a dependency's ``extra == ...``
    requirements count only when that extra was asked for.
    """
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, parent_extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist_requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here, so nothing can import it anyway
        names.add(name)
        for raw in dist_requires:
            child = Requirement(raw)
            for extra in ("", *req.extras):
                if not child.marker or child.marker.evaluate({"extra": extra}):
                    todo.append((child, extra))
                    break
    return names


def project_requirements() -> list[str]:
    """``[project] dependencies`` as ``pip install .`` of this checkout reads them."""
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]["dependencies"]


# Installed in every interpreter the test starts, before anything else is imported.
HOOK = textwrap.dedent("""
    import importlib.metadata, json, os, sys

    _ALLOWED = set(json.loads(os.environ["FIBERNODE_ALLOWED_DISTS"]))
    _OWNERS = importlib.metadata.packages_distributions()

    def _canon(name):
        import re
        return re.sub(r"[-_.]+", "-", name).lower()

    class _MainDependenciesOnly:
        @staticmethod
        def find_spec(fullname, path=None, target=None):
            top = fullname.partition(".")[0]
            owners = {_canon(d) for d in _OWNERS.get(top, ())} - {"fibernode"}
            if owners and not owners & _ALLOWED:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r} (only in {sorted(owners)}, "
                    "not a main dependency of fibernode)", name=fullname)
            return None

    sys.meta_path.insert(0, _MainDependenciesOnly)
""")


def run_plain(code: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    """Start ``code`` in a fresh interpreter behind the main-dependencies-only hook."""
    return subprocess.Popen([sys.executable, "-c", HOOK + textwrap.dedent(code)],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture
def plain_env(tmp_path) -> dict[str, str]:
    """The environment of a plain install: allowed distributions, a private data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(FIBERNODE_ALLOWED_DISTS=json.dumps(sorted(main_closure(project_requirements()))),
               FIBERNODE_DATA_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    return env


def test_the_closure_excludes_test_only_tools():
    closure = main_closure(project_requirements())
    assert {"reflex", "celery", "neonize", "granian", "kombu"} <= closure
    assert not {"pytest", "playwright", "ruff", "schemathesis"} & closure


def test_the_hook_refuses_a_test_only_module(plain_env):
    proc = run_plain("import pytest", plain_env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not a main dependency of fibernode" in out


@pytest.mark.parametrize("entry_point,code", [
    # scripts/docker-entrypoint.sh `web`: the Reflex app behind reflex's production server.
    ("web", """
        import rxconfig, fibernode.fibernode
        from reflex.utils import exec as rx_exec
        import granian, granian.server
     """),
    # `celery -A workers.celery_app worker` and `... beat`, on the configured broker.
    ("worker, beat", """
        import celery.bin.celery, celery.apps.worker, celery.apps.beat
        from workers.celery_app import make_app
        app = make_app()
        app.loader.import_default_modules()
        app.connection_for_write().transport  # imports the broker's transport
     """),
    ("cli", """
        import fibernode.cli
        fibernode.cli.main(["check-config"])
     """),
])
def test_every_process_imports_from_a_plain_install(plain_env, entry_point, code):
    proc = run_plain(code, plain_env)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"{entry_point}: {out[-3000:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_wa_gateway_starts_from_a_plain_install(plain_env):
    # docker-compose.yml `wa-gateway`: python -m fibernode.cli wa-gateway (test mode: no network).
    port = _free_port()
    proc = run_plain(f"""
        import sys
        from fibernode.cli import main
        sys.exit(main(["wa-gateway", "--test-mode", "--port", "{port}"]))
    """, plain_env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["ok"] is True
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
