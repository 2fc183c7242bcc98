"""``/admin/settings`` → WhatsApp Cloud API: the superadmin stores each owner's number."""

from __future__ import annotations

from sqlmodel import select

from fibernode.components.wa_cloud_settings import WaCloudSettingsState
from fibernode.db import new_session
from fibernode.models import ActivityLog, WaSession
from fibernode.services import wa_cloud
from tests.state.tabs import drive, page, run, tab
from tests.whatsapp.fake_graph import PHONE_ID, TOKEN


def _row(state, owner_id) -> dict:
    return next(o for o in state.owners if o["id"] == str(owner_id))


def test_superadmin_sets_a_mitras_cloud_number_verified_first(world, graph):
    owner = world.mitra_a.user_id
    state = page(tab("superadmin"), WaCloudSettingsState)
    drive(run(state, WaCloudSettingsState.load))
    assert state.allowed and _row(state, owner)["status"] == "Belum diisi"
    assert {t["name"] for t in state.templates} == {
        "fibernode_pengingat", "fibernode_nota", "fibernode_isolir"}
    assert all(t["body"] == wa_cloud.TEMPLATES[t["type"]].body for t in state.templates)

    drive(run(state, WaCloudSettingsState.save_credentials, {
        "owner_id": str(owner), "phone_id": PHONE_ID,
        "token": "EAAG-revoked-token-000000000000000"}))
    assert "kode 190" in state.errors["token"] and not state.saving
    with new_session() as s:
        row = s.exec(select(WaSession).where(WaSession.user_id == owner)).first()
    assert row is None or row.cloud_token is None

    key = state.form_key
    drive(run(state, WaCloudSettingsState.save_credentials, {
        "owner_id": str(owner), "phone_id": PHONE_ID, "token": TOKEN}))
    assert state.errors == {} and state.form_key > key  # the token field is emptied
    shown = _row(state, owner)
    assert shown["phone_id"] == PHONE_ID and shown["token"] == "••••cdef"
    assert shown["status"] == "Terhubung" and shown["number"] == "6281234567890"
    assert TOKEN not in repr(state.owners)
    with new_session() as s:
        audit = s.exec(select(ActivityLog).where(
            ActivityLog.action == "wa.cloud.credentials")).one()
    assert audit.user_id == world.admin.user_id


def test_template_names_saved_from_the_page(world):
    state = page(tab("superadmin"), WaCloudSettingsState)
    drive(run(state, WaCloudSettingsState.load))
    drive(run(state, WaCloudSettingsState.save_templates, {
        "template_reminder": "Bukan Nama", "language": "id"}))
    assert "huruf kecil" in state.template_errors["reminder"]
    drive(run(state, WaCloudSettingsState.save_templates, {
        "template_reminder": "tagihan_saya", "template_receipt": "",
        "template_isolation": "", "language": "id"}))
    assert state.template_errors == {}
    assert next(t for t in state.templates if t["type"] == "reminder")["name"] == "tagihan_saya"


def test_a_mitra_gets_nothing(world, graph):
    state = page(tab("mitra1"), WaCloudSettingsState)
    drive(run(state, WaCloudSettingsState.load))
    assert not state.allowed and state.owners == []
    drive(run(state, WaCloudSettingsState.save_credentials, {
        "owner_id": str(world.mitra_a.user_id), "phone_id": PHONE_ID, "token": TOKEN}))
    assert state.errors["form"] and graph.requests == []
