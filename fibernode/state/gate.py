"""The gate every websocket event passes before any handler runs.

Reflex keeps a tab's page states under the tab's id, whoever is logged in;
the REST API has HTTP middlewares in front of it, the websocket has none. This
Reflex middleware (``app.add_middleware(SessionGate())``) gives it one:

* **Binding.** The tab's states belong to the user they were filled for. When
  the session behind the connection is not that user any more (logout, expiry,
  another login on the same tab, a tab id replayed without a session), every
  FiberNode state is reset to its defaults *before* the event runs, so neither
  a handler nor a hydrate can hand the previous user's data to the client.
* **Anonymous clients** may only send the events of public pages (login,
  receipt, branding) and Reflex's own bookkeeping, within a small per-address
  budget; anything else gets a redirect to the login page and touches no state.
* **Size.** An event's arguments are bounded (uploads go over HTTP, never the
  websocket), so nobody can park megabytes in a state.
* **Internal setters.** ``setvar`` and the client-storage update can only set
  the few vars meant for them, never identity, owner or filter vars.

The session resolved here is handed to :func:`fibernode.state.session.current_actor`
for the rest of the event, so a handler costs no second lookup.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging

import reflex as rx
from reflex.middleware import Middleware
from reflex.state import OnLoadInternalState, State, StateUpdate, UpdateVarsInternalState
from reflex_base.event import Event

from fibernode.services import ratelimit, web_login
from fibernode.services.context import Actor

log = logging.getLogger(__name__)

# The largest event (JSON of its arguments) a client may send: typed forms are a
# few KB; files go through /_upload.
MAX_EVENT_BYTES = 64 * 1024
# Events per minute an address may send without a session (a login page with a
# few retries and a receipt page need a handful; many phones share a carrier's
# address).
ANONYMOUS_PER_MINUTE = 120

# (state module suffix, class name) -> handlers anybody may call. A new public
# handler is added here on purpose; the websocket suite walks the rest.
PUBLIC_HANDLERS: dict[str, frozenset[str] | None] = {
    "fibernode.pages.login.LoginState": frozenset({"arrive", "submit"}),
    "fibernode.state.session.SessionState": frozenset({"redirect_if_logged_in", "logout"}),
    "fibernode.state.branding.BrandingState": None,  # every handler: app name, logos
    "fibernode.pages.receipt.ReceiptState": None,  # the public receipt page
}
# Client-storage vars the frontend may push (update_vars_internal); setvar sets nothing.
FIELD_SUFFIX = "_rx_state_"
CLIENT_SETTABLE = frozenset({"fibernode.state.ui.UIState.sidebar_collapsed"})

# (session reference, actor) resolved by the gate for the event being processed.
resolved_session: contextvars.ContextVar[tuple[str, Actor | None] | None] = (
    contextvars.ContextVar("resolved_session", default=None))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _every_state() -> list[type[rx.State]]:
    """The root state and every state below it, Reflex's own included."""
    found, todo = [], [State]
    while todo:
        cls = todo.pop()
        todo.extend(cls.get_substates())
        found.append(cls)
    return found


def app_states() -> list[type[rx.State]]:
    """Every FiberNode state class (Reflex's own internal states excluded)."""
    return sorted((c for c in _every_state() if c.__module__.startswith("fibernode.")),
                  key=lambda c: c.get_full_name())


@functools.cache
def _handler_index() -> dict[str, tuple[type, str]]:
    """Full event name -> (state class, handler name), for every state."""
    index: dict[str, tuple[type, str]] = {}
    for cls in _every_state():
        for name in cls.event_handlers:
            index[f"{cls.get_full_name()}.{name}"] = (cls, name)
    return index


def _public(cls: type, handler: str) -> bool:
    if not cls.__module__.startswith("fibernode."):
        # Reflex's own: hydrate, page-load dispatch, client storage, error reports.
        return cls in (State, OnLoadInternalState, UpdateVarsInternalState) or (
            handler == "handle_frontend_exception")
    allowed = PUBLIC_HANDLERS.get(_qualname(cls), frozenset())
    return allowed is None or handler in allowed


def _settable(cls: type, var: str) -> bool:
    return f"{_qualname(cls)}.{var}" in CLIENT_SETTABLE


def _setters_allowed(cls: type, handler: str, payload: dict) -> bool:
    """``setvar`` and the client-storage update may only touch :data:`CLIENT_SETTABLE`."""
    if handler == "setvar":
        # No page sets a var by name; the client-storage sync goes through
        # update_vars_internal below.
        return False
    if cls is UpdateVarsInternalState and handler == "update_vars_internal":
        index = {c.get_full_name(): c for c, _ in _handler_index().values()}
        for key in (payload.get("vars") or {}):
            path, _, var = str(key).rpartition(".")
            # The frontend names client-storage vars with Reflex's field suffix.
            var = var.removesuffix(FIELD_SUFFIX)
            owner = index.get(path)
            if owner is None or not _settable(owner, var):
                return False
    return True


def _event_bytes(payload) -> int:
    try:
        return len(json.dumps(payload, default=str))
    except (TypeError, ValueError):
        return MAX_EVENT_BYTES + 1


async def reset_user_states(state: rx.State) -> None:
    """Put every FiberNode state of this tab back to its defaults."""
    for cls in app_states():
        substate = await state.get_state(cls)
        substate.reset()


class SessionGate(Middleware):
    """See the module docstring."""

    async def preprocess(self, app, state, event) -> StateUpdate | None:  # noqa: D102
        from fibernode.state.session import SessionState

        target = _handler_index().get(event.name)
        session = await state.get_state(SessionState)
        ip, ua = session._client()
        if target is None:
            log.warning("refused unknown event %r", event.name[:200])
            return StateUpdate()
        cls, handler = target
        if _event_bytes(event.payload) > MAX_EVENT_BYTES:
            log.warning("refused oversized event %s from %s", event.name, ip)
            return StateUpdate()
        if not _setters_allowed(cls, handler, event.payload or {}):
            log.warning("refused setter %s %s from %s", event.name,
                        str(event.payload)[:200], ip)
            return StateUpdate()

        ref = session._session_ref()
        # A database read: off the event loop that serves every connected user.
        actor = await asyncio.to_thread(web_login.resolve, ref, ip, ua)
        resolved_session.set((ref, actor))
        user = str(actor.user_id) if actor is not None else ""
        if session._bound_user != user:
            # Another user (or nobody) is behind this tab now: nothing of the
            # previous one may be processed or sent.
            await reset_user_states(state)
            session._bound_user = user
            if actor is not None:
                session.user_name = actor.name
                session.role = actor.role.value if actor.role else ""
        if actor is not None:
            return None
        decision = await asyncio.to_thread(ratelimit.hit_scaled, "ws-anonymous",
                                           ip or "unknown", ANONYMOUS_PER_MINUTE)
        if not decision.allowed:
            return StateUpdate()
        if not _public(cls, handler):
            # Nothing runs and nothing is stored for a client without a session.
            return StateUpdate(events=Event.from_event_type(rx.redirect("/login")))
        return None
