"""Small building blocks: cards, messages, form fields."""

from __future__ import annotations

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
               placeholder: str = "", input_mode: str | None = None) -> rx.Component:
    """An uncontrolled input inside a form, so typing costs no round trip."""
    return rx.el.input(
        name=name,
        id=name,
        default_value=default,
        type=type_,
        auto_complete=autocomplete,
        placeholder=placeholder,
        input_mode=input_mode,
        class_name=rx.cond(error != "", "fn-input fn-input-error", "fn-input"),
    )


def alert(message: rx.Var | str, tone: str = "error") -> rx.Component:
    """An inline banner for a form-level message."""
    return rx.cond(
        message != "",
        rx.el.div(rx.icon("circle_alert" if tone == "error" else "circle_check", size=18),
                  rx.el.span(message), class_name=f"fn-alert fn-alert-{tone}", role="alert"),
    )
