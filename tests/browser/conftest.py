"""A real Reflex production build on PostgreSQL, driven by Debian's Chromium.

Like production, the harness serves on one port: the frontend is exported with
the production build and mounted into the backend (``single-port``), with the
backend in this process on a fresh, migrated and seeded database. The browser
reaches it through a small TCP relay on a port of its own, so a test can cut
the browser off from the server (listener closed, every connection dropped,
exactly what a stopped server looks like) and bring it back without a rebuild.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import seeded_process_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SPLASH_SECONDS = 3.0


class Relay:
    """A TCP relay in front of the server: the browser's one origin.

    ``stop()`` closes the listening socket and drops every open connection
    (the websocket included), so the browser sees the server gone;
    ``start()`` listens again on the same port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.start()

    @property
    def url(self) -> str:
        """The origin the browser uses."""
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.writers -= {writer, up_writer}

    def _run(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> None:
        """Accept connections (again)."""
        async def listen() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                     reuse_address=True)
        if self.server is None:
            self._run(listen())

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None
            for writer in list(self.writers):
                writer.transport.abort()
            self.writers.clear()
        self._run(close())

    def close(self) -> None:
        """Stop for good and end the relay's thread."""
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def single_port_harness_class():
    """``AppHarnessProd`` serving the exported frontend from the backend, as production does.

    The compiled frontend is mounted into the backend app
    (``REFLEX_MOUNT_FRONTEND_COMPILED_APP``, the ``reflex run --env prod
    --single-port`` path), no separate static server runs, and the export's
    ``api_url`` is the browser's one origin (the relay in front of the backend).
    """
    from reflex.testing import AppHarnessProd, chdir
    from reflex.utils.exec import get_frontend_mount
    from reflex.utils.export import export
    from reflex_base import constants
    from reflex_base.config import get_config

    class SinglePortHarness(AppHarnessProd):
        relay: Relay | None = None

        def _initialize_app(self) -> None:
            super()._initialize_app()
            # What ``App.__call__`` does under REFLEX_MOUNT_FRONTEND_COMPILED_APP, done
            # after the compile (which clears .web/build): StaticFiles refuses a
            # missing directory, and the export fills this one later.
            with chdir(self.app_path):
                (Path(".web") / constants.Dirs.STATIC).mkdir(parents=True, exist_ok=True)
                self.app_instance._api.routes.append(
                    get_frontend_mount(router=self.app_instance.router))

        def _start_frontend(self) -> None:
            with chdir(self.app_path):
                config = get_config()
                port = self._poll_for_servers(timeout=30).getsockname()[1]
                self.relay = Relay(port)
                config.api_url = self.relay.url
                get_config().loglevel = constants.LogLevel.INFO
                export(zipping=False, frontend=True, backend=False,
                       loglevel=constants.LogLevel.INFO, env=constants.Env.PROD)

        def _wait_frontend(self) -> None:
            assert self.relay is not None
            self.frontend_url = self.relay.url + "/"
            get_config().deploy_url = self.frontend_url

        def stop(self) -> None:
            try:
                super().stop()
            finally:
                if self.relay is not None:
                    self.relay.close()

    return SinglePortHarness


@pytest.fixture(scope="session")
def app_harness() -> Iterator:
    """The running single-port production build (seeded demo data)."""
    import sys

    if "fibernode.fibernode" in sys.modules:
        # The harness builds the app in a registration context of its own; an app
        # module imported earlier in this process (tests/state/tabs.py does, at
        # collection) leaves it without its pages: /login answers 404.
        pytest.fail("tests/browser must run in a pytest process of its own "
                    "(scripts/test.sh does): the app's pages were imported before "
                    "the harness started")
    with seeded_process_database("fibernode_browser"):
        os.environ.setdefault("PATH", "")
        tools = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"
        os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ['PATH']}"
        os.environ["REFLEX_USE_SYSTEM_BUN"] = "1"
        os.environ["REFLEX_TELEMETRY_ENABLED"] = "false"
        harness = single_port_harness_class().create(root=PROJECT_ROOT,
                                                     app_name="fibernode")
        try:
            harness.start()
            assert harness.frontend_url
            yield harness
        finally:
            harness.stop()


@pytest.fixture(scope="session")
def app_url(app_harness) -> str:
    """Base URL of the running production build: UI, API and websocket on one origin."""
    return app_harness.frontend_url.rstrip("/")


@pytest.fixture
def server_down(app_harness) -> Iterator:
    """Call to cut the browser off from the server; it comes back after the test."""
    relay = app_harness.relay
    yield relay.stop
    relay.start()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; scripts/setup.sh installs it.")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """Factory for pages in fresh contexts (own cookies and storage)."""
    contexts = []

    def make(viewport=DESKTOP, color_scheme="light", mobile=False):
        ctx = browser.new_context(viewport=viewport, color_scheme=color_scheme,
                                  is_mobile=mobile, has_touch=mobile, locale="id-ID",
                                  timezone_id="Asia/Jakarta")
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def shot(page, name: str) -> None:
    """Save a screenshot artifact (git-ignored) for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
