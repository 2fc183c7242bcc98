"""Subscribers: ownership, the mitra field restriction, validation, NIK, lists, status."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, CustomerStatus, Invoice, Package
from fibernode.services import customers, users
from fibernode.services.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.factories import superadmin_id

NIK = "3201234567890001"


def pkg_id(name: str = "Paket 10 Mbps"):
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def row(customer_id) -> Customer:
    with new_session() as s:
        return s.get(Customer, customer_id)


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


def add(actor, **kw):
    values = {"name": "Budi", "phone": "081211112222", "package_id": pkg_id(),
              "billing_date": 5}
    values.update(kw)
    return customers.create_customer(actor, **values)


def first_of(world, actor) -> uuid.UUID:
    return sorted(world.customers_of(actor), key=lambda c: c.name)[0].id


# --- create --------------------------------------------------------------------------------


def test_mitra_creates_its_own_customer(world):
    cid = add(world.mitra_a, name="  Citra ", phone="0812-3456-7890", discount=20_000,
              address=" Jl. Mawar 1 ", notes="")
    c = row(cid)
    assert c.owner_id == world.mitra_a.user_id
    assert (c.name, c.phone, c.discount, c.total_bill, c.status) == (
        "Citra", "6281234567890", 20_000, 80_000, CustomerStatus.ACTIVE)
    assert c.address == "Jl. Mawar 1" and c.notes is None and c.nik is None
    assert c.register_date == clock.today()
    [log] = [x for x in logs("customer.create") if x.resource_id == cid]
    assert log.user_id == world.mitra_a.user_id
    assert log.meta["total_bill"] == 80_000 and log.meta["owner_id"] == str(c.owner_id)


def test_mitra_cannot_create_for_another_owner(world):
    with pytest.raises(PermissionDenied):
        add(world.mitra_a, owner_id=world.mitra_b.user_id)
    # Naming itself is fine.
    assert row(add(world.mitra_a, owner_id=world.mitra_a.user_id)).owner_id == \
        world.mitra_a.user_id


def test_superadmin_creates_for_any_active_owner(world):
    assert row(add(world.admin)).owner_id == superadmin_id()
    users.set_user_active(world.admin, world.mitra_b.user_id, False)
    with pytest.raises(ValidationFailed) as exc:
        add(world.admin, owner_id=world.mitra_b.user_id, phone="081211113333")
    assert "owner_id" in exc.value.details
    with pytest.raises(ValidationFailed):
        add(world.admin, owner_id=uuid.uuid4())
    cid = add(world.admin, owner_id=world.mitra_a.user_id, register_date=date(2025, 1, 2))
    assert row(cid).owner_id == world.mitra_a.user_id
    assert row(cid).register_date == date(2025, 1, 2)


@pytest.mark.parametrize("raw", ["0812-3456-7890", "+62 812 3456 7890", "6281234567890",
                                 "81234567890"])
def test_phone_is_normalised(world, raw):
    assert row(add(world.admin, phone=raw)).phone == "6281234567890"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("phone", "", "Nomor telepon wajib diisi."),
    ("phone", "12345", "Nomor telepon harus diawali 62 (contoh: 6281234567890)."),
    ("phone", "0812", "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."),
    ("phone", "08123456789012345", "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."),
    ("billing_date", 0, "Tanggal tagihan harus antara 1 dan 28."),
    ("billing_date", 29, "Tanggal tagihan harus antara 1 dan 28."),
    ("billing_date", "5", "Tanggal tagihan harus berupa angka bulat."),
    ("discount", -1, "Diskon tidak boleh negatif."),
    ("discount", 100_001, "Diskon tidak boleh melebihi harga paket (Rp 100.000)."),
    ("nik", "320123456789000", "NIK harus tepat 16 digit angka."),
    ("nik", "32012345678900012", "NIK harus tepat 16 digit angka."),
    ("nik", "320123456789000X", "NIK harus tepat 16 digit angka."),
    ("name", "   ", "Nama pelanggan wajib diisi."),
    ("name", "x" * 256, "Nama pelanggan maksimal 255 karakter."),
    ("package_id", uuid.uuid4(), "Paket tidak ditemukan atau sudah tidak aktif."),
])
def test_create_validation(world, field, value, message):
    with pytest.raises(ValidationFailed) as exc:
        add(world.mitra_a, **{field: value})
    assert exc.value.details[field] == message
    assert exc.value.message


def test_create_boundaries(world):
    # Paket 10 Mbps costs Rp 100.000: a discount of all of it is allowed (total 0).
    low = row(add(world.admin, billing_date=1, discount=100_000, phone="081200000001"))
    assert (low.billing_date, low.discount, low.total_bill, low.phone) == (
        1, 100_000, 0, "6281200000001")
    high = row(add(world.admin, billing_date=28, phone="081200000002", name="x" * 255))
    assert (high.billing_date, high.name, high.discount, high.total_bill) == (
        28, "x" * 255, 0, 100_000)


# --- NIK -----------------------------------------------------------------------------------


@pytest.mark.both_dialects("the raw NIK column is read with each dialect's UUID encoding")
def test_nik_is_encrypted_at_rest_and_masked_for_mitra(world, db):
    cid = add(world.mitra_a, nik="3201 2345 6789 0001")
    with db.connect() as conn:
        raw = conn.execute(sa.text("SELECT nik FROM customers WHERE id = :id"),
                           {"id": cid if db.dialect.name == "postgresql" else cid.hex}).scalar()
    assert raw and raw.startswith("v1:") and NIK not in raw
    admin_view = customers.get_customer(world.admin, cid)
    assert (admin_view.nik, admin_view.nik_masked) == (NIK, "3201********0001")
    mitra_view = customers.get_customer(world.mitra_a, cid)
    assert mitra_view.nik is None and mitra_view.nik_masked == "3201********0001"
    listed = {c.id: c for c in customers.list_customers(world.admin).items}[cid]
    assert listed.nik is None and listed.nik_masked == "3201********0001"
    # The audit trail never holds the plain NIK.
    [log] = [x for x in logs("customer.create") if x.resource_id == cid]
    assert NIK not in str(log.meta) and log.meta["nik"] == "diisi"


def test_nik_change_is_audited_without_the_value(world):
    cid = add(world.admin, nik=NIK)
    customers.update_customer(world.admin, cid, nik="3201234567890002")
    assert customers.get_customer(world.admin, cid).nik == "3201234567890002"
    [log] = logs("customer.update")
    assert log.meta["changes"] == {"nik": "diubah"}
    assert "3201234567890002" not in str(log.meta) and NIK not in str(log.meta)
    # The same NIK again is no change at all.
    customers.update_customer(world.admin, cid, nik="3201234567890002")
    assert len(logs("customer.update")) == 1
    customers.update_customer(world.admin, cid, nik="")
    assert row(cid).nik is None
    assert customers.get_customer(world.admin, cid).nik_masked == ""


def test_mitra_cannot_change_nik(world):
    cid = add(world.mitra_a)
    with pytest.raises(PermissionDenied) as exc:
        customers.update_customer(world.mitra_a, cid, nik=NIK)
    assert exc.value.message == "Mitra hanya boleh mengubah nomor telepon dan diskon."


# --- update --------------------------------------------------------------------------------


def test_mitra_updates_phone_and_discount_and_total_follows(world):
    cid = first_of(world, world.mitra_a)  # Ahmad Fauzi, Paket 10 Mbps, no discount
    view = customers.update_customer(world.mitra_a, cid, phone="+62 811 2222 3333",
                                     discount=15_000)
    assert (view.phone, view.discount, view.total_bill) == ("6281122223333", 15_000, 85_000)
    c = row(cid)
    assert (c.phone, c.discount, c.total_bill) == ("6281122223333", 15_000, 85_000)
    [log] = logs("customer.update")
    assert log.user_id == world.mitra_a.user_id
    assert log.meta["changes"] == {
        "phone": {"from": "6281234567890", "to": "6281122223333"},
        "discount": {"from": 0, "to": 15_000},
        "total_bill": {"from": 100_000, "to": 85_000},
    }


@pytest.mark.parametrize("fields", [
    {"name": "Lain"}, {"package_id": None}, {"billing_date": 3}, {"address": "Jl."},
    {"notes": "x"}, {"register_date": date(2025, 1, 1)}, {"phone": "081299990000", "name": "L"},
])
def test_mitra_may_change_only_phone_and_discount(world, fields):
    cid = first_of(world, world.mitra_a)
    before = row(cid)
    with pytest.raises(PermissionDenied) as exc:
        customers.update_customer(world.mitra_a, cid, **fields)
    assert exc.value.message == "Mitra hanya boleh mengubah nomor telepon dan diskon."
    after = row(cid)
    assert (after.name, after.phone, after.billing_date) == (
        before.name, before.phone, before.billing_date)
    assert logs("customer.update") == []


def test_unknown_field_is_a_programming_error(world):
    with pytest.raises(TypeError):
        customers.update_customer(world.admin, first_of(world, world.mitra_a), status="x")


def test_mitra_update_validation(world):
    cid = first_of(world, world.mitra_a)
    with pytest.raises(ValidationFailed) as exc:
        customers.update_customer(world.mitra_a, cid, discount=100_001)
    assert exc.value.details == {"discount": "Diskon tidak boleh melebihi harga paket "
                                             "(Rp 100.000)."}
    with pytest.raises(ValidationFailed) as exc:
        customers.update_customer(world.mitra_a, cid, phone="123")
    assert "phone" in exc.value.details


def test_superadmin_updates_any_field_and_package_change_recomputes(world):
    cid = first_of(world, world.mitra_a)
    customers.update_customer(world.admin, cid, discount=20_000)
    view = customers.update_customer(
        world.admin, cid, name="Ahmad F.", package_id=pkg_id("Paket 50 Mbps"),
        billing_date=28, address="Jl. Melati", notes="Pojok", register_date=date(2024, 5, 6))
    assert (view.name, view.package_name, view.billing_date, view.total_bill) == (
        "Ahmad F.", "Paket 50 Mbps", 28, 230_000)
    c = row(cid)
    assert (c.address, c.notes, c.register_date, c.total_bill) == (
        "Jl. Melati", "Pojok", date(2024, 5, 6), 230_000)
    changes = logs("customer.update")[-1].meta["changes"]
    assert changes["total_bill"] == {"from": 80_000, "to": 230_000}
    assert changes["package_id"]["to"] == str(pkg_id("Paket 50 Mbps"))


def test_package_change_rules(world):
    cid = first_of(world, world.mitra_a)
    customers.update_customer(world.admin, cid, package_id=pkg_id("Paket 50 Mbps"),
                              discount=120_000)
    # The discount would exceed the cheaper package's price.
    with pytest.raises(ValidationFailed) as exc:
        customers.update_customer(world.admin, cid, package_id=pkg_id("Paket 10 Mbps"))
    assert exc.value.details == {"discount": "Diskon tidak boleh melebihi harga paket "
                                             "(Rp 100.000)."}
    # Moving to an inactive package is refused.
    from fibernode.services import packages

    packages.set_package_active(world.admin, pkg_id("Paket 30 Mbps"), False)
    with pytest.raises(ValidationFailed) as exc:
        customers.update_customer(world.admin, cid, package_id=pkg_id("Paket 30 Mbps"))
    assert "package_id" in exc.value.details
    assert row(cid).package_id == pkg_id("Paket 50 Mbps")


# --- ownership -----------------------------------------------------------------------------


def test_other_mitra_can_neither_read_nor_change(world):
    cid = first_of(world, world.mitra_a)
    with pytest.raises(NotFound) as exc:
        customers.get_customer(world.mitra_b, cid)
    assert exc.value.message == "Pelanggan tidak ditemukan."
    with pytest.raises(NotFound):
        customers.update_customer(world.mitra_b, cid, phone="081233334444")
    with pytest.raises(NotFound):
        customers.update_customer(world.mitra_b, cid, discount=1)
    # Unknown ids look exactly the same.
    with pytest.raises(NotFound) as exc2:
        customers.get_customer(world.mitra_b, uuid.uuid4())
    assert exc2.value.message == exc.value.message
    page = customers.list_customers(world.mitra_b)
    assert page.total == 0 and page.items == []
    assert customers.list_customers(world.mitra_b, search="Ahmad").total == 0
    assert customers.list_customers(world.mitra_b, search="0812").total == 0
    assert row(cid).phone == "6281234567890"
    # Mitra B's customers are equally invisible to mitra A.
    bid = add(world.mitra_b, name="Milik B")
    with pytest.raises(NotFound):
        customers.get_customer(world.mitra_a, bid)
    with pytest.raises(NotFound):
        customers.update_customer(world.mitra_a, bid, discount=5)
    assert "Milik B" not in {c.name for c in customers.list_customers(world.mitra_a).items}
    with pytest.raises(PermissionDenied):
        customers.list_customers(world.mitra_a, owner_id=world.mitra_b.user_id)


def test_lists_are_scoped(world):
    assert customers.list_customers(world.mitra_a).total == 2
    assert customers.list_customers(world.admin).total == 3
    assert customers.list_customers(world.admin, owner_id=world.mitra_a.user_id).total == 2
    assert {c.area for c in customers.list_customers(world.admin).items} == {
        "WiFi Sukamaju", "FiberNode Pusat"}


# --- list ----------------------------------------------------------------------------------


def test_pagination_in_sql(world):
    for i in range(25):
        add(world.mitra_b, name=f"Pelanggan {i:02d}", phone=f"0813000000{i:02d}")
    first = customers.list_customers(world.mitra_b)
    assert (first.total, first.page, first.per_page, first.pages) == (25, 1, 20, 2)
    assert len(first.items) == 20 and first.items[0].name == "Pelanggan 00"
    second = customers.list_customers(world.mitra_b, page=2)
    assert [c.name for c in second.items] == [f"Pelanggan {i}" for i in range(20, 25)]
    assert customers.list_customers(world.mitra_b, page=3).items == []
    assert customers.list_customers(world.mitra_b, page=0).page == 1
    desc = customers.list_customers(world.mitra_b, sort="-name")
    assert desc.items[0].name == "Pelanggan 24"


def test_search_filters_and_sort(world):
    admin = world.admin
    assert [c.name for c in customers.list_customers(admin, search="aHMAD").items] == [
        "Ahmad Fauzi"]
    assert [c.name for c in customers.list_customers(admin, search="  dewi ").items] == [
        "Dewi Lestari"]
    # Phone digits, with or without the local 0 prefix and separators.
    assert [c.name for c in customers.list_customers(admin, search="0813-334").items] == [
        "Rudi Hartono"]
    assert [c.name for c in customers.list_customers(admin, search="98765").items] == [
        "Dewi Lestari"]
    assert customers.list_customers(admin, search="%").total == 0
    assert customers.list_customers(admin, search="tidak ada").total == 0
    assert [c.name for c in customers.list_customers(
        admin, package_id=pkg_id("Paket 50 Mbps")).items] == ["Rudi Hartono"]
    assert [c.name for c in customers.list_customers(admin, billing_date=10).items] == [
        "Dewi Lestari"]
    customers.set_isolated(admin, first_of(world, world.mitra_a), True, "Telat bayar")
    assert [c.name for c in customers.list_customers(admin, status="isolated").items] == [
        "Ahmad Fauzi"]
    assert customers.list_customers(admin, status=CustomerStatus.ACTIVE).total == 2
    assert [c.name for c in customers.list_customers(admin, sort="-billing_date").items] == [
        "Rudi Hartono", "Dewi Lestari", "Ahmad Fauzi"]
    assert [c.total_bill for c in customers.list_customers(admin, sort="total_bill").items] == [
        100_000, 140_000, 250_000]
    with pytest.raises(ValidationFailed):
        customers.list_customers(admin, sort="password")
    with pytest.raises(ValidationFailed):
        customers.list_customers(admin, status="gone")


# --- delete, status, move ------------------------------------------------------------------


def test_delete_customer(world):
    cid = first_of(world, world.mitra_a)
    c = row(cid)
    with new_session() as s:
        s.add(Invoice(customer_id=cid, owner_id=c.owner_id, period="2026-02", amount=100_000,
                      total_amount=100_000, due_date=clock.today()))
        s.commit()
    customers.delete_customer(world.admin, cid)
    assert row(cid) is None
    with new_session() as s:
        assert s.exec(select(Invoice).where(Invoice.customer_id == cid)).first() is None
    [log] = logs("customer.delete")
    assert log.resource_id == cid and log.meta["before"]["name"] == "Ahmad Fauzi"
    with pytest.raises(NotFound):
        customers.delete_customer(world.admin, cid)


def test_isolate_and_restore(world):
    cid = first_of(world, world.mitra_a)
    with pytest.raises(ValidationFailed) as exc:
        customers.set_isolated(world.admin, cid, True, "  ")
    assert exc.value.details == {"reason": "Alasan isolir wajib diisi."}
    assert customers.set_isolated(world.admin, cid, True, "Belum bayar 2 bulan") is True
    assert row(cid).status == CustomerStatus.ISOLATED
    [log] = logs("customer.isolate")
    assert log.meta == {"changes": {"status": {"from": "active", "to": "isolated"}},
                        "reason": "Belum bayar 2 bulan"}
    assert customers.set_isolated(world.admin, cid, True, "lagi") is False
    assert len(logs("customer.isolate")) == 1
    assert customers.set_isolated(world.admin, cid, False, "") is True
    assert row(cid).status == CustomerStatus.ACTIVE
    assert logs("customer.unisolate")[0].meta["changes"]["status"]["to"] == "active"


def test_inactive_customers(world):
    cid = first_of(world, world.mitra_a)
    customers.set_isolated(world.admin, cid, True, "Telat")
    assert customers.set_inactive(world.admin, cid, True) is True
    assert row(cid).status == CustomerStatus.INACTIVE
    assert logs("customer.deactivate")[0].meta["changes"]["status"] == {
        "from": "isolated", "to": "inactive"}
    with pytest.raises(Conflict):
        customers.set_isolated(world.admin, cid, True, "Telat")
    assert customers.set_inactive(world.admin, cid, True) is False
    assert customers.set_inactive(world.admin, cid, False) is True
    assert row(cid).status == CustomerStatus.ACTIVE
    assert customers.set_inactive(world.admin, cid, False) is False
    assert len(logs("customer.activate")) == 1


def test_move_customers(world):
    ids = [c.id for c in world.customers_of(world.mitra_a)]
    assert customers.move_customers(world.admin, ids + ids[:1], world.mitra_b.user_id) == 2
    assert {row(i).owner_id for i in ids} == {world.mitra_b.user_id}
    moves = logs("customer.move")
    assert {m.resource_id for m in moves} == set(ids)
    assert moves[0].meta["changes"]["owner_id"] == {
        "from": str(world.mitra_a.user_id), "to": str(world.mitra_b.user_id)}
    assert customers.list_customers(world.mitra_a).total == 0
    assert customers.list_customers(world.mitra_b).total == 2
    # Moving to the current owner changes nothing.
    assert customers.move_customers(world.admin, ids, world.mitra_b.user_id) == 0


def test_move_customers_rules(world):
    ids = [c.id for c in world.customers_of(world.mitra_a)]
    with pytest.raises(ValidationFailed):
        customers.move_customers(world.admin, [], world.mitra_b.user_id)
    with pytest.raises(NotFound):
        customers.move_customers(world.admin, [*ids, uuid.uuid4()], world.mitra_b.user_id)
    users.set_user_active(world.admin, world.mitra_b.user_id, False)
    with pytest.raises(ValidationFailed) as exc:
        customers.move_customers(world.admin, ids, world.mitra_b.user_id)
    assert "new_owner_id" in exc.value.details
    # Nothing moved, nothing logged.
    assert {row(i).owner_id for i in ids} == {world.mitra_a.user_id}
    assert logs("customer.move") == []
