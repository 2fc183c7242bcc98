"""The unit of work (one transaction, its audit rows, after-commit hooks) and scoping."""

from __future__ import annotations

import ast
import logging
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, Invoice, Setting, UserRole
from fibernode.services import users
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import AuthenticationRequired, Conflict, PermissionDenied
from fibernode.services.scoping import can_touch_owner, scoped
from fibernode.services.uow import UnauditedMutation, unit_of_work


class Boom(Exception):
    pass


def audit_actions() -> list[str]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog.action)).all())


def setting(key: str) -> str | None:
    with new_session() as s:
        return s.exec(select(Setting.value).where(Setting.key == key)).first()


# --- transaction and audit ---------------------------------------------------------------


def test_audit_row_commits_with_the_change(db):
    with unit_of_work(Actor.system()) as uow:
        uow.session.add(Setting(key="k", value="v"))
        uow.audit("test.write", "settings", None, key="k")
    assert setting("k") == "v"
    assert audit_actions() == ["test.write"]


def test_failure_after_auditing_leaves_neither_change_nor_audit_row(db):
    with pytest.raises(Boom), unit_of_work(Actor.system()) as uow:
        uow.session.add(Setting(key="k", value="v"))
        uow.session.flush()  # the rows really reach the database first
        uow.audit("test.write", "settings", None, key="k")
        uow.session.flush()
        raise Boom()
    assert setting("k") is None
    assert audit_actions() == []


def test_service_errors_roll_back_too(world):
    before = audit_actions()
    with pytest.raises(Conflict):
        users.set_user_active(world.admin, world.user_id("mitra1"), False)
    assert audit_actions() == before


def test_audit_row_records_actor_ip_and_json_safe_meta(world):
    rid = uuid.uuid4()
    with unit_of_work(world.mitra_a.with_client("192.0.2.7", "ua")) as uow:
        uow.audit("test.meta", "things", rid, role=UserRole.MITRA, ids={rid}, n=3,
                  nested={"who": uuid.UUID(int=1)}, nothing=None)
    with new_session() as s:
        log = s.exec(select(ActivityLog).where(ActivityLog.action == "test.meta")).one()
    assert log.user_id == world.mitra_a.user_id
    assert log.ip_address == "192.0.2.7"
    assert log.resource_id == rid
    assert log.meta == {"role": "mitra", "ids": [str(rid)], "n": 3,
                        "nested": {"who": str(uuid.UUID(int=1))}, "nothing": None}


def test_audit_truncates_an_overlong_client_address(db):
    chain = "203.0.113.250, 198.51.100.250, 192.0.2.250, 10.0.0.250"
    with unit_of_work(Actor.anonymous(chain)) as uow:
        uow.audit("test.ip")
    with new_session() as s:
        assert s.exec(select(ActivityLog.ip_address)).one() == chain[:45]


def test_audit_of_a_named_system_job_records_the_job(db):
    with unit_of_work(Actor.system("billing")) as uow:
        uow.audit("test.job")
    with unit_of_work(Actor.system()) as uow:
        uow.audit("test.plain")
    with new_session() as s:
        rows = {r.action: r for r in s.exec(select(ActivityLog)).all()}
    assert rows["test.job"].meta == {"job": "billing"}
    assert rows["test.job"].user_id is None and rows["test.job"].ip_address is None
    assert rows["test.plain"].meta is None


# --- after-commit hooks ------------------------------------------------------------------


def test_after_commit_hooks_run_only_after_the_commit(db):
    seen = []

    def hook():
        # Another connection can already see the committed row.
        seen.append(("hook", setting("k")))

    with unit_of_work(Actor.system()) as uow:
        uow.session.add(Setting(key="k", value="v"))
        uow.audit("test.write", "settings")
        uow.after_commit(hook)
        uow.session.flush()
        seen.append(("body done", None))
    assert seen == [("body done", None), ("hook", "v")]


def test_after_commit_hooks_never_run_on_rollback(db):
    calls = []
    with pytest.raises(Boom), unit_of_work(Actor.system()) as uow:
        uow.after_commit(lambda: calls.append("hook"))
        raise Boom()
    assert calls == []


def test_a_failing_hook_does_not_undo_the_commit(db, caplog):
    calls = []

    def bad_hook():
        raise RuntimeError("notifier down")

    with caplog.at_level(logging.ERROR, logger="fibernode.services.uow"), \
            unit_of_work(Actor.system()) as uow:
        uow.session.add(Setting(key="k", value="v"))
        uow.audit("test.write")
        uow.after_commit(bad_hook)
        uow.after_commit(lambda: calls.append("second"))

    assert setting("k") == "v"
    assert audit_actions() == ["test.write"]
    assert calls == ["second"]  # later hooks still run
    assert "after-commit hook failed" in caplog.text


def test_hooks_run_in_registration_order(db):
    calls = []
    with unit_of_work(Actor.system()) as uow:
        for i in range(3):
            uow.after_commit(lambda i=i: calls.append(i))
    assert calls == [0, 1, 2]


# --- guards and scoping ------------------------------------------------------------------


def test_scoped_rejects_anonymous(world):
    with pytest.raises(AuthenticationRequired):
        scoped(select(Customer), world.anonymous, Customer.owner_id)
    # A user id without a role is not a login either.
    with pytest.raises(AuthenticationRequired):
        scoped(select(Customer), Actor(user_id=world.mitra_a.user_id), Customer.owner_id)


def test_scoped_narrows_mitra_to_their_rows(world):
    def names(actor):
        with new_session() as s:
            stmt = scoped(select(Customer.name), actor, Customer.owner_id)
            return sorted(s.exec(stmt).all())

    assert names(world.mitra_a) == ["Ahmad Fauzi", "Dewi Lestari"]
    assert names(world.mitra_b) == []
    assert names(world.admin) == ["Ahmad Fauzi", "Dewi Lestari", "Rudi Hartono"]
    assert names(Actor.system("report")) == ["Ahmad Fauzi", "Dewi Lestari", "Rudi Hartono"]


def test_can_touch_owner(world):
    a, b = world.mitra_a.user_id, world.mitra_b.user_id
    assert can_touch_owner(world.mitra_a, a)
    assert not can_touch_owner(world.mitra_a, b)
    assert can_touch_owner(world.admin, b)
    assert can_touch_owner(Actor.system(), a)
    assert not can_touch_owner(world.anonymous, None)
    assert not can_touch_owner(world.anonymous, a)


def test_require_guards():
    anonymous = Actor.anonymous("10.0.0.1")
    mitra = Actor(user_id=uuid.uuid4(), role=UserRole.MITRA)
    admin = Actor(user_id=uuid.uuid4(), role=UserRole.SUPERADMIN)
    with pytest.raises(AuthenticationRequired):
        require_user(anonymous)
    with pytest.raises(AuthenticationRequired):
        require_superadmin(anonymous)
    with pytest.raises(PermissionDenied):
        require_superadmin(mitra)
    # A role without a user id (a forged or half-built actor) is not a superadmin.
    with pytest.raises(AuthenticationRequired):
        require_superadmin(Actor(role=UserRole.SUPERADMIN))
    require_user(mitra)
    require_superadmin(admin)
    require_superadmin(Actor.system())


# --- every change is audited (strict mode, on for the whole test suite) -------------------


def test_a_change_without_an_audit_row_is_refused_and_rolled_back(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    with pytest.raises(UnauditedMutation, match="settings"), \
            unit_of_work(world.admin) as uow:
        uow.session.add(Setting(key="lupa", value="audit"))
    assert setting("lupa") is None


def test_bulk_statements_count_as_changes_too(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    with pytest.raises(UnauditedMutation, match="customers"), unit_of_work(world.admin) as uow:
        uow.session.execute(sa.update(Customer).values(discount=1))
    with new_session() as s:
        assert not s.exec(select(Customer).where(Customer.discount == 1)).first()
    # A guarded UPDATE that matched nothing (a lost race) changed nothing.
    with unit_of_work(world.admin) as uow:
        uow.session.execute(sa.update(Invoice).where(Invoice.amount < 0).values(amount=1))


def test_dirty_rows_count_only_when_really_modified(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    with unit_of_work(world.admin) as uow:  # loading and re-setting the same value is no change
        row = uow.session.exec(select(Customer)).first()
        row.name = row.name
    with pytest.raises(UnauditedMutation, match="customers"), unit_of_work(world.admin) as uow:
        uow.session.exec(select(Customer)).first().name = "Nama Lain"


def test_reads_bookkeeping_and_audited_changes_pass(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    with unit_of_work(world.admin) as uow:
        uow.session.exec(select(Customer)).all()
    with unit_of_work(Actor.system("wa.direct")) as uow:
        uow.bookkeeping("delivery outcome")
        uow.session.add(Setting(key="telemetri", value="1"))
    with unit_of_work(world.admin) as uow:
        uow.session.add(Setting(key="tercatat", value="1"))
        uow.audit("test.write", "settings")
    assert (setting("telemetri"), setting("tercatat")) == ("1", "1")


def test_a_bookkeeping_unit_writes_without_an_audit_row_in_strict_mode(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    before = audit_actions()
    with unit_of_work(Actor.system("beat")).bookkeeping("heartbeat") as uow:
        uow.session.add(Setting(key="detak", value="1"))
        uow.session.execute(sa.update(Customer).values(discount=1))
    assert setting("detak") == "1" and audit_actions() == before
    with new_session() as s:
        assert s.exec(select(Customer).where(Customer.discount != 1)).first() is None
    # The mark belongs to that unit only: the next plain unit is held to the rule again.
    with pytest.raises(UnauditedMutation, match="settings"), unit_of_work(world.admin) as uow:
        uow.session.add(Setting(key="lupa", value="audit"))
    assert setting("lupa") is None


def test_a_bookkeeping_unit_still_rolls_back_and_runs_hooks_after_commit(world, monkeypatch):
    monkeypatch.setenv("AUDIT_STRICT", "1")
    ran = []
    with pytest.raises(Boom), unit_of_work(world.admin).bookkeeping("counter") as uow:
        uow.session.add(Setting(key="gagal", value="1"))
        uow.after_commit(lambda: ran.append("gagal"))
        raise Boom
    with unit_of_work(world.admin).bookkeeping("counter") as uow:
        uow.session.add(Setting(key="jadi", value="1"))
        uow.after_commit(lambda: ran.append("jadi"))
    assert (setting("gagal"), setting("jadi"), ran) == (None, "1", ["jadi"])


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_bookkeeping_needs_a_reason(world, reason):
    with pytest.raises(ValueError, match="reason"):
        unit_of_work(world.admin).bookkeeping(reason)
    with pytest.raises(ValueError, match="reason"), unit_of_work(world.admin) as uow:
        uow.session.add(Setting(key="tanpa_alasan", value="1"))
        uow.bookkeeping(reason)
    assert setting("tanpa_alasan") is None


def test_an_opened_unit_of_work_is_entered_once(world):
    opened = unit_of_work(world.admin).bookkeeping("cache")
    with opened:
        pass
    with pytest.raises(RuntimeError), opened:
        pass


def test_outside_strict_mode_the_change_commits_and_is_logged(world, monkeypatch, caplog):
    monkeypatch.setenv("AUDIT_STRICT", "0")
    with caplog.at_level(logging.ERROR, logger="fibernode.services.uow"), \
            unit_of_work(world.admin) as uow:
        uow.session.add(Setting(key="produksi", value="1"))
    assert setting("produksi") == "1"
    assert [r.tables for r in caplog.records if r.msg == "unaudited mutation"] == [["settings"]]


# Commits (and engine transactions) outside a unit of work escape the audit check, so
# each one is listed here with why it cannot be a unit of work; a new one fails until
# it is justified or moved into one (``unit_of_work(actor).bookkeeping(reason)`` for
# writes that need no audit row: heartbeats, claims, progress, caches, last-seen times).
DIRECT_COMMITS = {
    ("fibernode/cli.py", "migrate_url"): "migrates a database of its own (alembic)",
    ("fibernode/services/backup.py", "_mark_restored"): "writes the audit row itself, "
                                                         "into the restored database",
    ("fibernode/services/imports.py", "write"): "import progress; tests/services/"
                                                "test_imports.py counts the job's units",
    ("fibernode/whatsapp/outbox.py", "send_text"): "the local gateway's own record, "
                                                   "standing in for WhatsApp's servers",
}


def _calls_in(func: ast.AST):
    """The calls in a function's own body (nested functions are walked on their own)."""
    todo = list(ast.iter_child_nodes(func))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _writes_directly(call: ast.Call) -> bool:
    """``….commit()``, or ``get_engine().begin()`` / ``engine.begin()``."""
    if not isinstance(call.func, ast.Attribute) or call.args:
        return False
    if call.func.attr == "commit":
        return True
    owner = call.func.value
    return call.func.attr == "begin" and (
        (isinstance(owner, ast.Name) and owner.id == "engine")
        or (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
            and owner.func.id == "get_engine"))


def _direct_commits() -> set[tuple[str, str]]:
    root = Path(__file__).resolve().parents[2]
    found = set()
    for path in sorted([*root.joinpath("fibernode").rglob("*.py"),
                        *root.joinpath("workers").rglob("*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel == "fibernode/services/uow.py":
            continue
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                    _writes_directly(call) for call in _calls_in(func)):
                found.add((rel, func.name))
    return found


def test_every_commit_outside_a_unit_of_work_is_justified():
    found = _direct_commits()
    assert found - set(DIRECT_COMMITS) == set(), "commit outside a unit of work: justify it"
    assert set(DIRECT_COMMITS) - found == set(), "stale entry in DIRECT_COMMITS"
