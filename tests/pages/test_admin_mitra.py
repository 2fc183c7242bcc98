"""``/admin/mitra``: a stray or repeated confirm (a double tap) changes nothing."""

from __future__ import annotations

from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import User
from fibernode.pages.admin_mitra import MitraState
from fibernode.services import users
from tests.state.tabs import drive, page, run, tab


def _active(user_id) -> bool:
    with new_session() as s:
        return s.get(User, user_id).is_active


def test_a_second_confirm_does_not_repeat_the_first(world):
    admin = page(tab("superadmin"), MitraState)
    mitra = world.user_id("mitra2")
    drive(run(admin, MitraState.ask, "deactivate", str(mitra), "WiFi"))
    drive(run(admin, MitraState.confirm))
    assert not _active(mitra)
    users.set_user_active(world.admin, mitra, True)  # switched back on meanwhile
    drive(run(admin, MitraState.confirm))  # the second tap of a double tap
    assert _active(mitra)


def test_confirm_without_a_question_changes_nothing(world):
    admin = page(tab("superadmin"), MitraState)
    assert drive(run(admin, MitraState.confirm)) in ([], [None])
    with new_session() as s:
        assert all(s.exec(select(User.is_active)).all())
