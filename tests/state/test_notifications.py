"""The header bell: the account's own lockouts are listed, apart from WhatsApp problems."""

from __future__ import annotations

import pytest

from fibernode.services import auth
from fibernode.services.context import Actor
from fibernode.services.errors import LoginFailed
from fibernode.state.notifications import lockout_notice, notice_row


def test_the_bell_lists_a_lockout_of_the_users_own_account_not_as_the_banner(world):
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.login(Actor.anonymous("203.0.113.80", "penyerang"), "mitra1", "tebak-tebak-1")

    [bell] = [notice_row(n, world.mitra_a.user_id) for n in lockout_notice(world.mitra_a)]
    assert bell["title"] == "Akun Anda sempat dikunci" and bell["href"] == "/profile"
    assert "203.0.113.80" in bell["text"] and bell["level"] == "warning"
    # Not the dashboard's WhatsApp-session banner.
    assert bell["own"] == "1" and bell["session"] == ""
    assert lockout_notice(world.mitra_b) == [] and lockout_notice(world.admin) == []
