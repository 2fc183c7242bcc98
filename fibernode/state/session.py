"""The logged-in user, re-checked against the database on every use."""

from __future__ import annotations

import json
import logging

import reflex as rx
from reflex.event import EventSpec

from fibernode import cookies
from fibernode.services import auth, ratelimit, web_login
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError
from fibernode.state.ui import toast

log = logging.getLogger(__name__)

SESSION_COOKIE = auth.SESSION_COOKIE
LOGIN_ROUTE = "/login"


class SessionState(rx.State):
    """What the shell shows about the user, re-checked on every event.

    The session itself is an ``HttpOnly`` cookie that page scripts cannot read;
    the websocket handshake carries only its server-side reference (see
    :func:`fibernode.api.security.websocket_cookie`), which is all this state
    ever sees. Logout, password change and deactivation end every tab at once.
    """

    user_name: str = ""
    role: str = ""
    # The user this tab's states were filled for (fibernode/state/gate.py).
    _bound_user: str = ""

    @rx.var
    def is_superadmin(self) -> bool:
        """Whether the shown user is a superadmin (menus only; services re-check)."""
        return self.role == "superadmin"

    @rx.var
    def initials(self) -> str:
        """Up to two initials for the avatar."""
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    def _session_ref(self) -> str:
        """The server-side reference of this connection's session cookie ("" without one)."""
        return cookie_value(self.router.headers.cookie, web_login.REFERENCE_COOKIE)

    def _client(self) -> tuple[str, str]:
        """The caller's IP address and user agent."""
        return self.router.session.client_ip or "", self.router.headers.user_agent or ""

    def _resolve_actor(self) -> Actor | None:
        """Look the session up in the database; clears the display when it is gone."""
        ip, ua = self._client()
        actor = web_login.resolve(self._session_ref(), ip, ua)
        if actor is None:
            self.user_name, self.role = "", ""
        else:
            self.user_name = actor.name
            self.role = actor.role.value if actor.role else ""
        return actor

    def _clear(self) -> None:
        """Forget what the shell shows about the user."""
        self.user_name, self.role = "", ""

    @rx.event
    def redirect_if_logged_in(self):
        """``on_load`` of the login page: a live session goes straight to the dashboard."""
        if self._resolve_actor() is not None:
            return rx.redirect("/")
        return None

    @rx.event
    def logout(self):
        """Revoke this session on the server, then clear the cookie over HTTP."""
        ip, ua = self._client()
        web_login.logout(Actor.anonymous(ip, ua), self._session_ref())
        self._clear()
        return post_navigation("/api/session/end")


def cookie_value(header: str, name: str) -> str:
    """One cookie's value from a Cookie header ("" when absent)."""
    return cookies.value(header, name)


def post_navigation(action: str, fields: dict[str, str] | None = None) -> EventSpec:
    """Leave the page by a real form POST to ``action`` (a new tab id, a fresh page).

    Cookies can only be set or cleared by an HTTP response, and the page that
    follows must start with nothing of the previous user: the tab's state token
    (sessionStorage ``token``) is dropped, so the next page load gets a new one.
    """
    inputs = "".join(
        f"i=document.createElement('input');i.type='hidden';i.name={json.dumps(k)};"
        f"i.value={json.dumps(v)};f.appendChild(i);"
        for k, v in (fields or {}).items()
    )
    return rx.call_script(
        "(function(){var f=document.createElement('form'),i;"
        "try{window.sessionStorage.removeItem('token')}catch(e){}"
        f"f.method='POST';f.action={json.dumps(action)};{inputs}"
        "f.style.display='none';document.body.appendChild(f);f.submit();})()"
    )


async def current_actor(state: rx.State) -> Actor | None:
    """The acting user for a handler of any page state, fresh from the database.

    Each call counts against the user's own limit, the same bucket as their API
    requests (the websocket has no HTTP middleware in front of its events).

    Raises:
        RateLimited: the user sent too many requests this minute (shown as a toast
            by :func:`backend_error`).
    """
    from fibernode.state.gate import resolved_session

    session = await state.get_state(SessionState)
    resolved = resolved_session.get()
    if resolved is not None and resolved[0] == session._session_ref():
        # The gate looked this event's session up already (fibernode/state/gate.py).
        actor = resolved[1]
    else:
        actor = session._resolve_actor()
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
    session._clear()
    return rx.redirect(LOGIN_ROUTE)


async def current_session_ref(state: rx.State) -> str:
    """The server-side reference of this client's session (to keep it on password change)."""
    session = await state.get_state(SessionState)
    return session._session_ref()
