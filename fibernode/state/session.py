"""The logged-in user, re-checked against the database on every use."""

from __future__ import annotations

import logging

import reflex as rx
from reflex.event import EventSpec

from fibernode.config import get_settings
from fibernode.services import auth, ratelimit
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError
from fibernode.state.ui import toast

log = logging.getLogger(__name__)

SESSION_COOKIE = auth.SESSION_COOKIE
REMEMBER_COOKIE = auth.REMEMBER_COOKIE
LOGIN_ROUTE = "/login"


class SessionState(rx.State):
    """Session cookies plus what the shell needs to show about the user.

    The cookie holds a random token; the server keeps only its hash, so
    logout, password change and deactivation end every tab at once.
    """

    # Without "remember me" the cookie dies with the browser session.
    token: str = rx.Cookie("", name=SESSION_COOKIE, path="/", same_site="lax")
    remembered_token: str = rx.Cookie(
        "", name=REMEMBER_COOKIE, path="/", same_site="lax",
        max_age=get_settings().remember_days * 86400,
    )
    user_name: str = ""
    role: str = ""
    _user_id: str = ""

    @rx.var
    def is_superadmin(self) -> bool:
        """Whether the shown user is a superadmin (menus only; services re-check)."""
        return self.role == "superadmin"

    @rx.var
    def initials(self) -> str:
        """Up to two initials for the avatar."""
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    def _raw_token(self) -> str:
        return self.token or self.remembered_token

    def client(self) -> tuple[str, str]:
        """The caller's IP address and user agent."""
        return self.router.session.client_ip or "", self.router.headers.user_agent or ""

    def resolve_actor(self) -> Actor | None:
        """Look the session up in the database; clears the display when it is gone."""
        ip, ua = self.client()
        actor = auth.resolve_session(self._raw_token(), ip, ua)
        if actor is None:
            self.user_name, self.role, self._user_id = "", "", ""
        else:
            self.user_name = actor.name
            self.role = actor.role.value if actor.role else ""
            self._user_id = str(actor.user_id)
        return actor

    def start(self, result: auth.LoginResult) -> None:
        """Store a fresh login's token in the right cookie."""
        if result.remember:
            self.remembered_token, self.token = result.token, ""
        else:
            self.token, self.remembered_token = result.token, ""
        self.resolve_actor()

    def clear(self) -> None:
        """Forget the session on this client."""
        self.token = ""
        self.remembered_token = ""
        self.user_name, self.role, self._user_id = "", "", ""

    @rx.event
    def redirect_if_logged_in(self):
        """``on_load`` of the login page: a live session goes straight to the dashboard."""
        if self.resolve_actor() is not None:
            return rx.redirect("/")
        return None

    @rx.event
    def logout(self):
        """Revoke this session on the server and forget it here."""
        raw = self._raw_token()
        if raw:
            ip, ua = self.client()
            auth.logout(Actor.anonymous(ip, ua), raw)
        self.clear()
        return rx.redirect(LOGIN_ROUTE)


async def current_actor(state: rx.State) -> Actor | None:
    """The acting user for a handler of any page state, fresh from the database.

    Each call counts against the user's own limit, the same bucket as their API
    requests (the websocket has no HTTP middleware in front of its events).

    Raises:
        RateLimited: the user sent too many requests this minute (shown as a toast
            by :func:`backend_error`).
    """
    session = await state.get_state(SessionState)
    actor = session.resolve_actor()
    if actor is not None:
        ratelimit.count_user_request(actor)
    return actor


def backend_error(exception: Exception) -> EventSpec:
    """What the user sees when an event handler fails (``App.backend_exception_handler``).

    A refusal a handler did not catch itself (a rate limit) shows its Indonesian
    message; anything else is logged with its traceback and shown as a short
    Indonesian notice, never as an English stack trace.
    """
    if isinstance(exception, ServiceError):
        # Service messages may quote user text (names): never through Var parsing.
        return toast("error", exception.message, id="backend_error", position="top-center")
    log.error("event handler failed", exc_info=exception)
    return rx.toast.error("Terjadi kesalahan di server.", id="backend_error",
                          position="top-center",
                          description="Silakan coba lagi. Jika berulang, hubungi admin.")


async def to_login(state: rx.State):
    """Forget this client's session and send it to the login page.

    Page ``load`` handlers return this when :func:`current_actor` finds no
    session, so each page load resolves the session exactly once.
    """
    session = await state.get_state(SessionState)
    session.clear()
    return rx.redirect(LOGIN_ROUTE)


async def current_token(state: rx.State) -> str:
    """The raw session token of this client (to keep it on password change)."""
    session = await state.get_state(SessionState)
    return session._raw_token()
