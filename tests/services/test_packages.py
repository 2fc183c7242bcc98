"""Internet packages: listing, validation, price changes, soft and hard delete."""

from __future__ import annotations

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, Invoice, Package
from fibernode.services import customers, packages
from fibernode.services.errors import Conflict, NotFound, ValidationFailed


def pkg_id(name: str):
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def customer(name: str) -> Customer:
    with new_session() as s:
        return s.exec(select(Customer).where(Customer.name == name)).one()


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)).all())


def test_list_packages_with_scoped_subscriber_counts(world):
    rows = packages.list_packages(world.admin)
    assert [r.name for r in rows] == ["Paket 10 Mbps", "Paket 20 Mbps", "Paket 30 Mbps",
                                      "Paket 50 Mbps", "Paket 100 Mbps"]
    counts = {r.name: r.subscriber_count for r in rows}
    assert counts == {"Paket 10 Mbps": 1, "Paket 20 Mbps": 1, "Paket 30 Mbps": 0,
                      "Paket 50 Mbps": 1, "Paket 100 Mbps": 0}
    # A mitra counts only its own subscribers.
    mine = {r.name: r.subscriber_count for r in packages.list_packages(world.mitra_a)}
    assert mine["Paket 50 Mbps"] == 0 and mine["Paket 10 Mbps"] == 1
    assert all(r.subscriber_count == 0 for r in packages.list_packages(world.mitra_b))


def test_inactive_packages_only_for_superadmin(world):
    packages.set_package_active(world.admin, pkg_id("Paket 30 Mbps"), False)
    assert "Paket 30 Mbps" not in {r.name for r in packages.list_packages(world.admin)}
    all_rows = packages.list_packages(world.admin, include_inactive=True)
    assert {r.name: r.is_active for r in all_rows}["Paket 30 Mbps"] is False
    for mitra in (world.mitra_a, world.mitra_b):
        names = {r.name for r in packages.list_packages(mitra, include_inactive=True)}
        assert "Paket 30 Mbps" not in names
    assert [log.meta["changes"] for log in logs("package.deactivate")] == [
        {"is_active": {"from": True, "to": False}}]
    packages.set_package_active(world.admin, pkg_id("Paket 30 Mbps"), True)
    assert len(logs("package.activate")) == 1
    # Setting the same state again changes nothing and logs nothing.
    packages.set_package_active(world.admin, pkg_id("Paket 30 Mbps"), True)
    assert len(logs("package.activate")) == 1


def test_create_package(world):
    new_id = packages.create_package(world.admin, "  Paket 200 Mbps ", "200 Mbps", 500_000,
                                     "Khusus bisnis")
    with new_session() as s:
        pkg = s.get(Package, new_id)
        assert (pkg.name, pkg.speed, pkg.price, pkg.description, pkg.is_active) == (
            "Paket 200 Mbps", "200 Mbps", 500_000, "Khusus bisnis", True)
    [log] = [x for x in logs("package.create") if x.resource_id == new_id]
    assert log.meta["price"] == 500_000 and log.user_id == world.admin.user_id


@pytest.mark.parametrize(("args", "field", "message"), [
    (("", "10 Mbps", 1000), "name", "Nama paket wajib diisi."),
    (("P", "", 1000), "speed", "Kecepatan wajib diisi."),
    (("P" * 256, "10 Mbps", 1000), "name", "Nama paket maksimal 255 karakter."),
    (("P", "1" * 51, 1000), "speed", "Kecepatan maksimal 50 karakter."),
    (("P", "10 Mbps", 0), "price", "Harga harus antara Rp 1 dan Rp 100.000.000."),
    (("P", "10 Mbps", -5), "price", "Harga harus antara Rp 1 dan Rp 100.000.000."),
    (("P", "10 Mbps", 100_000_001), "price", "Harga harus antara Rp 1 dan Rp 100.000.000."),
    (("P", "10 Mbps", 1.5), "price", "Harga harus berupa angka bulat (Rupiah)."),
    (("P", "10 Mbps", "1000"), "price", "Harga harus berupa angka bulat (Rupiah)."),
    (("P", "10 Mbps", True), "price", "Harga harus berupa angka bulat (Rupiah)."),
])
def test_create_package_validation(world, args, field, message):
    with pytest.raises(ValidationFailed) as exc:
        packages.create_package(world.admin, *args)
    assert exc.value.details[field] == message


def test_price_bounds_are_inclusive(world):
    packages.create_package(world.admin, "Murah", "1 Mbps", 1)
    packages.create_package(world.admin, "Mahal", "10 Gbps", packages.MAX_PRICE)
    with new_session() as s:
        assert s.get(Package, pkg_id("Murah")).price == 1
        assert s.get(Package, pkg_id("Mahal")).price == 100_000_000
    for price in (0, packages.MAX_PRICE + 1):
        with pytest.raises(ValidationFailed) as exc:
            packages.create_package(world.admin, f"Di luar {price}", "1 Mbps", price)
        assert exc.value.details["price"] == "Harga harus antara Rp 1 dan Rp 100.000.000."


def test_price_change_recomputes_totals_and_keeps_invoice_snapshot(world):
    dewi = customer("Dewi Lestari")  # Paket 20 Mbps (150.000), diskon 10.000
    assert dewi.total_bill == 140_000
    with new_session() as s:
        s.add(Invoice(customer_id=dewi.id, owner_id=dewi.owner_id, period="2026-01",
                      amount=150_000, discount=10_000, total_amount=140_000,
                      due_date=clock.today()))
        s.commit()
    packages.update_package(world.admin, pkg_id("Paket 20 Mbps"), price=175_000)
    assert customer("Dewi Lestari").total_bill == 165_000
    with new_session() as s:
        inv = s.exec(select(Invoice).where(Invoice.customer_id == dewi.id)).one()
        assert (inv.amount, inv.discount, inv.total_amount) == (150_000, 10_000, 140_000)
    [log] = logs("package.update")
    assert log.meta["changes"] == {"price": {"from": 150_000, "to": 175_000}}
    assert log.meta["customers_recomputed"] == 1
    # Other packages' subscribers are untouched.
    assert customer("Ahmad Fauzi").total_bill == 100_000


def test_price_below_a_discount_is_refused(world):
    with pytest.raises(ValidationFailed) as exc:
        packages.update_package(world.admin, pkg_id("Paket 20 Mbps"), price=5_000)
    assert exc.value.details["price"].startswith(
        "Harga baru Rp 5.000 lebih kecil dari diskon 1 pelanggan (diskon terbesar Rp 10.000)")
    with new_session() as s:
        assert s.get(Package, pkg_id("Paket 20 Mbps")).price == 150_000
    assert customer("Dewi Lestari").total_bill == 140_000
    assert logs("package.update") == []
    # Exactly the discount is allowed: the total becomes zero.
    packages.update_package(world.admin, pkg_id("Paket 20 Mbps"), price=10_000)
    assert customer("Dewi Lestari").total_bill == 0


def test_update_other_fields_and_no_op(world):
    pid = pkg_id("Paket 30 Mbps")
    packages.update_package(world.admin, pid, name="Paket 30 Mbps Plus", description="Baru")
    with new_session() as s:
        pkg = s.get(Package, pid)
        assert (pkg.name, pkg.speed, pkg.price, pkg.description) == (
            "Paket 30 Mbps Plus", "30 Mbps", 200_000, "Baru")
    [log] = logs("package.update")
    assert set(log.meta["changes"]) == {"name", "description"}
    packages.update_package(world.admin, pid, name="Paket 30 Mbps Plus")
    assert len(logs("package.update")) == 1
    with pytest.raises(ValidationFailed) as exc:
        packages.update_package(world.admin, pid, name=" ")
    assert exc.value.details == {"name": "Nama paket wajib diisi."}


def test_unknown_package_is_not_found(world):
    import uuid

    for call in (lambda: packages.update_package(world.admin, uuid.uuid4(), price=1),
                 lambda: packages.set_package_active(world.admin, uuid.uuid4(), False),
                 lambda: packages.delete_package(world.admin, uuid.uuid4())):
        with pytest.raises(NotFound):
            call()


def test_hard_delete_refused_while_in_use(world):
    with pytest.raises(Conflict) as exc:
        packages.delete_package(world.admin, pkg_id("Paket 10 Mbps"))
    assert exc.value.message.startswith("Paket masih dipakai oleh 1 pelanggan.")
    # Two more subscribers on the package: the count follows.
    for phone in ("081200000001", "081200000002"):
        customers.create_customer(world.admin, name="X", phone=phone,
                                  package_id=pkg_id("Paket 10 Mbps"), billing_date=1)
    with pytest.raises(Conflict) as exc:
        packages.delete_package(world.admin, pkg_id("Paket 10 Mbps"))
    assert "Paket masih dipakai oleh 3 pelanggan" in exc.value.message
    assert logs("package.delete") == []


def test_hard_delete_of_unused_package(world):
    pid = pkg_id("Paket 100 Mbps")
    packages.delete_package(world.admin, pid)
    with new_session() as s:
        assert s.get(Package, pid) is None
    [log] = logs("package.delete")
    assert log.resource_id == pid and log.meta["before"]["price"] == 350_000


def test_inactive_package_keeps_existing_subscribers(world):
    pid = pkg_id("Paket 10 Mbps")
    packages.set_package_active(world.admin, pid, False)
    ahmad = customer("Ahmad Fauzi")
    assert ahmad.package_id == pid
    # Editing another field of a subscriber on an inactive package still works.
    customers.update_customer(world.mitra_a, ahmad.id, discount=1_000)
    assert customer("Ahmad Fauzi").total_bill == 99_000
    # But nobody new can be put on it.
    with pytest.raises(ValidationFailed) as exc:
        customers.create_customer(world.admin, name="Y", phone="081200000003",
                                  package_id=pid, billing_date=1)
    assert exc.value.details == {"package_id": "Paket tidak ditemukan atau sudah tidak aktif."}


def test_get_package_shows_what_the_list_shows(world):
    rows = {r.id: r for r in packages.list_packages(world.mitra_a)}
    some = next(iter(rows.values()))
    assert packages.get_package(world.mitra_a, some.id) == some
    packages.set_package_active(world.admin, some.id, False)
    with pytest.raises(NotFound, match="Paket tidak ditemukan"):
        packages.get_package(world.mitra_a, some.id)  # a mitra never sees inactive ones
    assert packages.get_package(world.admin, some.id).is_active is False
