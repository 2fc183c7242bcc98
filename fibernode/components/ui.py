"""Small building blocks: cards, messages, form fields."""

from __future__ import annotations

import json

import reflex as rx


def stat_card(label: str, value: rx.Var | str, icon: str, hint: rx.Var | str = "",
              tone: str = "primary", test_id: str = "") -> rx.Component:
    """A dashboard figure with an icon and an optional hint line."""
    return rx.el.div(
        rx.el.div(
            rx.el.span(label, class_name="fn-stat-label"),
            rx.el.span(rx.icon(icon, size=18), class_name=f"fn-stat-icon fn-tone-{tone}"),
            class_name="fn-stat-head",
        ),
        rx.el.div(value, class_name="fn-stat-value", data_testid=test_id or None),
        rx.el.div(hint, class_name="fn-stat-hint"),
        class_name="fn-card fn-stat",
    )


def page_title(title: str, subtitle: rx.Var | str = "") -> rx.Component:
    """Heading of a page's content area."""
    return rx.el.div(
        rx.el.h1(title, class_name="fn-page-title"),
        rx.cond(subtitle != "", rx.el.p(subtitle, class_name="fn-page-subtitle")),
        class_name="fn-page-head",
    )


def forbidden() -> rx.Component:
    """What a user sees on a page their role may not open."""
    return rx.el.div(
        rx.icon("shield_x", size=48, class_name="fn-forbidden-icon"),
        rx.el.h2("Anda tidak punya akses ke halaman ini", class_name="fn-forbidden-title"),
        rx.el.p("Halaman ini hanya untuk Superadmin. Jika Anda merasa ini keliru, "
                "hubungi superadmin Anda.", class_name="fn-muted"),
        rx.link(rx.button("Kembali ke Dashboard", size="3"), href="/"),
        class_name="fn-card fn-forbidden",
        data_testid="forbidden",
    )


def field(label: str, control: rx.Component, error: rx.Var | str = "",
          hint: str = "") -> rx.Component:
    """A labelled form control with its inline error message."""
    return rx.el.label(
        rx.el.span(label, class_name="fn-field-label"),
        control,
        rx.cond(error != "", rx.el.span(error, class_name="fn-field-error", role="alert"),
                rx.cond(hint != "", rx.el.span(hint, class_name="fn-field-hint"))),
        class_name="fn-field",
    )


def text_input(name: str, default: rx.Var | str = "", *, type_: str = "text",
               error: rx.Var | str = "", autocomplete: str = "off",
               placeholder: str = "", input_mode: str | None = None,
               disabled: rx.Var | bool = False) -> rx.Component:
    """An uncontrolled input inside a form, so typing costs no round trip."""
    return rx.el.input(
        name=name,
        id=name,
        default_value=default,
        type=type_,
        auto_complete=autocomplete,
        placeholder=placeholder,
        input_mode=input_mode,
        disabled=disabled,
        class_name=rx.cond(error != "", "fn-input fn-input-error", "fn-input"),
    )


def alert(message: rx.Var | str, tone: str = "error") -> rx.Component:
    """An inline banner for a form-level message."""
    return rx.cond(
        message != "",
        rx.el.div(rx.icon("circle_alert" if tone == "error" else "circle_check", size=18),
                  rx.el.span(message), class_name=f"fn-alert fn-alert-{tone}", role="alert"),
    )


def select_input(name: str, options: rx.Var | list, default: rx.Var | str = "", *,
                 error: rx.Var | str = "", placeholder: str = "",
                 on_change=None, disabled: rx.Var | bool = False) -> rx.Component:
    """An uncontrolled ``<select>`` over ``[{"value", "label"}]`` options."""
    def option(o):
        return rx.el.option(o["label"], value=o["value"])

    return rx.el.select(
        rx.cond(placeholder != "", rx.el.option(placeholder, value="", disabled=True)),
        rx.foreach(options, option) if isinstance(options, rx.Var)
        else rx.fragment(*[rx.el.option(o["label"], value=o["value"]) for o in options]),
        name=name,
        id=name,
        default_value=default,
        on_change=on_change,
        disabled=disabled,
        class_name=rx.cond(error != "", "fn-input fn-input-error", "fn-input"),
    )


def pager(page: rx.Var, pages: rx.Var, total: rx.Var, unit: str, on_prev, on_next,
          test_id: str = "pager") -> rx.Component:
    """"Total … · halaman x dari y" with previous / next buttons."""
    return rx.el.div(
        rx.el.span(total, f" {unit} · halaman ", page.to_string(), " dari ",
                   pages.to_string(), class_name="fn-muted"),
        rx.el.div(
            rx.button(rx.icon("chevron_left", size=16), "Sebelumnya", variant="soft",
                      on_click=on_prev, disabled=page <= 1),
            rx.button("Berikutnya", rx.icon("chevron_right", size=16), variant="soft",
                      on_click=on_next, disabled=page >= pages),
            class_name="fn-pager-buttons",
        ),
        class_name="fn-pager",
        data_testid=test_id,
    )


def skeleton_rows(count: int = 6) -> rx.Component:
    """Grey placeholder lines while a page of data is on its way."""
    return rx.el.div(
        *[rx.el.div(rx.el.div(class_name="fn-skel fn-skel-title"),
                    rx.el.div(class_name="fn-skel fn-skel-line"), class_name="fn-skel-row")
          for _ in range(count)],
        class_name="fn-skeleton",
        aria_busy="true",
        data_testid="skeleton",
    )


def empty_state(icon: str, title: str, text: rx.Var | str = "") -> rx.Component:
    """What a list shows when nothing matches."""
    return rx.el.div(
        rx.icon(icon, size=40, class_name="fn-empty-icon"),
        rx.el.div(title, class_name="fn-empty-title"),
        rx.cond(text != "", rx.el.p(text, class_name="fn-muted")),
        class_name="fn-empty",
    )


STATUS_LABELS = {"active": "Aktif", "isolated": "Isolir", "inactive": "Nonaktif"}


def status_badge(status: rx.Var) -> rx.Component:
    """A subscriber's status as a coloured pill."""
    return rx.match(
        status,
        ("active", rx.el.span("Aktif", class_name="fn-pill fn-pill-green")),
        ("isolated", rx.el.span("Isolir", class_name="fn-pill fn-pill-red")),
        rx.el.span("Nonaktif", class_name="fn-pill fn-pill-grey"),
    )


def fab(label: str, on_click, icon: str = "plus", test_id: str = "fab") -> rx.Component:
    """The phone's floating add button (hidden on wider screens)."""
    return rx.el.button(rx.icon(icon, size=26), on_click=on_click, class_name="fn-fab",
                        aria_label=label, title=label, type="button", data_testid=test_id)


def sheet(open_: rx.Var, on_open_change, title: rx.Var | str, *content: rx.Component,
          test_id: str = "sheet") -> rx.Component:
    """A form container: a centred dialog on desktop, a bottom sheet on phones."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.el.div(class_name="fn-sheet-grip"),
            rx.el.div(
                rx.dialog.title(title, class_name="fn-sheet-title"),
                rx.dialog.close(rx.el.button(rx.icon("x", size=20), class_name="fn-icon-btn",
                                             aria_label="Tutup", type="button")),
                class_name="fn-sheet-head",
            ),
            rx.dialog.description("", class_name="fn-sr-only"),
            *content,
            class_name="fn-sheet",
            data_testid=test_id,
        ),
        open=open_,
        on_open_change=on_open_change,
    )


def confirm_dialog(open_: rx.Var, on_open_change, title: str, text: rx.Var | str,
                   confirm_label: str, on_confirm, *extra: rx.Component,
                   tone: str = "red", test_id: str = "confirm") -> rx.Component:
    """Ask before a destructive action."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(text),
            *extra,
            rx.el.div(
                rx.alert_dialog.cancel(rx.button("Batal", variant="soft", color_scheme="gray")),
                rx.button(confirm_label, color_scheme=tone, on_click=on_confirm,
                          data_testid=f"{test_id}-ok"),
                class_name="fn-dialog-actions",
            ),
            class_name="fn-confirm",
            data_testid=test_id,
        ),
        open=open_,
        on_open_change=on_open_change,
    )


def superadmin_page(ready: rx.Var, denied: rx.Var, *content: rx.Component) -> rx.Component:
    """Nothing until the page's handler has decided, then either the content or no-access.

    So a mitra never glimpses an admin page's frame before the no-access view.
    """
    return rx.cond(ready, rx.cond(denied, forbidden(), rx.fragment(*content)))


def active_pill(active: rx.Var) -> rx.Component:
    """"Aktif" / "Nonaktif" for accounts and packages (``active`` is "1" or "")."""
    return rx.cond(active != "", rx.el.span("Aktif", class_name="fn-pill fn-pill-green"),
                   rx.el.span("Nonaktif", class_name="fn-pill fn-pill-grey"))


def show_secret(element_id: str, value: str, prop: str = "textContent") -> rx.event.EventSpec:
    """Put a secret (a plain NIK) straight into one element, never into a state.

    States are pickled to disk or Redis; a value sent this way exists only in the
    page. The element must have no children rendered from state (React would
    overwrite them); the script waits up to a second for it to be mounted.
    """
    return rx.call_script(
        "(function f(n){var e=document.getElementById(" + json.dumps(element_id) + ");"
        "if(e){e[" + json.dumps(prop) + "]=" + json.dumps(value) + ";}"
        "else if(n>0){setTimeout(function(){f(n-1)},50);}})(20)"
    )

