"""A real Reflex production build on PostgreSQL, driven by Debian's Chromium.

``AppHarnessProd`` exports the frontend with the production build and serves
it, with the backend in this process on a fresh, migrated and seeded database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_pg_database, drop_pg_database, migrate

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


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """Base URL of the running production build (seeded demo data)."""
    from reflex.testing import AppHarnessProd

    from fibernode import db as fn_db
    from fibernode.config import reset_settings
    from fibernode.services.context import Actor
    from fibernode.services.seed import seed

    name, url = create_pg_database("fibernode_browser")
    migrate(url)
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL")}
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    reset_settings()
    fn_db.set_engine(None)
    seed(Actor.system("seed"), demo=True)
    os.environ.setdefault("PATH", "")
    tools = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"
    os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ['PATH']}"
    os.environ["REFLEX_USE_SYSTEM_BUN"] = "1"
    os.environ["REFLEX_TELEMETRY_ENABLED"] = "false"
    harness = AppHarnessProd.create(root=PROJECT_ROOT, app_name="fibernode")
    try:
        harness.start()
        assert harness.frontend_url
        yield harness.frontend_url.rstrip("/")
    finally:
        harness.stop()
        fn_db.set_engine(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        drop_pg_database(name)


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
