"""``/customers/import`` upload: the rows are checked off the event loop (issue 16 #7)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import reflex as rx

from fibernode.pages.customer_import import ImportState
from fibernode.services import imports
from tests.pages.loop import longest_pause
from tests.services.test_imports import csv_rows
from tests.state.tabs import drive, page, run, tab


@pytest.mark.timeout(120)
def test_checking_a_large_csv_does_not_stall_the_event_loop(world, sent_jobs):  # no Celery
    state = page(tab("superadmin"), ImportState)
    upload = rx.UploadFile(file=io.BytesIO(csv_rows(imports.SYNC_ROWS)),
                           path=Path("pelanggan.csv"))
    events, took, pause = drive(longest_pause(
        run(state, ImportState.handle_upload, [upload])))
    assert state.upload_error == "" and state.status == "previewed"
    assert state.valid_rows == imports.SYNC_ROWS
    # Blocking code would stall the loop for the whole run; a thread leaves it ticking
    # (under a loaded machine the GIL still costs some pauses, never the whole run).
    assert took < 0.2 or pause < took * 0.8, (took, pause)
