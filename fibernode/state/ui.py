"""Layout preferences remembered on the device, and user text in event specs.

Reflex reads ``<reflex.Var>N</reflex.Var>`` inside any string it turns into a Var
(toast text, script arguments, chained-event arguments) as a reference to its own
variable number ``N``: a customer named ``<reflex.Var>12345</reflex.Var>`` made the
pay handler fail after the payment was saved (``KeyError``), and a marker around a
non-number sends Reflex 0.10.1 into an endless loop. Text that users typed (names,
file names, service messages quoting them) therefore goes into events only through
:func:`user_text` / :func:`toast`, which hand Reflex a finished JavaScript string
literal with ``<`` escaped, so there is no marker left to parse.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from reflex.event import EventSpec
from reflex_base.event import run_script
from reflex_base.vars.base import LiteralVar
from reflex_base.vars.function import FunctionVar
from reflex_base.vars.object import ObjectVar
from reflex_base.vars.sequence import LiteralStringVar
from reflex_components_sonner.toast import ToastProps, toast_ref

TOAST_LEVELS = ("success", "error", "info", "warning")
_TEXT_PROPS = ("title", "description")


def user_text(text: object) -> LiteralStringVar:
    r"""``text`` as a string Var Reflex never scans for its Var markers.

    The Var is built directly (not through ``LiteralVar.create``, which decodes
    markers) and its JavaScript is a JSON string with every ``<`` written as
    ``\u003c``: the browser shows the text exactly, and no later formatting of the
    expression finds a marker in it. Decoded on the server it is the text itself.
    """
    value = str(text)
    return LiteralStringVar(_js_expr=json.dumps(value).replace("<", "\\u003c"),
                            _var_type=str, _var_data=None, _var_value=value)


def toast(level: str, text: object, **props: Any) -> EventSpec:
    """``rx.toast.<level>(text, **props)`` for text that may contain user data.

    The text stays sonner's first argument (as with a plain string), so a toast
    with a fixed ``id`` keeps its title when it replaces one still on screen.
    """
    if level not in TOAST_LEVELS:
        raise ValueError(f"unknown toast level {level!r}")
    command = ObjectVar.__getattr__(toast_ref.to(dict), level).to(FunctionVar)
    props = {k: user_text(v) if k in _TEXT_PROPS and isinstance(v, str) else v
             for k, v in props.items()}
    args: list[Any] = [user_text(text)]
    if props:
        args.append(LiteralVar.create(ToastProps(component_name="rx.toast", **props)))  # pyright: ignore[reportCallIssue]
    return run_script(command.call(*args))


class UIState(rx.State):
    """Whether the desktop sidebar is collapsed to icons (kept in localStorage)."""

    sidebar_collapsed: str = rx.LocalStorage("0", name="fn_sidebar_collapsed", sync=True)

    @rx.var
    def collapsed(self) -> bool:
        """The stored flag as a boolean."""
        return self.sidebar_collapsed == "1"

    @rx.event
    def toggle_sidebar(self):
        """Collapse or expand the sidebar."""
        self.sidebar_collapsed = "0" if self.sidebar_collapsed == "1" else "1"
