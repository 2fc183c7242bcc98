"""Run the real neonize library offline, in seconds, for contract and survival tests.

Two ways keep neonize off the network:

- :func:`run_offline` runs a Python snippet in a subprocess inside a new network
  namespace with only loopback (``unshare -n``, root): every dial fails in ms;
- :class:`BlackHoleProxy` / :func:`dead_proxy` give neonize a proxy on 127.0.0.1
  that never answers (a dial hangs, as on a stalled network) or refuses at once,
  for processes that must stay reachable from the test (the gateway's HTTP port).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _unshare_works() -> str | None:
    """``None`` when ``unshare -n`` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not installed"
    try:
        done = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    if done.returncode != 0:
        return f"unshare -n failed: {done.stderr.decode(errors='replace').strip()}"
    return None


UNSHARE_PROBLEM = _unshare_works()
needs_unshare = pytest.mark.skipif(UNSHARE_PROBLEM is not None,
                                   reason=f"needs a network namespace: {UNSHARE_PROBLEM}")


def child_env(**extra: str) -> dict[str, str]:
    """This worktree's ``fibernode`` first on the path, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_offline(code: str, *, timeout: float = 60, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` with this Python in a network namespace that has only loopback."""
    script = textwrap.dedent(code)
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
         sys.executable, script],
        capture_output=True, text=True, timeout=timeout, env=env or child_env(),
        cwd=cwd or ROOT)


def dead_proxy() -> str:
    """A proxy URL on 127.0.0.1 where nothing listens: neonize's dial fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class BlackHoleProxy:
    """A proxy on 127.0.0.1 that accepts and never answers: a connect hangs in its dial."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        """Stop listening and drop every held connection."""
        self.sock.close()
        for conn in self.held:
            conn.close()


def add_linked_device(db_path: Path, phone: str) -> None:
    """Write a (made-up) linked device into a store neonize created: it now resumes.

    whatsmeow reads it as a device that was paired before; offline it never gets to
    use the keys, so random bytes of the right lengths are enough.
    """
    def b(n: int) -> bytes:
        return secrets.token_bytes(n)

    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig)"
            " VALUES (?, 1, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (f"{phone}:7@s.whatsapp.net", b(32), b(32), b(32), b(64), b(32), b(16), b(64),
             b(32), b(64)))


CREATE_STORE = """
    import sys
    from neonize.client import NewClient
    c = NewClient(sys.argv[1] if len(sys.argv) > 1 else {path!r}, uuid={owner!r})
    try:
        c.connect()
    except Exception as exc:
        print("connect failed:", exc)
"""


def create_store(db_path: Path, owner: str) -> subprocess.CompletedProcess:
    """Let real neonize create an owner's auth store (offline: its connect fails)."""
    done = run_offline(CREATE_STORE.format(path=str(db_path), owner=owner))
    assert db_path.exists(), done.stderr[-2000:]
    return done
