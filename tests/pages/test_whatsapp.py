"""``/whatsapp`` handlers: nothing is read or changed without a live session (issue 16 #8)."""

from __future__ import annotations

import inspect
import uuid

import pytest

from fibernode.pages.whatsapp import WhatsAppState
from fibernode.services import wa_templates
from tests.state.tabs import drive, page, redirects_to_login, run, tab

# ``setvar`` is Reflex's own (not this page's code); ``watch_link`` runs in the
# background under ``async with self`` and re-checks the session on every round.
NOT_PAGE_HANDLERS = {"setvar", "watch_link"}
SAMPLE_ARGS = {str: "reminder_m1", int: 1, bool: True, dict: {"text": "x", "phone": "0812"}}


def _args(name: str) -> list:
    fn = WhatsAppState.event_handlers[name].fn
    params = list(inspect.signature(fn).parameters.values())[1:]
    hints = inspect.get_annotations(fn, eval_str=True)
    return [SAMPLE_ARGS[hints[p.name]] for p in params]


def _values(state: WhatsAppState) -> dict:
    return {name: getattr(state, name) for name in WhatsAppState.base_vars}


PAGE_HANDLERS = sorted(set(WhatsAppState.event_handlers) - NOT_PAGE_HANDLERS)


@pytest.mark.parametrize("name", PAGE_HANDLERS)
def test_every_handler_without_a_session_goes_to_login_and_touches_nothing(world, name):
    state = page(tab(None), WhatsAppState)
    before = _values(state)
    events = drive(run(state, WhatsAppState.event_handlers[name], *_args(name)))
    assert redirects_to_login(events), name
    assert _values(state) == before, name


def test_choose_template_without_a_session_reads_no_template(world):
    state = page(tab(None), WhatsAppState)
    events = drive(run(state, WhatsAppState.choose_template, "reminder_m1"))
    assert redirects_to_login(events)
    assert state.tpl_text == "" and state.tpl_preview == ""


@pytest.mark.parametrize("name", ["choose_template", "edit_template", "toggle_offset"])
def test_template_and_rule_handlers_are_for_the_superadmin(world, name):
    arg = {"toggle_offset": "3"}.get(name, "reminder_m1")
    mitra = page(tab("mitra1"), WhatsAppState)
    before = _values(mitra)
    assert drive(run(mitra, WhatsAppState.event_handlers[name], arg)) == []
    assert _values(mitra) == before  # no template text, no preview, no rule changed

    admin = page(tab("superadmin"), WhatsAppState)
    drive(run(admin, WhatsAppState.event_handlers[name], arg))
    assert _values(admin) != _values(page(tab(None), WhatsAppState))


def test_the_superadmin_still_picks_a_template_to_edit(world):
    admin = page(tab("superadmin"), WhatsAppState)
    drive(run(admin, WhatsAppState.choose_template, "receipt"))
    assert admin.tpl_key == "receipt"
    assert admin.tpl_text == wa_templates.DEFAULTS["receipt"] and admin.tpl_preview
    drive(run(admin, WhatsAppState.choose_template, "no_such_template"))
    assert admin.tpl_key == "receipt"


def test_a_mitra_cannot_open_the_template_tab(world):
    mitra = page(tab("mitra1"), WhatsAppState)
    drive(run(mitra, WhatsAppState.set_tab, "templates"))
    assert mitra.tab == "connection" and mitra.tpl_keys == [] and mitra.tpl_text == ""


@pytest.mark.parametrize("mode", ["outbox", "neonize"])
def test_the_page_and_its_lists_never_call_a_recorded_message_sent(world, monkeypatch, mode):
    from fibernode import clock
    from fibernode.config import reset_settings
    from fibernode.pages.whatsapp import queue_row
    from fibernode.services import wa_queue, whatsapp

    monkeypatch.setenv("WA_MODE", mode)
    reset_settings()
    try:
        mitra = page(tab("mitra1"), WhatsAppState)
        drive(run(mitra, WhatsAppState.load))
        assert mitra.outbox is (mode == "outbox")
        now = clock.now()
        row = wa_queue.QueueRow(
            id=uuid.uuid4(), owner_id=world.mitra_a.user_id, customer_id=None,
            customer_name=None, phone="6281234567001", message_type="custom", status="sent",
            scheduled_at=now, sent_at=now, retry_count=0, max_retries=3, error=None,
            content="Halo")
        label = queue_row(row)["status_label"]
        expected = whatsapp.OUTBOX_SENT_LABEL if mode == "outbox" else "Terkirim"
        assert label == expected
    finally:
        reset_settings()


def _uncertain_queue_message(world):
    """A bulk message whose send ended "tidak pasti" (reconciled as unknown)."""
    import random
    from datetime import timedelta

    from fibernode import clock
    from fibernode.models import WaSessionStatus
    from fibernode.services import wa_queue, wa_sessions
    from fibernode.services.wa_queue import BulkItem
    from tests.services.test_wa_queue import CONFIG, RecordingGateway

    owner = world.mitra_a.user_id
    wa_queue.enqueue_bulk(world.mitra_a, owner_id=owner, items=[BulkItem(
        None, None, "6281277700009", "Halo", "page:0")], now=clock.now() - timedelta(hours=1),
        config=CONFIG)
    wa_sessions.record_event(owner, wa_sessions.SessionEvent(
        status=WaSessionStatus.CONNECTED), source="test")
    claim = wa_queue.claim_next("dead", clock.now() - timedelta(minutes=10), CONFIG,
                                random.Random(0))
    wa_queue.reconcile_stale(RecordingGateway(), now=clock.now())
    return claim.queue_id


def test_resending_from_the_queue_warns_of_a_duplicate_first_then_uses_a_new_key(world):
    from fibernode.services import whatsapp
    from tests.services.test_wa_queue import queue_rows

    queue_id = _uncertain_queue_message(world)
    mitra = page(tab("mitra1"), WhatsAppState)
    drive(run(mitra, WhatsAppState.set_tab, "queue"))
    (row,) = mitra.queue_rows
    assert (row["status_label"], row["resend"]) == ("Tidak pasti", f"queue:{queue_id}")
    drive(run(mitra, WhatsAppState.ask_resend, row["resend"]))
    assert mitra.resend_target == row["resend"]  # the warning is open, nothing sent yet
    assert queue_rows(id=queue_id)[0].status == "uncertain"
    assert "dua kali" in whatsapp.RESEND_WARNING
    drive(run(mitra, WhatsAppState.cancel_resend))
    assert mitra.resend_target == "" and queue_rows(id=queue_id)[0].status == "uncertain"
    drive(run(mitra, WhatsAppState.ask_resend, row["resend"]))
    drive(run(mitra, WhatsAppState.resend, mitra.resend_target))
    (again,) = queue_rows(id=queue_id)
    assert (again.status, again.idempotency_key) == ("pending", "page:0#ulang-1")
    # The old attempt is in the message log as "Tidak pasti", no longer resendable there.
    drive(run(mitra, WhatsAppState.set_tab, "logs"))
    (logged,) = mitra.log_rows
    assert (logged["status_label"], logged["resend"]) == ("Tidak pasti", "")


def test_another_owner_cannot_resend_a_message(world):
    from tests.services.test_wa_queue import queue_rows

    queue_id = _uncertain_queue_message(world)
    other = page(tab("mitra2"), WhatsAppState)
    drive(run(other, WhatsAppState.resend, f"queue:{queue_id}"))
    assert queue_rows(id=queue_id)[0].status == "uncertain"
