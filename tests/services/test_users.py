"""Own profile for everyone, mitra accounts for the superadmin."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, User, UserRole
from fibernode.services import auth, users
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, NotFound, ValidationFailed


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
