"""``/login``: the first page after the splash."""

from __future__ import annotations

import asyncio

import reflex as rx

from fibernode.components.ui import field
from fibernode.services import devices, ratelimit, web_login
from fibernode.services.context import Actor
from fibernode.services.errors import (
    RateLimited,
    ServiceError,
    TwoFactorRequired,
    ValidationFailed,
)
from fibernode.state.branding import BrandingState
from fibernode.state.session import SessionState, cookie_value, post_navigation

# /api/session/claim sends a browser here when its one-time login code was spent or
# too old (a reload, a back button, a very slow connection).
CLAIM_EXPIRED = "Waktu masuk habis sebelum selesai. Silakan masuk lagi."


class LoginState(rx.State):
    """Form feedback; the typed values live in the browser until submit."""

    error: str = ""
    field_errors: dict[str, str] = {}
    # Not the typist's fault (no red inputs): why the login page was shown again.
    notice: str = ""
    loading: bool = False
    # The password was right and the account uses two-step login: ask for the code.
    needs_code: bool = False
    # Alternates between two identical animations so every failure shakes again.
    shake: int = 0

    @rx.event
    def arrive(self):
        """Page load: explain a login that expired on its way to the cookie."""
        expired = self.router.url.query_parameters.get("kedaluwarsa", "") == "1"
        self.notice = CLAIM_EXPIRED if expired else ""

    @rx.event
    async def submit(self, form: dict):
        """Log in, or explain in Indonesian why not."""
        self.loading = True
        self.error = self.notice = ""
        self.field_errors = {}
        yield
        session = await self.get_state(SessionState)
        ip, ua = session._client()
        # The same per-address limit as POST /api/auth/login, on top of the lockout.
        decision = ratelimit.hit_scaled("login", ip or "unknown", ratelimit.LOGIN_PER_MINUTE)
        if not decision.allowed:
            self.error = RateLimited(decision.retry_after).message
            self.loading = False
            self.shake = 1 - self.shake
            return
        try:
            # Password hashing and the database: off the event loop every user shares.
            pending = await asyncio.to_thread(
                web_login.begin, Actor.anonymous(ip, ua), form.get("username", ""),
                form.get("password", ""),
                remember=form.get("remember") in ("on", "true", True),
                otp=form.get("otp") or None,
                device_token=cookie_value(session.router.headers.cookie,
                                          devices.DEVICE_COOKIE) or None)
        except TwoFactorRequired as exc:
            # Not a failure: the typed username and password stay in the form.
            self.needs_code = True
            self.field_errors = {"otp": exc.message}
            self.loading = False
            return
        except ValidationFailed as exc:
            self.field_errors = exc.details
            self.error = exc.message
        except ServiceError as exc:
            self.error = exc.message
        else:
            # The cookie is set over HTTP (HttpOnly); the page that follows is fresh.
            yield post_navigation("/api/session/claim", {
                "code": pending.code, "next": "/", "device": pending.device_token})
            return
        self.loading = False
        self.shake = 1 - self.shake

    @rx.var
    def card_class(self) -> str:
        """The card's class, with a shake while an error is fresh."""
        if not self.error:
            return "fn-login-card"
        return f"fn-login-card fn-shake-{self.shake}"

    @rx.var
    def input_class(self) -> str:
        """Inputs get a red border while the last attempt failed."""
        return "fn-input fn-input-error" if self.error else "fn-input"


@rx.page(route="/login", title="Masuk — FiberNode Internet",
         on_load=[BrandingState.load, LoginState.arrive, SessionState.redirect_if_logged_in])
def login_page() -> rx.Component:
    """Centered login card with logo, remember me and the version in the footer."""
    return rx.el.div(
        rx.el.div(
            rx.el.div(
                rx.el.img(src=BrandingState.logo_url, alt="Logo", class_name="fn-login-logo"),
                rx.el.h1(BrandingState.app_name, class_name="fn-login-title"),
                rx.el.p("Masuk untuk mengelola pelanggan dan tagihan",
                        class_name="fn-muted"),
                class_name="fn-login-head",
            ),
            rx.form(
                field(
                    "Username",
                    rx.el.input(name="username", id="username", auto_complete="username",
                                auto_capitalize="none", spell_check=False,
                                class_name=LoginState.input_class, required=True),
                    LoginState.field_errors.get("username", ""),
                ),
                field(
                    "Password",
                    rx.el.input(name="password", id="password", type="password",
                                auto_complete="current-password",
                                class_name=LoginState.input_class, required=True),
                    LoginState.field_errors.get("password", ""),
                ),
                rx.cond(
                    LoginState.needs_code,
                    field(
                        "Kode verifikasi",
                        rx.el.input(name="otp", id="otp", auto_complete="one-time-code",
                                    input_mode="numeric", auto_focus=True,
                                    placeholder="6 digit atau kode pemulihan",
                                    class_name=LoginState.input_class),
                        LoginState.field_errors.get("otp", ""),
                    ),
                ),
                rx.el.label(
                    rx.el.input(type="checkbox", name="remember", id="remember",
                                class_name="fn-checkbox"),
                    rx.el.span("Ingat saya"),
                    class_name="fn-check",
                ),
                rx.cond(
                    LoginState.error != "",
                    rx.el.div(rx.icon("circle_alert", size=18), rx.el.span(LoginState.error),
                              class_name="fn-alert fn-alert-error", role="alert",
                              data_testid="login-error"),
                ),
                rx.cond(
                    LoginState.notice != "",
                    rx.el.div(rx.icon("info", size=18), rx.el.span(LoginState.notice),
                              class_name="fn-alert fn-alert-info", role="status",
                              data_testid="login-notice"),
                ),
                rx.button(
                    rx.cond(LoginState.loading, rx.spinner(size="2"), rx.icon("log_in", size=18)),
                    "Masuk",
                    type="submit",
                    size="3",
                    disabled=LoginState.loading,
                    class_name="fn-login-btn",
                    data_testid="login-submit",
                ),
                on_submit=LoginState.submit,
                reset_on_submit=False,
                class_name="fn-form",
            ),
            class_name=LoginState.card_class,
        ),
        rx.el.footer("v", BrandingState.app_version, class_name="fn-login-footer",
                     data_testid="app-version"),
        class_name="fn-login-page",
    )
