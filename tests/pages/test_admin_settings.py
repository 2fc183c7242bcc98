"""``/admin/settings`` logo upload: drawn off the event loop (issue 16 #7)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import reflex as rx

from fibernode.config import reset_settings
from fibernode.pages.admin_settings import AdminSettingsState
from fibernode.services import settings
from fibernode.services.context import Actor
from tests.pages.loop import longest_pause
from tests.services.test_branding import SLOW_SVG, nested_use_svg
from tests.state.tabs import page, run, tab


@pytest.fixture
def uploads(db, tmp_path, monkeypatch):
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    yield
    monkeypatch.delenv("UPLOADS_DIR")
    reset_settings()


def _file(data: bytes, name: str) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name))


@pytest.mark.timeout(120)
def test_a_slow_logo_upload_does_not_stall_the_event_loop(world, uploads):
    state = page(tab("superadmin"), AdminSettingsState)
    events, took, pause = asyncio.run(longest_pause(
        run(state, AdminSettingsState.upload_logo, [_file(SLOW_SVG, "logo.svg")])))
    assert state.upload_error == "" and state.custom_logo
    assert settings.get_branding(Actor.anonymous()).logo_url.startswith("/branding/logo-")
    assert took > 0.8  # seconds of drawing…
    assert pause < 0.5  # …while the loop kept serving everybody else


@pytest.mark.timeout(60)
def test_a_use_bomb_is_refused_on_the_page_in_indonesian(world, uploads):
    state = page(tab("superadmin"), AdminSettingsState)
    asyncio.run(run(state, AdminSettingsState.upload_logo,
                    [_file(nested_use_svg(5), "logo.svg")]))
    assert state.upload_error.startswith("SVG terlalu rumit") and state.uploading == ""
