"""Reflex states as one browser tab has them, for running event handlers without a browser.

:func:`tab` builds the whole state tree of one client (every page state the app
registers), logged in through the auth service like the login page does, or
without a session. :func:`run` calls a handler the way Reflex's event processor
does (awaiting coroutines, draining async generators) and returns the events it
answered with; :func:`decoded` turns those into what goes over the websocket.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reflex.event import Event
from reflex.istate.data import HeaderData
from reflex.state import State

import fibernode.fibernode  # noqa: F401 - registers every page state
from fibernode.services import auth, web_login
from fibernode.services.context import Actor
from fibernode.state.session import SessionState
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD


def tab(username: str | None = None) -> State:
    """The root state of a fresh tab, logged in as ``username`` (``None``: no session)."""
    root = State(_reflex_internal_init=True)
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        result = auth.login(Actor.anonymous("", ""), username, password)
        # What the websocket handshake carries (fibernode.api.security.websocket_cookie).
        root.rx_router_headers = HeaderData(
            cookie=f"{web_login.REFERENCE_COOKIE}={web_login.reference(result.token)}")
        assert page(root, SessionState)._resolve_actor() is not None
    return root


def page(root: State, cls: type) -> Any:
    """The instance of state class ``cls`` in the tab."""
    return root.get_substate(cls.get_full_name().split(".")[1:])


async def run(state: Any, handler: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Call an ``@rx.event`` handler on ``state``; the events it returned or yielded."""
    result = handler.fn(state, *args, **kwargs)
    if inspect.isasyncgen(result):
        out = [item async for item in result]
    elif inspect.iscoroutine(result):
        out = [await result]
    elif inspect.isgenerator(result):
        out = list(result)
    else:
        out = [result]
    flat: list[Any] = []
    for item in out:
        flat.extend(item if isinstance(item, list) else [item])
    return [e for e in flat if e is not None]


def drive(coro: Any) -> Any:
    """Run ``coro`` to its end on an event loop of its own, in a thread of its own.

    Not ``asyncio.run`` in the test's thread: the browser tier's Playwright keeps an
    event loop running in the main thread for the rest of the session.
    """
    context = contextvars.copy_context()  # Reflex's registration context goes along
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()


def decoded(events: list[Any]) -> list[Event]:
    """The events as Reflex sends them to the browser (where their Vars are decoded)."""
    return Event.from_event_type(events)


def redirects_to_login(events: list[Any]) -> bool:
    """Whether the handler answered by sending the tab to the login page."""
    return any(e.name == "_redirect" and e.payload.get("path") == "/login"
               for e in decoded(events))
