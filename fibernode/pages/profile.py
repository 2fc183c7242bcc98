"""``/profile``: own name, phone, bank details, password, two-step login and sessions."""

from __future__ import annotations

import contextlib
import uuid

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import alert, field, page_title, text_input
from fibernode.formatting import date_time
from fibernode.services import auth, two_factor, users
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.session import (
    SessionState,
    current_actor,
    current_session_ref,
    to_login,
)


class ProfileState(rx.State):
    """Current profile values (form defaults) and each form's feedback."""

    username: str = ""
    name: str = ""
    phone: str = ""
    business_name: str = ""
    role_label: str = ""
    bank_name: str = ""
    bank_account: str = ""
    bank_holder: str = ""
    # Bumped after a save so the uncontrolled inputs pick up normalised values.
    form_key: int = 0
    profile_errors: dict[str, str] = {}
    profile_message: str = ""
    password_errors: dict[str, str] = {}
    password_message: str = ""
    password_key: int = 0
    sessions: list[dict[str, str]] = []

    def _show(self, p: users.Profile) -> None:
        self.username, self.name, self.phone = p.username, p.name, p.phone
        self.business_name = p.business_name
        self.role_label = "Superadmin" if p.role.value == "superadmin" else "Mitra"
        self.bank_name, self.bank_account, self.bank_holder = (p.bank_name, p.bank_account,
                                                               p.bank_holder)
        self.form_key += 1

    async def _load_sessions(self, actor) -> None:
        ref = await current_session_ref(self)
        self.sessions = [
            {
                "id": str(s.id),
                "device": s.user_agent[:80] or "Perangkat tidak dikenal",
                "ip": s.ip_address or "-",
                "last_seen": date_time(s.last_seen_at),
                "current": "1" if s.current else "",
            }
            for s in auth.list_my_sessions(actor, current_hash=ref)
        ]

    @rx.event
    async def load(self):
        """Fill the forms from the database."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.profile_errors, self.profile_message = {}, ""
        self.password_errors, self.password_message = {}, ""
        self._show(users.get_profile(actor))
        await self._load_sessions(actor)

    @rx.event
    async def save_profile(self, form: dict):
        """Save name, phone and bank details."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            profile = users.update_profile(
                actor, name=form.get("name", ""), phone=form.get("phone", ""),
                bank_name=form.get("bank_name", ""), bank_account=form.get("bank_account", ""),
                bank_holder=form.get("bank_holder", ""))
        except ValidationFailed as exc:
            self.profile_errors, self.profile_message = exc.details, ""
            return None
        except ServiceError as exc:
            self.profile_errors, self.profile_message = {"form": exc.message}, ""
            return None
        self.profile_errors = {}
        self.profile_message = "Profil tersimpan."
        self._show(profile)
        session = await self.get_state(SessionState)
        session.user_name = profile.name
        return None

    @rx.event
    async def change_password(self, form: dict):
        """Change the password; every other session is logged out."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            revoked = auth.change_password(
                actor, form.get("current_password", ""), form.get("new_password", ""),
                form.get("confirm_password", ""), keep_hash=await current_session_ref(self))
        except ValidationFailed as exc:
            self.password_errors, self.password_message = exc.details, ""
            return None
        self.password_errors = {}
        self.password_key += 1
        self.password_message = (
            f"Password diganti. {revoked} sesi lain telah dikeluarkan." if revoked
            else "Password diganti."
        )
        await self._load_sessions(actor)
        return None

    @rx.event
    async def revoke(self, session_id: str):
        """Log one of my other devices out."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        # Already gone is fine: the refreshed list below shows the truth.
        with contextlib.suppress(ServiceError, ValueError):
            auth.revoke_my_session(actor, uuid.UUID(session_id))
        await self._load_sessions(actor)
        return None


class TwoFactorState(rx.State):
    """Two-step login (authenticator app) of a superadmin's own account."""

    shown: bool = False  # superadmin accounts only
    enabled: bool = False
    codes_left: int = 0
    # Enrolment in progress: the QR code and the secret for typing in by hand.
    qr: str = ""
    secret: str = ""
    # Shown once, right after enabling or regenerating.
    recovery_codes: list[str] = []
    errors: dict[str, str] = {}
    message: str = ""
    form_key: int = 0

    def _refresh(self, actor) -> None:
        status = two_factor.status(actor)
        self.enabled, self.codes_left = status.enabled, status.recovery_codes_left
        self.form_key += 1

    @rx.event
    async def load(self):
        """Show the section to superadmins with their current state."""
        actor = await current_actor(self)
        self.shown = bool(actor and actor.is_superadmin)
        self.qr, self.secret, self.recovery_codes = "", "", []
        self.errors, self.message = {}, ""
        if self.shown:
            self._refresh(actor)

    @rx.event
    async def start(self):
        """Create a secret and show its QR code."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            enrolment = two_factor.begin_enrolment(actor)
        except ServiceError as exc:
            self.errors = {"code": exc.message}
            return None
        self.qr, self.secret, self.errors, self.message = (
            enrolment.qr_svg_data_uri, enrolment.secret, {}, "")
        return None

    @rx.event
    async def confirm(self, form: dict):
        """Turn two-step login on with the first code."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            codes = two_factor.confirm_enrolment(actor, form.get("code", ""))
        except ServiceError as exc:
            self.errors = getattr(exc, "details", None) or {"code": exc.message}
            return None
        self.qr, self.secret, self.errors = "", "", {}
        self.recovery_codes = codes
        self.message = "Verifikasi dua langkah aktif. Simpan kode pemulihan di tempat aman."
        self._refresh(actor)
        return None

    @rx.event
    async def regenerate(self, form: dict):
        """Replace the recovery codes (needs a current code)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            self.recovery_codes = two_factor.regenerate_recovery_codes(
                actor, form.get("regen_code", ""))
        except ServiceError as exc:
            self.errors = {"regen_code": exc.message}
            return None
        self.errors, self.message = {}, "Kode pemulihan baru dibuat; kode lama tidak berlaku."
        self._refresh(actor)
        return None

    @rx.event
    async def disable(self, form: dict):
        """Turn two-step login off (password and a code)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            two_factor.disable(actor, form.get("password", ""), form.get("code", ""))
        except ServiceError as exc:
            self.errors = getattr(exc, "details", None) or {"code": exc.message}
            return None
        self.errors, self.recovery_codes = {}, []
        self.message = "Verifikasi dua langkah dinonaktifkan."
        self._refresh(actor)
        return None

    @rx.event
    def hide_codes(self):
        """The user saved the codes; take them off the screen."""
        self.recovery_codes = []


def _code_input(error, name: str = "code") -> rx.Component:
    return text_input(name, error=error, input_mode="numeric", autocomplete="one-time-code",
                      placeholder="123456")


def _two_factor() -> rx.Component:
    t = TwoFactorState
    e = t.errors
    codes = rx.cond(
        t.recovery_codes.length() > 0,
        rx.el.div(
            rx.el.p("Kode pemulihan (sekali pakai, hanya ditampilkan sekarang):",
                    class_name="fn-muted"),
            rx.el.div(rx.foreach(t.recovery_codes, lambda c: rx.el.code(c)),
                      class_name="fn-recovery-codes", data_testid="recovery-codes"),
            rx.button("Sudah saya simpan", size="2", variant="soft", on_click=t.hide_codes),
            class_name="fn-stack",
        ),
    )
    enrol = rx.cond(
        t.qr != "",
        rx.form(
            rx.el.p("Pindai kode QR ini dengan aplikasi authenticator (Google Authenticator, "
                    "Authy, dll.), lalu masukkan kode 6 digit yang muncul.",
                    class_name="fn-muted"),
            rx.el.img(src=t.qr, alt="Kode QR authenticator", class_name="fn-totp-qr",
                      data_testid="totp-qr"),
            rx.el.p("Atau ketik kunci ini: ", rx.el.code(t.secret, data_testid="totp-secret"),
                    class_name="fn-muted"),
            field("Kode verifikasi", _code_input(_err(e, "code")), _err(e, "code")),
            rx.button("Aktifkan", type="submit", size="3", data_testid="totp-confirm"),
            on_submit=t.confirm, reset_on_submit=True, class_name="fn-form",
        ),
        rx.button(rx.icon("shield_check", size=16), "Aktifkan verifikasi dua langkah",
                  size="3", variant="soft", on_click=t.start, data_testid="totp-start"),
    )
    manage = rx.el.div(
        rx.el.p("Aktif · sisa kode pemulihan: ", t.codes_left.to_string(),
                class_name="fn-muted", data_testid="totp-status"),
        rx.form(
            field("Kode authenticator", _code_input(_err(e, "regen_code"), "regen_code"),
                  _err(e, "regen_code")),
            rx.button("Buat kode pemulihan baru", type="submit", size="2", variant="soft"),
            on_submit=t.regenerate, reset_on_submit=True, class_name="fn-form",
        ),
        rx.form(
            rx.el.h4("Nonaktifkan", class_name="fn-section-title"),
            field("Password", text_input("password", type_="password",
                                         error=_err(e, "password"),
                                         autocomplete="current-password"),
                  _err(e, "password")),
            field("Kode authenticator atau kode pemulihan", _code_input(_err(e, "code")),
                  _err(e, "code")),
            rx.button("Nonaktifkan", type="submit", size="2", variant="outline",
                      color_scheme="red"),
            on_submit=t.disable, reset_on_submit=True, class_name="fn-form",
        ),
        class_name="fn-stack",
    )
    return rx.cond(
        t.shown,
        rx.el.div(
            rx.el.h3("Verifikasi Dua Langkah", class_name="fn-section-title"),
            alert(t.message, "success"),
            codes,
            rx.cond(t.enabled, manage, enrol),
            key=t.form_key.to_string(),
            class_name="fn-card fn-form",
            data_testid="two-factor",
        ),
    )


def _err(errors, key: str) -> rx.Var:
    return errors.get(key, "")


def _profile_form() -> rx.Component:
    e = ProfileState.profile_errors
    return rx.form(
        rx.el.h3("Data Diri", class_name="fn-section-title"),
        rx.el.div(
            field("Username", rx.el.input(value=ProfileState.username, read_only=True,
                                          class_name="fn-input", disabled=True)),
            field("Nama Usaha (area)", rx.el.input(value=ProfileState.business_name,
                                                   read_only=True, class_name="fn-input",
                                                   disabled=True),
                  hint="Diubah oleh superadmin."),
            field("Nama", text_input("name", ProfileState.name, error=_err(e, "name"),
                                     autocomplete="name"), _err(e, "name")),
            field("Nomor HP / WhatsApp",
                  text_input("phone", ProfileState.phone, type_="tel", error=_err(e, "phone"),
                             placeholder="6281234567890", input_mode="tel"),
                  _err(e, "phone"), hint="Format 62…, contoh 6281234567890"),
            class_name="fn-grid-2",
        ),
        rx.el.h3("Rekening untuk Pembayaran Transfer", class_name="fn-section-title"),
        rx.el.div(
            field("Nama Bank", text_input("bank_name", ProfileState.bank_name,
                                          error=_err(e, "bank_name"), placeholder="BCA"),
                  _err(e, "bank_name")),
            field("Nomor Rekening",
                  text_input("bank_account", ProfileState.bank_account,
                             error=_err(e, "bank_account"), input_mode="numeric"),
                  _err(e, "bank_account")),
            field("Atas Nama", text_input("bank_holder", ProfileState.bank_holder,
                                          error=_err(e, "bank_holder")),
                  _err(e, "bank_holder")),
            class_name="fn-grid-2",
        ),
        alert(_err(e, "form")),
        alert(ProfileState.profile_message, "success"),
        rx.button("Simpan Profil", type="submit", size="3", data_testid="save-profile"),
        on_submit=ProfileState.save_profile,
        reset_on_submit=False,
        key=ProfileState.form_key.to_string(),
        class_name="fn-card fn-form",
    )


def _password_form() -> rx.Component:
    e = ProfileState.password_errors
    return rx.form(
        rx.el.h3("Ganti Password", class_name="fn-section-title"),
        field("Password saat ini",
              text_input("current_password", type_="password",
                         error=_err(e, "current_password"), autocomplete="current-password"),
              _err(e, "current_password")),
        field("Password baru",
              text_input("new_password", type_="password", error=_err(e, "new_password"),
                         autocomplete="new-password"),
              _err(e, "new_password"), hint="Minimal 8 karakter, berisi huruf dan angka."),
        field("Ulangi password baru",
              text_input("confirm_password", type_="password",
                         error=_err(e, "confirm_password"), autocomplete="new-password"),
              _err(e, "confirm_password")),
        alert(ProfileState.password_message, "success"),
        rx.button("Ganti Password", type="submit", size="3", variant="soft"),
        on_submit=ProfileState.change_password,
        reset_on_submit=False,
        key=ProfileState.password_key.to_string(),
        class_name="fn-card fn-form",
    )


def _sessions() -> rx.Component:
    return rx.el.div(
        rx.el.h3("Perangkat yang Sedang Login", class_name="fn-section-title"),
        rx.foreach(
            ProfileState.sessions,
            lambda s: rx.el.div(
                rx.icon("monitor_smartphone", size=20),
                rx.el.div(
                    rx.el.div(s["device"], class_name="fn-session-device"),
                    rx.el.div("IP ", s["ip"], " · aktif ", s["last_seen"],
                              class_name="fn-muted"),
                    class_name="fn-session-text",
                ),
                rx.cond(
                    s["current"] != "",
                    rx.badge("Perangkat ini", color_scheme="green"),
                    rx.button("Keluarkan", size="1", variant="soft", color_scheme="red",
                              on_click=ProfileState.revoke(s["id"])),
                ),
                class_name="fn-session-row",
            ),
        ),
        rx.button(rx.icon("log_out", size=16), "Keluar dari perangkat ini", variant="outline",
                  color_scheme="red", on_click=SessionState.logout, data_testid="logout"),
        class_name="fn-card fn-form",
    )


@rx.page(route="/profile", title="Profil — FiberNode Internet",
         on_load=[BrandingState.load, ProfileState.load, TwoFactorState.load])
def profile_page() -> rx.Component:
    """Own account settings."""
    return app_shell(
        "Profil",
        page_title("Profil", ProfileState.role_label),
        rx.el.div(_profile_form(), rx.el.div(_password_form(), _two_factor(), _sessions(),
                                             class_name="fn-stack"),
                  class_name="fn-two-col"),
    )
