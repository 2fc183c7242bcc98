"""The audit browser: system rows, one row's history, Jakarta days, pick lists, and
the readable before → after lines of the log page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, UserRole
from fibernode.pages.admin_activity import describe, short_value
from fibernode.services import activity, customers, maintenance, packages, users
from fibernode.services.context import Actor
from fibernode.services.errors import PermissionDenied, ValidationFailed


def customer_of(world, actor: Actor) -> Customer:
    return sorted(world.customers_of(actor), key=lambda c: c.name)[0]


def test_system_only_lists_rows_without_a_user(world):
    maintenance.cleanup(Actor.system("cleanup"))
    cust = customer_of(world, world.mitra_a)
    customers.update_customer(world.mitra_a, cust.id, phone="081311112222")

    system = activity.list_activity(world.admin, system_only=True)
    assert system.total > 0
    assert {r.username for r in system.rows} == {"sistem"}
    assert "customer.update" not in {r.action for r in system.rows}

    cleanup = activity.list_activity(world.admin, system_only=True,
                                     action_prefix="maintenance.")
    assert [r.action for r in cleanup.rows] == ["maintenance.cleanup"]
    assert cleanup.rows[0].meta["job"] == "cleanup"
    # A user and "no user" at once match nothing.
    assert activity.list_activity(world.admin, system_only=True,
                                  user_id=world.mitra_a.user_id).total == 0

    with new_session() as s:
        with_user = s.exec(select(sa.func.count()).select_from(ActivityLog)
                           .where(ActivityLog.user_id.is_not(None))).one()
    everything = activity.list_activity(world.admin)
    assert everything.total == system.total + with_user


def test_one_rows_history_by_user_and_resource(world):
    cust = customer_of(world, world.mitra_a)
    old_phone = cust.phone
    customers.update_customer(world.mitra_a, cust.id, phone="0813-1111-2222")
    customers.update_customer(world.admin, cust.id, notes="Rumah pagar hijau")
    other = customers.create_customer(world.mitra_b, name="Rina Wati", phone="081355550000",
                                      package_id=packages.list_packages(world.admin)[0].id,
                                      billing_date=5)
    customers.update_customer(world.mitra_b, other, phone="081355556666")

    history = activity.list_activity(world.admin, resource="customers", resource_id=cust.id)
    assert {r.resource_id for r in history.rows} == {str(cust.id)}
    newest, second = history.rows[:2]
    assert (newest.action, newest.username) == ("customer.update", "superadmin")
    assert newest.meta["changes"]["notes"]["to"] == "Rumah pagar hijau"
    assert (second.action, second.username) == ("customer.update", "mitra1")
    assert second.meta["changes"]["phone"] == {"from": old_phone, "to": "6281311112222"}

    by_mitra = activity.list_activity(world.admin, user_id=world.mitra_a.user_id,
                                      resource="customers")
    assert [r.resource_id for r in by_mitra.rows] == [str(cust.id)]
    assert activity.list_activity(world.admin, resource="customers",
                                  action_prefix="customer.update").total == 3
    assert activity.list_activity(world.admin, resource="nothing").total == 0


@pytest.fixture
def around_midnight(world):
    """``test.day`` rows either side of the Jakarta midnights of 10 and 11 March 2026."""
    stamps = {
        "9 23.59": datetime(2026, 3, 9, 16, 59, 59, tzinfo=UTC),
        "10 00.00": datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
        "10 23.59": datetime(2026, 3, 10, 16, 59, 59, tzinfo=UTC),
        "11 00.00": datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
    }
    with new_session() as s:
        for label, at in stamps.items():
            s.add(ActivityLog(action="test.day", resource="things", meta={"at": label},
                              created_at=at))
        s.commit()
    return world


def days(world, **kw) -> list[str]:
    page = activity.list_activity(world.admin, action_prefix="test.day", **kw)
    return sorted(r.meta["at"] for r in page.rows)


def test_date_range_is_in_jakarta_days(around_midnight):
    w = around_midnight
    d10, d11 = date(2026, 3, 10), date(2026, 3, 11)
    assert days(w, date_from=d10, date_to=d10) == ["10 00.00", "10 23.59"]
    assert days(w, date_from=d11) == ["11 00.00"]
    assert days(w, date_to=d10) == ["10 00.00", "10 23.59", "9 23.59"]
    assert days(w, date_from=d10, date_to=d11) == ["10 00.00", "10 23.59", "11 00.00"]
    assert days(w, date_from=date(2026, 3, 12)) == []


def test_date_to_before_date_from_is_refused_in_indonesian(world):
    with pytest.raises(ValidationFailed) as err:
        activity.list_activity(world.admin, date_from=date(2026, 3, 10),
                               date_to=date(2026, 3, 9))
    assert err.value.message == "Tanggal akhir tidak boleh sebelum tanggal awal."
    assert set(err.value.details) == {"date_to"}


def test_filter_options_lists_accounts_and_logged_resources(world):
    gone = world.new_mitra("mitra9", "Net Lama")
    users.set_user_active(world.admin, gone, False)

    options = activity.filter_options(world.admin)
    names = [u.username for u in options.users]
    assert names[0] == "superadmin" and options.users[0].role == UserRole.SUPERADMIN
    assert names[1:] == ["mitra1", "mitra2", "mitra9"]
    assert [u.is_active for u in options.users] == [True, True, True, False]
    assert options.resources == sorted(set(options.resources))
    assert {"customers", "user_sessions", "users"} <= set(options.resources)
    assert None not in options.resources

    with pytest.raises(PermissionDenied):
        activity.filter_options(world.mitra_a)


def test_filter_options_resources_follow_the_log(world):
    before = set(activity.filter_options(world.admin).resources)
    with new_session() as s:
        s.add(ActivityLog(action="test.new", resource="zz_things",
                          created_at=datetime.now(UTC) - timedelta(days=1)))
        s.commit()
    assert set(activity.filter_options(world.admin).resources) == before | {"zz_things"}


# --- the log page's readable detail (pure formatting) ---------------------------------


def test_describe_turns_changes_into_before_after_lines():
    changes, rest = describe({
        "changes": {"phone": {"from": "6281234567890", "to": "6281399998888"},
                    "nik": {"from": None, "to": "3201234567890009"},
                    "is_isolated": {"from": False, "to": True}},
        "owner_id": "3f0c2a1e-0000-4000-8000-000000000001",
    })
    assert changes.split("\n") == [
        "phone: 6281234567890 → 6281399998888",
        "nik: (kosong) → 3201234567890009",
        "is_isolated: tidak → ya",
    ]
    assert rest == "owner_id: 3f0c2a1e-0000-4000-8000-000000000001"


def test_describe_diffs_before_and_after_snapshots():
    changes, rest = describe({
        "amount": 150000, "method": "cash",
        "before": {"paid_amount": 0, "status": "unpaid", "version": 1},
        "after": {"paid_amount": 150000, "status": "paid", "version": 2},
    })
    assert changes.split("\n") == ["paid_amount: 0 → 150000", "status: unpaid → paid",
                                   "version: 1 → 2"]
    assert rest == "amount: 150000 · method: cash"

    text_changes, _ = describe({"key": "reminder", "before": "Halo", "after": "Halo {nama}"})
    assert text_changes == "isi: Halo → Halo {nama}"


def test_describe_cuts_long_values_and_many_lines():
    long = "x" * 500
    changes, rest = describe({"changes": {f"f{i}": {"from": i, "to": long} for i in range(15)},
                              "note": long, "snapshot": {"a": [1, 2], "b": "c"}})
    lines = changes.split("\n")
    assert len(lines) == 13 and lines[-1] == "… 3 perubahan lagi"
    assert lines[0] == "f0: 0 → " + "x" * 39 + "…"
    assert "note: " + "x" * 39 + "…" in rest
    assert 'snapshot: {"a":[1,2],"b":"c"}' in rest
    assert describe(None) == ("", "")
    assert describe({"count": 3}) == ("", "count: 3")


def test_short_value_is_one_line():
    assert short_value("baris satu\n  baris dua") == "baris satu baris dua"
    assert short_value("") == "(kosong)"
    assert short_value(0) == "0"
