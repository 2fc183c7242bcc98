"""Event handlers that run a use case: the actor, the thread and the refusals.

Some use cases take seconds: a billing run over every subscriber, checking or
importing a CSV of thousands of rows. Called straight from an ``async`` handler,
they hold the event loop that serves every tab of this backend worker until they
are done. A handler written as ``async def handler(self, actor, …)`` and wrapped
in :func:`service_event` gets

* the acting user, resolved by :func:`~fibernode.state.session.current_actor`
  before anything else; a tab whose session is gone is sent to the login page
  (:func:`~fibernode.state.session.to_login`) and the handler does not run;
* :func:`off_loop` for its use case: a worker thread, with this event's context
  (``asyncio.to_thread`` copies it, so the session the gate resolved,
  :data:`fibernode.state.gate.resolved_session`, goes along);
* a refusal shown the way the page shows it: a stale version in the conflict
  notice, rejected input in the form's field errors or one message line,
  anything else as an error toast.

Reflex sees the handler's own arguments only: the ``actor`` parameter is taken
out of the signature it reads.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fibernode.services.errors import Conflict, ServiceError, ValidationFailed
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast

T = TypeVar("T")


async def off_loop(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in a worker thread, leaving the event loop to other tabs."""
    return await asyncio.to_thread(call, *args, **kwargs)


def service_event(*, fields: str | None = None, message: str | None = None,
                  detail: str | None = None, conflict: str | None = None,
                  reset: Mapping[str, Any] | None = None,
                  after: str | None = None) -> Callable[[Callable], Callable]:
    """Wrap ``async def handler(self, actor, …)`` (a coroutine or an async generator).

    Put it under ``@rx.event``. A :class:`ServiceError` raised by the handler's body
    is shown as the arguments say; without ``fields`` or ``message`` it is an
    error toast.

    Args:
        fields: State var (``dict[str, str]``) for the form's field errors: a
            :class:`ValidationFailed`'s details, any other refusal as ``{"form": …}``.
        message: State var (``str``) for the refusal's sentence.
        detail: The field whose message ``message`` shows instead, when there is one.
        conflict: State var (``str``) for a :class:`Conflict` (the "Muat ulang" notice).
        reset: State vars set on every refusal (a busy flag back off).
        after: An async method of the state awaited after the refusal is shown
            (reload what the refused use case may have changed).
    """

    def refuse(state: Any, exc: ServiceError) -> Any:
        for name, value in (reset or {}).items():
            setattr(state, name, value)
        if conflict and isinstance(exc, Conflict):
            setattr(state, conflict, exc.message)
        elif fields:
            setattr(state, fields, exc.details if isinstance(exc, ValidationFailed)
                    else {"form": exc.message})
        elif message:
            setattr(state, message, (exc.details.get(detail) if detail else None)
                    or exc.message)
        else:
            # Service messages may quote user text (names): only through state.ui.toast.
            return toast("error", exc.message)
        return None

    def wrap(handler: Callable) -> Callable:
        if inspect.isasyncgenfunction(handler):
            async def wrapper(self, *args, **kwargs):
                actor = await current_actor(self)
                if actor is None:
                    yield await to_login(self)
                    return
                try:
                    async for event in handler(self, actor, *args, **kwargs):
                        yield event
                except ServiceError as exc:
                    event = refuse(self, exc)
                    if event is not None:
                        yield event
                    if after:
                        await getattr(self, after)()
        elif inspect.iscoroutinefunction(handler):
            async def wrapper(self, *args, **kwargs):
                actor = await current_actor(self)
                if actor is None:
                    return await to_login(self)
                try:
                    return await handler(self, actor, *args, **kwargs)
                except ServiceError as exc:
                    event = refuse(self, exc)
                    if after:
                        await getattr(self, after)()
                    return event
        else:
            raise TypeError(f"{handler.__qualname__}: service_event needs an async handler")

        functools.update_wrapper(wrapper, handler)
        # What Reflex reads to map an event's payload: the handler minus its actor.
        signature = inspect.signature(handler)
        self_param, actor_param, *rest = signature.parameters.values()
        wrapper.__signature__ = signature.replace(parameters=[self_param, *rest])
        wrapper.__annotations__ = {k: v for k, v in handler.__annotations__.items()
                                   if k != actor_param.name}
        return wrapper

    return wrap
