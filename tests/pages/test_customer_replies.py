"""``/customers/{id}`` → Balasan Pelanggan: what the subscriber wrote to the owner's number."""

from __future__ import annotations

from fibernode import clock
from fibernode.components.wa_replies import CustomerRepliesState
from fibernode.services import wa_cloud
from tests.services.invoice_data import customer
from tests.state.tabs import drive, page, run, tab
from tests.whatsapp.fake_graph import PHONE_ID, TOKEN


def test_a_customers_reply_shows_on_their_page_for_their_owner_only(world, graph):
    wa_cloud.set_credentials(world.admin, world.mitra_a.user_id, PHONE_ID, TOKEN)
    wa_cloud.record_inbound([wa_cloud.InboundMessage(
        PHONE_ID, "6281234567890", "wamid.REPLY", "text", "Sudah transfer, Pak", clock.now())])
    ahmad = str(customer("Ahmad Fauzi").id)

    mine = page(tab("mitra1"), CustomerRepliesState)
    drive(run(mine, CustomerRepliesState.load_for, ahmad))
    assert [r["text"] for r in mine.replies] == ["Sudah transfer, Pak"]
    assert mine.replies[0]["time"]

    other = page(tab("mitra2"), CustomerRepliesState)
    drive(run(other, CustomerRepliesState.load_for, ahmad))
    assert other.replies == []

    dewi = page(tab("mitra1"), CustomerRepliesState)
    drive(run(dewi, CustomerRepliesState.load_for, str(customer("Dewi Lestari").id)))
    assert dewi.replies == []


def test_the_replies_card_is_offered_only_where_replies_can_arrive(world, monkeypatch):
    from fibernode.config import reset_settings

    ahmad = str(customer("Ahmad Fauzi").id)
    try:
        for mode, shown in (("cloud", True), ("neonize", False), ("outbox", False)):
            monkeypatch.setenv("WA_MODE", mode)
            reset_settings()
            state = page(tab("mitra1"), CustomerRepliesState)
            drive(run(state, CustomerRepliesState.load_for, ahmad))
            assert state.cloud is shown, mode
    finally:
        reset_settings()
