"""Own profile for everyone, mitra accounts for the superadmin."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Invoice,
    Package,
    User,
    UserRole,
    UserSession,
    WaMessageLog,
    WaMessageQueue,
    WaSession,
)
from fibernode.services import auth, customers, users
from fibernode.services.context import Actor
from fibernode.services.errors import (
    Conflict,
    LoginFailed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.factories import MITRA_PASSWORD


def audit_rows(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


# --- profile -----------------------------------------------------------------------------


def test_update_profile_normalises_and_audits_changes(world):
    profile = users.update_profile(
        world.mitra_a, name="  Budi Santoso Jr  ", phone="0812-3456-7890",
        bank_name="BCA", bank_account="1234567890", bank_holder="Budi Santoso",
    )

    assert profile.name == "Budi Santoso Jr"
    assert profile.phone == "6281234567890"
    assert (profile.bank_name, profile.bank_account, profile.bank_holder) == (
        "BCA", "1234567890", "Budi Santoso")
    assert users.get_profile(world.mitra_a) == profile

    [log] = audit_rows("user.profile_update")
    assert log.user_id == world.mitra_a.user_id
    assert log.resource == "users" and log.resource_id == world.mitra_a.user_id
    assert log.meta == {"changes": {
        "name": {"from": "Budi Santoso", "to": "Budi Santoso Jr"},
        "phone": {"from": None, "to": "6281234567890"},
        "bank_name": {"from": None, "to": "BCA"},
        "bank_account": {"from": None, "to": "1234567890"},
        "bank_holder": {"from": None, "to": "Budi Santoso"},
    }}


def test_update_profile_audits_only_what_changed(world):
    users.update_profile(world.mitra_a, name="Budi Santoso", phone="+62 812 3456 7890")
    users.update_profile(world.mitra_a, name="Budi Santoso", phone="6281234567890",
                         bank_name="BRI")

    logs = audit_rows("user.profile_update")
    assert [log.meta["changes"] for log in logs] == [
        {"phone": {"from": None, "to": "6281234567890"}},
        {"bank_name": {"from": None, "to": "BRI"}},
    ]


def test_update_profile_without_changes_writes_no_audit_row(world):
    users.update_profile(world.mitra_b, name="Siti Rahayu")
    assert audit_rows("user.profile_update") == []


def test_clearing_optional_fields_stores_null(world):
    users.update_profile(world.mitra_a, name="Budi", phone="081234567890", bank_name="BCA")
    profile = users.update_profile(world.mitra_a, name="Budi", phone="  ", bank_name="")
    assert (profile.phone, profile.bank_name) == ("", "")
    with new_session() as s:
        user = s.get(User, world.mitra_a.user_id)
        assert (user.phone, user.bank_name) == (None, None)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "   "}, {"name": "Nama wajib diisi."}),
        ({"name": "x" * 256}, {"name": "Nama maksimal 255 karakter."}),
        ({"phone": "12345"},
         {"phone": "Nomor telepon harus diawali 62 (contoh: 6281234567890)."}),
        ({"phone": "0812"},
         {"phone": "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."}),
        ({"bank_account": "12ab34"},
         {"bank_account": "Nomor rekening hanya boleh berisi angka."}),
        ({"bank_name": "B" * 101}, {"bank_name": "Nama bank maksimal 100 karakter."}),
        ({"name": "", "phone": "999", "bank_account": "abc"},
         {"name": "Nama wajib diisi.",
          "phone": "Nomor telepon harus diawali 62 (contoh: 6281234567890).",
          "bank_account": "Nomor rekening hanya boleh berisi angka."}),
    ],
    ids=["empty-name", "long-name", "phone-prefix", "phone-short", "bank-account-letters",
         "long-bank-name", "several"],
)
def test_update_profile_validation(world, fields, expected):
    args = {"name": "Budi Santoso", **fields}
    with pytest.raises(ValidationFailed) as exc:
        users.update_profile(world.mitra_a, **args)
    assert exc.value.details == expected
    assert exc.value.message in expected.values()
    assert users.get_profile(world.mitra_a).name == "Budi Santoso"
    assert audit_rows("user.profile_update") == []


def test_bank_account_may_be_grouped_with_spaces_or_dashes(world):
    profile = users.update_profile(world.mitra_a, name="Budi", bank_account="1234-5678 90")
    assert profile.bank_account == "1234-5678 90"


# --- create mitra ------------------------------------------------------------------------


def test_create_mitra_creates_a_working_login(world):
    new_id = users.create_mitra(
        world.admin, username="  Mitra3 ", password="Rahasia123", name="Joko",
        business_name="Net Cempaka", phone="0857 1111 2222", bank_account="998877")

    with new_session() as s:
        user = s.get(User, new_id)
    assert (user.username, user.role, user.phone, user.is_active) == (
        "mitra3", UserRole.MITRA, "6285711112222", True)
    assert user.password_hash.startswith("$argon2id$")
    [log] = [row for row in audit_rows("user.create") if row.resource_id == new_id]
    assert log.user_id == world.admin.user_id
    assert log.meta == {"username": "mitra3", "business_name": "Net Cempaka", "role": "mitra"}
    assert "Rahasia123" not in str(log.meta)

    login = auth.login(Actor.anonymous("10.7.0.1"), "mitra3", "Rahasia123")
    assert login.actor.user_id == new_id


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"username": "MITRA1"}, {"username": "Username sudah dipakai."}),
        ({"business_name": "wifi SUKAMAJU"}, {"business_name": "Nama usaha sudah dipakai."}),
        ({"username": "Superadmin", "business_name": " fibernode pusat "},
         {"username": "Username sudah dipakai.",
          "business_name": "Nama usaha sudah dipakai."}),
        ({"password": "Ab1"}, {"password": "Password minimal 8 karakter."}),
        ({"password": "tanpaangka"},
         {"password": "Password harus mengandung huruf dan angka."}),
        ({"password": "12345678"},
         {"password": "Password harus mengandung huruf dan angka."}),
        ({"username": "ab"},
         {"username": "Username 3–50 karakter: huruf kecil, angka, titik, garis bawah atau "
                      "tanda hubung, diawali huruf atau angka."}),
        ({"username": "", "name": "", "business_name": ""},
         {"username": "Username wajib diisi.", "name": "Nama wajib diisi.",
          "business_name": "Nama usaha wajib diisi."}),
        ({"phone": "0812"},
         {"phone": "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."}),
        ({"bank_account": "12-ab"}, {"bank_account": "Nomor rekening hanya boleh berisi angka."}),
    ],
    ids=["taken-username", "taken-business", "taken-both", "short-password",
         "password-no-digit", "password-no-letter", "bad-username", "empty", "bad-phone",
         "bad-bank-account"],
)
def test_create_mitra_validation(world, fields, expected):
    args = {"username": "mitra3", "password": "Rahasia123", "name": "Joko",
            "business_name": "Net Cempaka", **fields}
    with pytest.raises(ValidationFailed) as exc:
        users.create_mitra(world.admin, **args)
    assert exc.value.details == expected
    with new_session() as s:
        assert len(s.exec(select(User)).all()) == 3


# --- activation --------------------------------------------------------------------------


def test_cannot_deactivate_a_mitra_who_owns_subscribers(world):
    mitra1 = world.user_id("mitra1")
    with pytest.raises(Conflict) as exc:
        users.set_user_active(world.admin, mitra1, False)
    assert "2 pelanggan" in exc.value.message
    assert "WiFi Sukamaju" in exc.value.message

    with new_session() as s:
        assert s.get(User, mitra1).is_active is True
    assert users.get_profile(world.mitra_a).username == "mitra1"
    assert audit_rows("user.deactivate") == []


def test_deactivate_and_reactivate_are_audited_once(world):
    mitra2 = world.user_id("mitra2")
    users.set_user_active(world.admin, mitra2, False)
    users.set_user_active(world.admin, mitra2, False)  # already inactive: no-op
    users.set_user_active(world.admin, mitra2, True)

    assert [log.resource_id for log in audit_rows("user.deactivate")] == [mitra2]
    assert [log.resource_id for log in audit_rows("user.activate")] == [mitra2]


def test_set_user_active_only_targets_mitra(world):
    with pytest.raises(NotFound, match="Mitra tidak ditemukan."):
        users.set_user_active(world.admin, world.admin.user_id, False)
    with pytest.raises(NotFound):
        users.set_user_active(world.admin, uuid.uuid4(), False)


# --- mitra management --------------------------------------------------------------------


def _pkg_id(name: str = "Paket 10 Mbps") -> uuid.UUID:
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def _add_customer(actor, name: str, phone: str, owner_id=None) -> uuid.UUID:
    return customers.create_customer(actor, name=name, phone=phone, package_id=_pkg_id(),
                                     billing_date=5, owner_id=owner_id)


def test_list_mitra_counts_subscribers_per_mitra_in_sql(world):
    ahmad, dewi = sorted(world.customers_of(world.mitra_a), key=lambda c: c.name)
    customers.set_isolated(world.admin, ahmad.id, True, "Telat bayar")
    _add_customer(world.mitra_a, "Eko", "081200000001")
    gone = _add_customer(world.mitra_a, "Fajar", "081200000002")
    customers.set_inactive(world.admin, gone, True)
    _add_customer(world.mitra_b, "Gita", "081200000003")

    page = users.list_mitra(world.admin)

    # The superadmin is an owner but not a mitra, so it is not listed.
    assert [(m.business_name, m.username, m.customer_count, m.active_count,
             m.isolated_count) for m in page.items] == [
        ("Net Mekarjaya", "mitra2", 1, 1, 0),
        ("WiFi Sukamaju", "mitra1", 4, 2, 1),
    ]
    assert (page.total, page.page, page.per_page, page.pages) == (2, 1, 20, 1)
    row = page.items[1]
    assert (row.id, row.name, row.phone, row.bank_name, row.is_active) == (
        world.mitra_a.user_id, "Budi Santoso", "", "", True)
    assert row.created_at.tzinfo is not None
    assert users.get_mitra(world.admin, world.mitra_a.user_id) == row


def test_list_mitra_search_and_inactive_filter(world):
    def names(**kw):
        return [m.business_name for m in users.list_mitra(world.admin, **kw).items]

    assert names(search="  sukaMAJU ") == ["WiFi Sukamaju"]
    assert names(search="SITI") == ["Net Mekarjaya"]  # by name
    assert names(search="mitra2") == ["Net Mekarjaya"]  # by username
    assert names(search="mitra") == ["Net Mekarjaya", "WiFi Sukamaju"]
    assert names(search="%") == [] and names(search="pusat") == []
    users.set_user_active(world.admin, world.mitra_b.user_id, False)
    assert names() == ["Net Mekarjaya", "WiFi Sukamaju"]
    assert names(include_inactive=False) == ["WiFi Sukamaju"]
    assert users.list_mitra(world.admin).items[0].is_active is False


def test_list_mitra_pages_in_sql_ordered_by_business_name(world):
    for i in range(21):
        world.new_mitra(f"mitra-{i:02d}", f"Area {i:02d}")
    first = users.list_mitra(world.admin)
    assert (first.total, first.pages, len(first.items)) == (23, 2, 20)
    assert [m.business_name for m in first.items[:2]] == ["Area 00", "Area 01"]
    second = users.list_mitra(world.admin, page=2)
    assert [m.business_name for m in second.items] == [
        "Area 20", "Net Mekarjaya", "WiFi Sukamaju"]
    assert users.list_mitra(world.admin, page=3).items == []
    assert users.list_mitra(world.admin, page=0).page == 1
    assert users.list_mitra(world.admin, search="area 1").total == 10


def test_get_mitra_only_finds_mitra(world):
    with pytest.raises(NotFound, match="Mitra tidak ditemukan."):
        users.get_mitra(world.admin, world.admin.user_id)
    with pytest.raises(NotFound, match="Mitra tidak ditemukan."):
        users.get_mitra(world.admin, uuid.uuid4())


def test_update_mitra_changes_details_and_audits_before_and_after(world):
    mitra2 = world.mitra_b.user_id
    row = users.update_mitra(
        world.admin, mitra2, name=" Siti R. ", business_name="Net Mekarjaya Raya",
        phone="0857-1111-2222", bank_name="BRI", bank_account="0011 2233",
        bank_holder="Siti Rahayu")

    assert (row.name, row.business_name, row.phone, row.bank_name, row.bank_account,
            row.bank_holder, row.username) == (
        "Siti R.", "Net Mekarjaya Raya", "6285711112222", "BRI", "0011 2233",
        "Siti Rahayu", "mitra2")
    assert users.get_mitra(world.admin, mitra2) == row
    [log] = audit_rows("user.update")
    assert (log.user_id, log.resource, log.resource_id) == (world.admin.user_id, "users",
                                                            mitra2)
    assert log.meta == {"changes": {
        "name": {"from": "Siti Rahayu", "to": "Siti R."},
        "business_name": {"from": "Net Mekarjaya", "to": "Net Mekarjaya Raya"},
        "phone": {"from": None, "to": "6285711112222"},
        "bank_name": {"from": None, "to": "BRI"},
        "bank_account": {"from": None, "to": "0011 2233"},
        "bank_holder": {"from": None, "to": "Siti Rahayu"},
    }}
    # The same values again change nothing and write no audit row; empty clears.
    users.update_mitra(world.admin, mitra2, name="Siti R.", business_name="Net Mekarjaya Raya",
                       phone="6285711112222", bank_name="BRI", bank_account="0011 2233",
                       bank_holder="Siti Rahayu")
    assert len(audit_rows("user.update")) == 1
    cleared = users.update_mitra(world.admin, mitra2, name="Siti R.",
                                 business_name="Net Mekarjaya Raya")
    assert (cleared.phone, cleared.bank_name) == ("", "")
    assert audit_rows("user.update")[-1].meta["changes"]["bank_name"] == {"from": "BRI",
                                                                         "to": None}


def test_update_mitra_keeps_business_names_and_usernames_unique(world):
    mitra2 = world.mitra_b.user_id
    with pytest.raises(ValidationFailed) as exc:
        users.update_mitra(world.admin, mitra2, name="Siti", business_name=" wifi SUKAMAJU ")
    assert exc.value.details == {"business_name": "Nama usaha sudah dipakai."}
    with pytest.raises(ValidationFailed) as exc:
        users.update_mitra(world.admin, mitra2, name="Siti", business_name="Net Mekarjaya",
                           username="MITRA1")
    assert exc.value.details == {"username": "Username sudah dipakai."}
    with pytest.raises(ValidationFailed) as exc:
        users.update_mitra(world.admin, mitra2, name="Siti", business_name="fibernode pusat",
                           username="superadmin")
    assert exc.value.details == {"username": "Username sudah dipakai.",
                                 "business_name": "Nama usaha sudah dipakai."}
    # Its own name in another case is not a clash.
    row = users.update_mitra(world.admin, mitra2, name="Siti", business_name="NET MEKARJAYA")
    assert row.business_name == "NET MEKARJAYA"
    assert users.get_mitra(world.admin, world.mitra_a.user_id).business_name == "WiFi Sukamaju"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "", "business_name": " "},
         {"name": "Nama wajib diisi.", "business_name": "Nama usaha wajib diisi."}),
        ({"business_name": "x" * 256}, {"business_name": "Nama usaha maksimal 255 karakter."}),
        ({"username": "A b"},
         {"username": "Username 3–50 karakter: huruf kecil, angka, titik, garis bawah atau "
                      "tanda hubung, diawali huruf atau angka."}),
        ({"username": ""}, {"username": "Username wajib diisi."}),
        ({"phone": "0812"},
         {"phone": "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."}),
        ({"bank_account": "12-ab"}, {"bank_account": "Nomor rekening hanya boleh berisi angka."}),
    ],
    ids=["empty", "long-business", "bad-username", "empty-username", "bad-phone",
         "bad-bank-account"],
)
def test_update_mitra_validation(world, fields, expected):
    args = {"name": "Siti", "business_name": "Net Mekarjaya", **fields}
    with pytest.raises(ValidationFailed) as exc:
        users.update_mitra(world.admin, world.mitra_b.user_id, **args)
    assert exc.value.details == expected
    assert users.get_mitra(world.admin, world.mitra_b.user_id).name == "Siti Rahayu"
    assert audit_rows("user.update") == []


def test_update_mitra_username_change_moves_the_login(world):
    row = users.update_mitra(world.admin, world.mitra_b.user_id, name="Siti Rahayu",
                             business_name="Net Mekarjaya", username="  Siti.Net ")
    assert row.username == "siti.net"
    assert audit_rows("user.update")[0].meta == {
        "changes": {"username": {"from": "mitra2", "to": "siti.net"}}}
    assert auth.login(Actor.anonymous("10.7.0.2"), "siti.net", MITRA_PASSWORD).actor.user_id \
        == world.mitra_b.user_id
    with pytest.raises(LoginFailed):
        auth.login(Actor.anonymous("10.7.0.2"), "mitra2", MITRA_PASSWORD)


def test_update_mitra_only_targets_mitra(world):
    with pytest.raises(NotFound, match="Mitra tidak ditemukan."):
        users.update_mitra(world.admin, world.admin.user_id, name="Admin",
                           business_name="FiberNode Pusat")
    with pytest.raises(NotFound):
        users.update_mitra(world.admin, uuid.uuid4(), name="X", business_name="Y")


def test_reset_mitra_password_revokes_sessions_and_the_new_one_works(world):
    mitra2 = world.mitra_b.user_id
    token = auth.login(Actor.anonymous("10.7.0.3"), "mitra2", MITRA_PASSWORD).token
    assert auth.resolve_session(token) is not None

    users.reset_mitra_password(world.admin, mitra2, "LupaLagi2026")

    assert auth.resolve_session(token) is None
    with new_session() as s:
        live = s.exec(select(UserSession).where(UserSession.user_id == mitra2,
                                                UserSession.revoked_at.is_(None))).all()
        reasons = {r.revoked_reason for r in s.exec(
            select(UserSession).where(UserSession.user_id == mitra2)).all()}
        stored_hash = s.get(User, mitra2).password_hash
    assert live == [] and reasons == {"password_reset"}
    with pytest.raises(LoginFailed):
        auth.login(Actor.anonymous("10.7.0.3"), "mitra2", MITRA_PASSWORD)
    assert auth.login(Actor.anonymous("10.7.0.3"), "mitra2", "LupaLagi2026").actor.user_id \
        == mitra2
    # Other mitra keep their sessions.
    assert users.get_profile(world.mitra_a).username == "mitra1"

    [log] = audit_rows("user.password_reset")
    assert (log.user_id, log.resource_id) == (world.admin.user_id, mitra2)
    assert log.meta == {"username": "mitra2", "revoked_sessions": 2}
    assert "LupaLagi2026" not in str(log.meta) and stored_hash not in str(log.meta)
    assert stored_hash.startswith("$argon2id$")


@pytest.mark.parametrize(("password", "message"), [
    ("Ab1", "Password minimal 8 karakter."),
    ("tanpaangka", "Password harus mengandung huruf dan angka."),
    ("", "Password minimal 8 karakter."),
])
def test_reset_mitra_password_validation(world, password, message):
    with pytest.raises(ValidationFailed) as exc:
        users.reset_mitra_password(world.admin, world.mitra_b.user_id, password)
    assert exc.value.details == {"new_password": message}
    assert audit_rows("user.password_reset") == []
    with pytest.raises(NotFound):
        users.reset_mitra_password(world.admin, world.admin.user_id, "Rahasia123")


def test_delete_mitra_refused_while_it_owns_subscribers(world):
    mitra1 = world.mitra_a.user_id
    with pytest.raises(Conflict) as exc:
        users.delete_mitra(world.admin, mitra1)
    assert exc.value.message == ("Mitra WiFi Sukamaju masih memiliki 2 pelanggan. Pindahkan "
                                 "atau hapus pelanggan tersebut terlebih dahulu.")
    assert users.get_mitra(world.admin, mitra1).customer_count == 2
    assert audit_rows("user.delete") == []


def test_delete_mitra_refused_when_history_would_be_lost(world):
    mitra1 = world.mitra_a.user_id
    ahmad = sorted(world.customers_of(world.mitra_a), key=lambda c: c.name)[0]
    with new_session() as s:
        s.add(Invoice(customer_id=ahmad.id, owner_id=mitra1, period="2026-02",
                      amount=100_000, total_amount=100_000, due_date=clock.today()))
        s.commit()
    # Moved subscribers leave their issued invoices with the old owner.
    customers.move_customers(world.admin, [c.id for c in world.customers_of(world.mitra_a)],
                             world.mitra_b.user_id)

    with pytest.raises(Conflict) as exc:
        users.delete_mitra(world.admin, mitra1)
    assert exc.value.message.startswith(
        "Mitra WiFi Sukamaju sudah memiliki riwayat (1 tagihan, ")
    assert "catatan aktivitas" in exc.value.message
    assert exc.value.message.endswith("Nonaktifkan mitra ini sebagai gantinya.")
    assert users.get_mitra(world.admin, mitra1).customer_count == 0

    assert audit_rows("user.delete") == []
    # Deactivation is the way out, and is allowed now that it owns no subscribers.
    users.set_user_active(world.admin, mitra1, False)
    assert users.get_mitra(world.admin, mitra1).is_active is False


def test_delete_mitra_refused_once_it_has_used_its_account(world):
    # Deleting would leave its own audit rows without an author ("sistem" in the log).
    with pytest.raises(Conflict) as exc:
        users.delete_mitra(world.admin, world.mitra_b.user_id)
    assert exc.value.message == (
        "Mitra Net Mekarjaya sudah memiliki riwayat (1 catatan aktivitas) yang harus tetap "
        "tersimpan, sehingga tidak bisa dihapus. Nonaktifkan mitra ini sebagai gantinya.")
    assert users.get_mitra(world.admin, world.mitra_b.user_id).username == "mitra2"


def test_delete_unused_mitra_removes_it_and_its_whatsapp_link(world):
    new_id = world.new_mitra("mitra3", "Net Cempaka")
    now = clock.now()
    with new_session() as s:
        wa = WaSession(user_id=new_id)
        s.add(wa)
        s.flush()
        s.add(WaMessageQueue(session_id=wa.id, owner_id=new_id, phone="6281200000009",
                             content="Halo", scheduled_at=now, idempotency_key="custom:test"))
        s.add(WaMessageLog(session_id=wa.id, message_type="manual", phone="6281200000009",
                           content="Halo", status="sent"))
        s.add(UserSession(user_id=new_id, token_hash="x" * 64, expires_at=now))
        s.commit()

    users.delete_mitra(world.admin, new_id)

    with pytest.raises(NotFound):
        users.get_mitra(world.admin, new_id)
    with new_session() as s:
        assert s.get(User, new_id) is None
        assert s.exec(select(WaSession)).all() == []
        assert s.exec(select(WaMessageQueue)).all() == []
        assert s.exec(select(UserSession).where(UserSession.user_id == new_id)).all() == []
        # What was already sent stays in the message log.
        [sent] = s.exec(select(WaMessageLog)).all()
        assert sent.session_id is None
    [log] = audit_rows("user.delete")
    assert (log.user_id, log.resource, log.resource_id) == (world.admin.user_id, "users",
                                                            new_id)
    assert log.meta == {"before": {"username": "mitra3", "name": "Mitra3",
                                   "business_name": "Net Cempaka", "phone": None,
                                   "is_active": True},
                        "dropped_queued_messages": 1}
    # The audit row of its creation survives, and the names are free again.
    assert [r.resource_id for r in audit_rows("user.create")][-1] == new_id
    assert world.new_mitra("mitra3", "Net Cempaka") != new_id
    with pytest.raises(NotFound):
        users.delete_mitra(world.admin, world.admin.user_id)


MITRA_ADMIN_CALLS = {
    "list_mitra": lambda w: users.list_mitra(w.mitra_a),
    "get_mitra": lambda w: users.get_mitra(w.mitra_a, w.mitra_a.user_id),
    "update_mitra": lambda w: users.update_mitra(w.mitra_a, w.mitra_a.user_id, name="Budi",
                                                 business_name="WiFi Sukamaju"),
    "reset_mitra_password": lambda w: users.reset_mitra_password(w.mitra_a, w.mitra_b.user_id,
                                                                 "Rahasia123"),
    "delete_mitra": lambda w: users.delete_mitra(w.mitra_a, w.mitra_b.user_id),
}


@pytest.mark.parametrize("call", MITRA_ADMIN_CALLS.values(), ids=MITRA_ADMIN_CALLS.keys())
def test_mitra_cannot_manage_mitra(world, call):
    with new_session() as s:
        before = len(s.exec(select(ActivityLog)).all())
    with pytest.raises(PermissionDenied):
        call(world)
    with new_session() as s:
        assert len(s.exec(select(ActivityLog)).all()) == before
    assert users.get_mitra(world.admin, world.mitra_b.user_id).name == "Siti Rahayu"


def test_a_nul_character_in_a_search_is_dropped_not_a_server_error(world):
    # Found by the API fuzz test: GET /api/users?search=%003 answered 500.
    found = users.list_mitra(world.admin, search="\x00sukamaju\x00").items
    assert [m.business_name for m in found] == ["WiFi Sukamaju"]
    assert customers.list_customers(world.admin, search="\x00").total == \
        customers.list_customers(world.admin).total
