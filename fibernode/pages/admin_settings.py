"""``/admin/settings``: identity, logos, receipt fields, domain, SSL, WhatsApp Cloud API.

Every save goes through :func:`fibernode.services.settings.update_settings` and
every logo through :mod:`fibernode.services.branding` (both audited). The
superadmin's own splash, header and favicon switch at once; other clients pick
the new branding up the next time they open the app (no rebuild).
"""

from __future__ import annotations

import asyncio

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import alert, field, page_title, superadmin_page, text_input
from fibernode.components.wa_cloud_settings import wa_cloud_section
from fibernode.services import branding, settings
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast

LOGO_UPLOAD_ID = "logo_upload"
SPLASH_UPLOAD_ID = "splash_upload"
ACCEPT = {"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/webp": [".webp"],
          "image/svg+xml": [".svg"]}
RECEIPT_TOGGLES = [
    ("receipt_logo_enabled", "Tampilkan logo"),
    ("receipt_show_company_name", "Nama perusahaan / mitra"),
    ("receipt_show_customer_phone", "Nomor HP pelanggan"),
    ("receipt_show_nik", "NIK (disamarkan)"),
    ("receipt_show_area", "Area"),
    ("receipt_show_package", "Paket internet"),
    ("receipt_show_discount", "Harga & diskon"),
    ("receipt_show_payment_method", "Metode pembayaran"),
    ("receipt_show_paid_by", "Dicatat oleh"),
]
ICON_PREVIEWS = [
    ("favicon_url", "Favicon 32 px", "32"),
    ("apple_touch_icon_url", "Apple touch 180 px", "180"),
    ("icon_192_url", "Ikon aplikasi 192 px", "192"),
    ("icon_512_url", "Ikon aplikasi 512 px", "512"),
    ("icon_maskable_url", "Ikon maskable 512 px", "512"),
]
SSL_OPTIONS = [("none", "Tanpa SSL (HTTP saja)"),
               ("letsencrypt", "Let's Encrypt (certbot / reverse proxy)"),
               ("cloudflare", "Cloudflare (proxy + Origin Certificate)")]
TEXT_KEYS = ("app_name", "meta_description", "receipt_footer_text")


class AdminSettingsState(rx.State):
    """The settings on screen; text fields are uncontrolled (keyed by ``form_key``)."""

    forbidden: bool = False
    ready: bool = False
    texts: dict[str, str] = {}
    theme_color: str = settings.DEFAULTS["theme_color"]
    splash_bg_color: str = settings.DEFAULTS["splash_bg_color"]
    domain: str = ""
    ssl_method: str = "none"
    toggles: dict[str, bool] = {}
    errors: dict[str, str] = {}
    form_key: int = 0
    saving: bool = False
    logo_url: str = settings.DEFAULT_LOGO
    splash_logo_url: str = settings.DEFAULT_LOGO
    custom_logo: bool = False
    custom_splash: bool = False
    icons: list[dict[str, str]] = []
    app_version: str = ""
    upload_error: str = ""
    splash_error: str = ""
    uploading: str = ""  # "logo" / "splash" while the pipeline runs

    def _fill(self) -> None:
        v = settings.get_values()
        self.texts = {k: v.get(k, "") for k in TEXT_KEYS}
        self.theme_color, self.splash_bg_color = v["theme_color"], v["splash_bg_color"]
        self.domain, self.ssl_method = v["domain"], v["ssl_method"] or "none"
        self.toggles = {k: v.get(k) == "true" for k, _ in RECEIPT_TOGGLES}
        self.app_version = v["app_version"]
        self._fill_logos()
        self.form_key += 1

    def _fill_logos(self) -> None:
        """Logo previews only: the form (and what is typed in it) stays as it is."""
        v = settings.get_values(["logo_url", "splash_logo_url"])
        self.custom_logo = bool(v["logo_url"])
        self.custom_splash = bool(v["splash_logo_url"])
        b = settings.get_branding(Actor.anonymous())
        self.logo_url, self.splash_logo_url = b.logo_url, b.splash_logo_url
        self.icons = [{"label": label, "url": getattr(b, key), "size": size}
                      for key, label, size in ICON_PREVIEWS]

    async def _refresh_branding(self) -> None:
        """The superadmin's own splash, header and favicon follow at once."""
        state = await self.get_state(BrandingState)
        state._apply(settings.get_branding(Actor.anonymous()))

    @rx.event
    async def load(self):
        """Page load; a mitra gets the no-access view."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.forbidden = not actor.is_superadmin
        self.errors, self.upload_error, self.splash_error = {}, "", ""
        if not self.forbidden:
            self._fill()
        self.ready = True
        return None

    @rx.event
    def set_color(self, key: str, value: str):
        """Colour picker and hex field share one value."""
        if key == "theme_color":
            self.theme_color = value
        elif key == "splash_bg_color":
            self.splash_bg_color = value

    @rx.event
    def set_domain(self, value: str):
        """The deployment notes follow the typed domain."""
        self.domain = value

    @rx.event
    def set_ssl_method(self, value: str):
        """The deployment notes follow the chosen method."""
        self.ssl_method = value

    @rx.event
    def set_toggle(self, key: str, value: bool):
        """Switch one receipt field on or off (saved with the form)."""
        self.toggles = {**self.toggles, key: bool(value)}

    @rx.event
    async def save(self, form: dict):
        """Save every section at once (audited)."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        values: dict[str, str | bool] = {k: form.get(k, "") for k in TEXT_KEYS}
        values.update(theme_color=self.theme_color, splash_bg_color=self.splash_bg_color,
                      domain=self.domain, ssl_method=self.ssl_method)
        values.update(self.toggles)
        self.saving = True
        yield
        try:
            changes = settings.update_settings(actor, values)
        except ValidationFailed as exc:
            self.errors, self.saving = exc.details, False
            yield rx.toast.error("Periksa kembali isian yang ditandai.")
            return
        except ServiceError as exc:
            self.errors, self.saving = {"form": exc.message}, False
            yield toast("error", exc.message)
            return
        self.errors, self.saving = {}, False
        self._fill()
        await self._refresh_branding()
        yield rx.toast.success("Pengaturan tersimpan." if changes
                               else "Tidak ada perubahan.")

    async def _upload(self, files: list[rx.UploadFile], target: str):
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        if not files:
            return
        self.uploading = target
        self.upload_error = self.splash_error = ""
        yield
        upload = files[0]
        data = await upload.read(branding.MAX_BYTES + 1)
        try:
            # Seconds of decoding and drawing: in a thread, so other users' events go on.
            await asyncio.to_thread(branding.upload_logo, actor, data, upload.name or "",
                                    target=target)
        except ServiceError as exc:
            message = exc.details.get("file") if isinstance(exc, ValidationFailed) else None
            message = message or exc.message
            if target == "splash":
                self.splash_error = message
            else:
                self.upload_error = message
            self.uploading = ""
            yield rx.clear_selected_files(SPLASH_UPLOAD_ID if target == "splash"
                                          else LOGO_UPLOAD_ID)
            return
        self.uploading = ""
        self._fill_logos()
        await self._refresh_branding()
        yield rx.clear_selected_files(SPLASH_UPLOAD_ID if target == "splash"
                                      else LOGO_UPLOAD_ID)
        yield rx.toast.success("Logo splash diperbarui." if target == "splash"
                               else "Logo dan ikon aplikasi diperbarui.")

    @rx.event
    async def upload_logo(self, files: list[rx.UploadFile]):
        """Logo for the header, receipts, favicon and app icons."""
        async for update in self._upload(files, "logo"):
            yield update

    @rx.event
    async def upload_splash(self, files: list[rx.UploadFile]):
        """A separate logo for the splash screen."""
        async for update in self._upload(files, "splash"):
            yield update

    @rx.event
    async def reset_logo(self, target: str):
        """Back to the shipped logo (or splash = logo)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            branding.reset_logo(actor, target)
        except ServiceError as exc:
            return toast("error", exc.message)
        self._fill_logos()
        await self._refresh_branding()
        return rx.toast.success("Logo dikembalikan ke bawaan.")

    @rx.var
    def public_url(self) -> str:
        """What PUBLIC_URL / CORS_ORIGIN should be for the domain and method."""
        scheme = "http" if self.ssl_method == "none" else "https"
        return f"{scheme}://{(self.domain or '').strip().lower() or 'domain-anda.id'}"

    @rx.var
    def domain_label(self) -> str:
        """The domain, or a placeholder in the notes."""
        return (self.domain or "").strip().lower() or "domain-anda.id"


S = AdminSettingsState


def _err(key: str) -> rx.Var:
    return S.errors.get(key, "")


def _section(title: str, icon: str, *children: rx.Component, test_id: str = "",
             ) -> rx.Component:
    return rx.el.section(
        rx.el.h3(rx.icon(icon, size=18), title, class_name="fn-section-title fn-settings-title"),
        *children,
        class_name="fn-card fn-form fn-settings-section",
        data_testid=test_id or None,
    )


def _color_field(key: str, label: str, value: rx.Var, hint: str) -> rx.Component:
    return field(
        label,
        rx.el.div(
            rx.el.input(type="color", value=value, on_change=S.set_color(key),
                        class_name="fn-color-swatch", aria_label=f"Pilih {label.lower()}"),
            rx.el.input(value=value, on_change=S.set_color(key),
                        class_name=rx.cond(_err(key) != "", "fn-input fn-input-error",
                                           "fn-input"),
                        placeholder="#3B82F6", max_length=7, spell_check=False,
                        data_testid=f"{key}-input"),
            class_name="fn-color-field",
        ),
        _err(key), hint=hint,
    )


def _identity() -> rx.Component:
    t = S.texts
    return _section(
        "Identitas", "badge_info",
        rx.el.div(
            field("Nama aplikasi", text_input("app_name", t.get("app_name", ""),
                                              error=_err("app_name")),
                  _err("app_name"), hint="Tampil di splash, login, header dan nota."),
            field("Meta description", text_input("meta_description",
                                                 t.get("meta_description", ""),
                                                 error=_err("meta_description")),
                  _err("meta_description"), hint="Deskripsi singkat untuk mesin pencari."),
            _color_field("theme_color", "Warna tema", S.theme_color,
                         "Warna bilah browser dan aplikasi terpasang."),
            _color_field("splash_bg_color", "Warna latar splash", S.splash_bg_color,
                         "Juga latar ikon maskable jika logo transparan."),
            class_name="fn-grid-2",
        ),
        test_id="settings-identity",
    )


def _logo_box(title: str, url: rx.Var, custom: rx.Var, upload_id: str, handler,
              error: rx.Var, target: str) -> rx.Component:
    return rx.el.div(
        rx.el.strong(title),
        rx.el.div(rx.el.img(src=url, alt=title, class_name="fn-logo-preview-img",
                            data_testid=f"{target}-preview"),
                  class_name="fn-logo-preview"),
        rx.upload.root(
            rx.el.div(
                rx.cond(S.uploading == target,
                        rx.el.span(rx.spinner(), "Memproses logo…", class_name="fn-card-row"),
                        rx.fragment(
                            rx.icon("image_up", size=28, class_name="fn-empty-icon"),
                            rx.el.strong("Pilih atau seret gambar"),
                            rx.el.span("PNG, JPG, WebP atau SVG · maks. 2 MB · min. 64×64 px",
                                       class_name="fn-muted"),
                        )),
                class_name="fn-dropzone fn-dropzone-compact",
            ),
            id=upload_id,
            multiple=False,
            max_files=1,
            accept=ACCEPT,
            on_drop=handler(rx.upload_files(upload_id=upload_id)),
            disabled=S.uploading != "",
            data_testid=f"{target}-upload",
        ),
        rx.cond(error != "", rx.el.div(rx.icon("circle_alert", size=18), error,
                                       class_name="fn-alert fn-alert-error", role="alert",
                                       data_testid=f"{target}-upload-error")),
        rx.cond(custom, rx.button(rx.icon("rotate_ccw", size=16), "Kembalikan ke bawaan",
                                  type="button", variant="soft", color_scheme="gray",
                                  on_click=S.reset_logo(target), data_testid=f"{target}-reset")),
        class_name="fn-stack-tight fn-logo-box",
    )


def _logo() -> rx.Component:
    return _section(
        "Logo", "image",
        rx.el.div(
            _logo_box("Logo utama", S.logo_url, S.custom_logo, LOGO_UPLOAD_ID, S.upload_logo,
                      S.upload_error, "logo"),
            _logo_box("Logo splash", S.splash_logo_url, S.custom_splash, SPLASH_UPLOAD_ID,
                      S.upload_splash, S.splash_error, "splash"),
            class_name="fn-grid-2",
        ),
        rx.el.p("Logo utama dipakai di header, login, nota, favicon dan ikon aplikasi (PWA). "
                "Logo splash boleh kosong: splash memakai logo utama.", class_name="fn-muted"),
        rx.el.div(
            rx.foreach(S.icons, lambda icon: rx.el.figure(
                rx.el.img(src=icon["url"], alt=icon["label"], class_name="fn-icon-preview-img",
                          data_size=icon["size"]),
                rx.el.figcaption(icon["label"]),
                class_name="fn-icon-preview",
            )),
            class_name="fn-icon-previews",
            data_testid="icon-previews",
        ),
        test_id="settings-logo",
    )


def _receipt() -> rx.Component:
    return _section(
        "Nota", "receipt",
        rx.el.div(
            *[rx.el.label(
                rx.switch(checked=S.toggles.get(key, False), on_change=S.set_toggle(key),
                          data_testid=f"toggle-{key}"),
                rx.el.span(label),
                class_name="fn-check fn-switch-row",
            ) for key, label in RECEIPT_TOGGLES],
            class_name="fn-switch-grid",
        ),
        field("Teks footer nota",
              rx.el.textarea(name="receipt_footer_text", id="receipt_footer_text",
                             default_value=S.texts.get("receipt_footer_text", ""),
                             rows=2, max_length=500,
                             class_name=rx.cond(_err("receipt_footer_text") != "",
                                                "fn-input fn-input-error", "fn-input")),
              _err("receipt_footer_text")),
        test_id="settings-receipt",
    )


def _code(text) -> rx.Component:
    return rx.el.code(text, class_name="fn-detail")


def _notes() -> rx.Component:
    common = rx.fragment(
        rx.el.li("DNS: buat A record ", rx.el.strong(S.domain_label),
                 " ke alamat IP publik server."),
        rx.el.li("Di file .env server: ", _code("PUBLIC_URL=" + S.public_url), " dan ",
                 _code("CORS_ORIGIN=" + S.public_url), ", lalu jalankan ulang container."),
    )
    return rx.el.div(
        rx.el.strong("Catatan deploy"),
        rx.el.ol(
            common,
            rx.match(
                S.ssl_method,
                ("letsencrypt", rx.fragment(
                    rx.el.li("Buka port 80 dan 443. Pasang reverse proxy (nginx/Caddy/Traefik) "
                             "di depan aplikasi (port 8000)."),
                    rx.el.li("Terbitkan sertifikat: ",
                             _code("certbot certonly --webroot -w /var/www/certbot -d "
                                   + S.domain_label),
                             " (perpanjang otomatis dengan certbot renew)."),
                )),
                ("cloudflare", rx.fragment(
                    rx.el.li("Di Cloudflare: aktifkan proxy (awan oranye) pada record DNS dan "
                             "pilih mode SSL/TLS \"Full (strict)\"."),
                    rx.el.li("Buat Origin Certificate (SSL/TLS → Origin Server) untuk ",
                             rx.el.strong(S.domain_label),
                             " dan pasang sertifikat + kunci di reverse proxy server."),
                )),
                rx.el.li("Tanpa SSL hanya cocok untuk jaringan lokal atau uji coba: "
                         "instalasi PWA, service worker dan kamera butuh HTTPS."),
            ),
        ),
        class_name="fn-alert fn-alert-info fn-deploy-notes",
        data_testid="deploy-notes",
    )


def _domain() -> rx.Component:
    return _section(
        "Domain & SSL", "globe",
        rx.el.div(
            field("Domain kustom",
                  rx.el.input(value=S.domain, on_change=S.set_domain,
                              placeholder="tagihan.fibernode.id", spell_check=False,
                              auto_capitalize="none", input_mode="url",
                              class_name=rx.cond(_err("domain") != "",
                                                 "fn-input fn-input-error", "fn-input"),
                              data_testid="domain-input"),
                  _err("domain"), hint="Tanpa http://, contoh tagihan.fibernode.id"),
            field("Metode SSL",
                  rx.el.select(*[rx.el.option(label, value=value)
                                 for value, label in SSL_OPTIONS],
                               value=S.ssl_method, on_change=S.set_ssl_method,
                               class_name="fn-input",
                               data_testid="ssl-select"),
                  _err("ssl_method")),
            class_name="fn-grid-2",
        ),
        _notes(),
        test_id="settings-domain",
    )


def _version() -> rx.Component:
    return _section(
        "Versi", "info",
        rx.el.div(rx.el.span("Versi aplikasi", class_name="fn-muted"),
                  rx.el.strong("v", S.app_version, data_testid="settings-version"),
                  class_name="fn-card-row"),
        rx.el.p("Diisi otomatis dari paket yang berjalan; tidak bisa diubah di sini.",
                class_name="fn-muted"),
    )


@rx.page(route="/admin/settings", title="Pengaturan — FiberNode Internet",
         on_load=[BrandingState.load, AdminSettingsState.load])
def admin_settings_page() -> rx.Component:
    """Website, logo, receipt and domain settings."""
    return app_shell(
        "Pengaturan",
        superadmin_page(
            S.ready, S.forbidden,
            rx.el.div(page_title("Pengaturan", "Identitas aplikasi, logo, nota, domain & SSL. "
                                 "Setiap perubahan tercatat di log aktivitas."),
                      class_name="fn-page-bar"),
            _logo(),
            rx.form(
                _identity(),
                _receipt(),
                _domain(),
                alert(_err("form")),
                rx.el.div(
                    rx.button(rx.icon("save", size=16), "Simpan Pengaturan", type="submit",
                              size="3", loading=S.saving, data_testid="save-settings"),
                    class_name="fn-settings-actions",
                ),
                on_submit=S.save,
                reset_on_submit=False,
                key=S.form_key.to_string(),
                class_name="fn-stack",
            ),
            wa_cloud_section(),
            _version(),
        ),
    )
