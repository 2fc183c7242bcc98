"""``/customers/{id}`` handlers: resending a subscriber's message on purpose (issue 17 #4)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import WaMessageLog, WaSessionStatus
from fibernode.pages.customer_detail import CustomerDetailState
from fibernode.services import invoices, wa_direct
from fibernode.services.wa_sessions import SessionEvent, record_event
from fibernode.whatsapp import set_gateway
from fibernode.whatsapp.base import ErrorKind, SendResult, SentLookup
from tests.services.invoice_data import customer, make_invoice
from tests.services.test_wa_direct import Recording
from tests.state.tabs import drive, page, redirects_to_login, run, tab


def _uncertain_receipt(world) -> WaMessageLog:
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    set_gateway(Recording(SendResult.failed(ErrorKind.UNCERTAIN, "timed out")))
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        s.execute(sa.update(WaMessageLog).values(sent_at=clock.now() - timedelta(minutes=10)))
        s.commit()
    wa_direct.sweep_pending(60, gateway=Recording(lookup=SentLookup.UNKNOWN))
    with new_session() as s:
        return s.exec(sa.select(WaMessageLog)).scalars().one()


def _detail(username: str, customer_id) -> CustomerDetailState:
    state = page(tab(username), CustomerDetailState)
    state._customer_id = str(customer_id)
    return state


def test_an_uncertain_receipt_is_resent_from_the_subscribers_page_after_a_warning(
        world, outbox_whatsapp):
    row = _uncertain_receipt(world)
    set_gateway(Recording())
    state = _detail("mitra1", customer("Ahmad Fauzi").id)
    state._show(world.mitra_a)
    (shown,) = state.messages
    assert (shown["status"], shown["resend"]) == ("uncertain", str(row.id))
    drive(run(state, CustomerDetailState.ask_resend, shown["resend"]))
    assert state.resend_target == str(row.id)  # the dialog warns first
    drive(run(state, CustomerDetailState.set_resend_open, False))
    assert state.resend_target == ""
    drive(run(state, CustomerDetailState.ask_resend, shown["resend"]))
    drive(run(state, CustomerDetailState.resend, state.resend_target))
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        rows = {r.idempotency_key: r for r in s.exec(sa.select(WaMessageLog)).scalars()}
    assert rows[row.idempotency_key].status == "uncertain"
    resent = rows[f"{row.idempotency_key}#ulang-1"]
    assert (resent.status, resent.sent_by) == ("sent", world.mitra_a.user_id)
    state._show(world.mitra_a)
    assert {m["resend"] for m in state.messages} == {"", str(row.id)}


def test_resend_handlers_need_a_session_and_the_subscribers_owner(world, outbox_whatsapp):
    row = _uncertain_receipt(world)
    anonymous = _detail(None, customer("Ahmad Fauzi").id)
    assert redirects_to_login(drive(run(anonymous, CustomerDetailState.resend,
                                        str(row.id))))
    assert anonymous.resend_target == ""
    other = _detail("mitra2", customer("Ahmad Fauzi").id)
    drive(run(other, CustomerDetailState.resend, str(row.id)))
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WaMessageLog)).scalar() == 1
