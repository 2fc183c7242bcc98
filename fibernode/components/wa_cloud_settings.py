"""The "WhatsApp Cloud API" section of ``/admin/settings`` (superadmin).

Per owner (the superadmin and each mitra): the Phone Number ID and access token of
their official WhatsApp Cloud API number, checked against the Graph API before they
are stored (:func:`fibernode.services.wa_cloud.set_credentials`); the token is never
shown back, only its last four characters. Below: the template each business message
is sent as outside the 24-hour window, its name and language, and the exact body the
owner submits in WhatsApp Manager.
"""

from __future__ import annotations

import uuid

import reflex as rx

from fibernode.components.ui import alert, field, text_input
from fibernode.services import wa_cloud
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.state.handlers import off_loop
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast

STATUS_LABELS = {"connected": "Terhubung", "disconnected": "Belum terhubung"}


class WaCloudSettingsState(rx.State):
    """Owners' Cloud API numbers and the templates, as the superadmin edits them."""

    allowed: bool = False
    owners: list[dict[str, str]] = []
    owner_id: str = ""
    templates: list[dict[str, str]] = []
    language: str = wa_cloud.DEFAULT_LANGUAGE
    errors: dict[str, str] = {}
    template_errors: dict[str, str] = {}
    saving: bool = False
    form_key: int = 0

    def _fill(self, actor) -> None:
        self.owners = [{
            "id": str(v.owner_id),
            "label": f"{v.owner_name} ({'Superadmin' if v.role == 'superadmin' else 'Mitra'})",
            "phone_id": v.phone_id or "-", "token": v.token_hint or "-",
            "status": STATUS_LABELS.get(v.status, v.status) if v.phone_id else "Belum diisi",
            "number": v.phone_number or "-"} for v in wa_cloud.list_credentials(actor)]
        if self.owners and self.owner_id not in {o["id"] for o in self.owners}:
            self.owner_id = self.owners[0]["id"]
        settings = wa_cloud.template_settings()
        self.language = next(iter(settings.values())).language
        self.templates = [{
            "type": t.message_type, "label": t.label, "name": t.name,
            "category": t.category, "body": t.body,
            "fields": ", ".join(f"{{{{{i}}}}} {f}" for i, f in enumerate(t.fields, 1))}
            for t in settings.values()]
        self.form_key += 1

    @rx.event
    async def load(self):
        """Fill the section (superadmin only; anyone else sees nothing of it)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.allowed = actor.is_superadmin
        self.errors, self.template_errors = {}, {}
        if self.allowed:
            self._fill(actor)
        return None

    @rx.event
    def choose_owner(self, owner_id: str):
        """Whose number the form sets."""
        self.owner_id = owner_id
        self.errors = {}

    @rx.event
    async def save_credentials(self, form: dict):
        """Verify with the Graph API, then store (audited as the superadmin)."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.saving = True
        yield
        try:
            owner = uuid.UUID(str(form.get("owner_id") or self.owner_id))
            # The check calls Meta's Graph API: never on the loop every tab shares.
            view = await off_loop(wa_cloud.set_credentials, actor, owner,
                                  str(form.get("phone_id", "")), str(form.get("token", "")))
        except ValueError:
            self.errors, self.saving = {"form": "Pilih pemilik nomor."}, False
            return
        except ValidationFailed as exc:
            self.errors, self.saving = exc.details, False
            yield rx.toast.error("Kredensial WhatsApp Cloud API ditolak.")
            return
        except ServiceError as exc:
            self.errors, self.saving = {"form": exc.message}, False
            yield toast("error", exc.message)
            return
        self.errors, self.saving = {}, False
        self._fill(actor)  # also empties the token field
        yield toast("success", f"Nomor {view.phone_number or view.phone_id} milik "
                    f"{view.owner_name} terhubung ke WhatsApp Cloud API.")

    @rx.event
    async def save_templates(self, form: dict):
        """Template names and language (audited)."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        names = {k: str(form.get(f"template_{k}", "")) for k in wa_cloud.TEMPLATES}
        try:
            changes = wa_cloud.update_template_settings(actor, names,
                                                        str(form.get("language", "")))
        except ValidationFailed as exc:
            self.template_errors = exc.details
            yield rx.toast.error("Periksa kembali nama template.")
            return
        except ServiceError as exc:
            self.template_errors = {"form": exc.message}
            yield toast("error", exc.message)
            return
        self.template_errors = {}
        self._fill(actor)
        yield rx.toast.success("Template tersimpan." if changes else "Tidak ada perubahan.")


S = WaCloudSettingsState


def _owner_row(o: rx.Var) -> rx.Component:
    return rx.el.tr(rx.el.td(o["label"]), rx.el.td(o["phone_id"]), rx.el.td(o["number"]),
                    rx.el.td(o["token"]), rx.el.td(o["status"]),
                    data_testid="cloud-owner-row")


def _credentials_form() -> rx.Component:
    return rx.form(
        rx.el.div(
            field("Pemilik nomor", rx.el.select(
                rx.foreach(S.owners, lambda o: rx.el.option(o["label"], value=o["id"])),
                name="owner_id", value=S.owner_id, on_change=S.choose_owner,
                class_name="fn-input", data_testid="cloud-owner-select")),
            field("Phone Number ID", text_input("phone_id", error=S.errors.get("phone_id", ""),
                                                input_mode="numeric",
                                                placeholder="106540352242922"),
                  S.errors.get("phone_id", ""), hint="Dari WhatsApp Manager → Nomor telepon."),
            field("Token akses", text_input("token", type_="password",
                                            error=S.errors.get("token", ""),
                                            autocomplete="new-password"),
                  S.errors.get("token", ""),
                  hint="Token pengguna sistem (permanen). Disimpan terenkripsi."),
            class_name="fn-grid-2",
        ),
        alert(S.errors.get("form", "")),
        rx.el.div(rx.button(rx.icon("shield_check", size=16), "Periksa & Simpan",
                            type="submit", loading=S.saving, data_testid="cloud-save"),
                  class_name="fn-settings-actions"),
        on_submit=S.save_credentials, reset_on_submit=False, key=S.form_key.to_string(),
        class_name="fn-stack",
    )


def _template_card(t: rx.Var) -> rx.Component:
    return rx.el.div(
        field(t["label"], rx.el.input(name="template_" + t["type"].to(str),
                                      default_value=t["name"], class_name="fn-input",
                                      spell_check=False, auto_complete="off"),
              S.template_errors.get(t["type"].to(str), ""),
              hint="Kategori " + t["category"].to(str) + ". Variabel: "
              + t["fields"].to(str)),
        rx.el.pre(t["body"], class_name="fn-code", data_testid="cloud-template-body"),
        class_name="fn-stack-tight",
    )


def _templates_form() -> rx.Component:
    return rx.form(
        rx.el.p("Pengingat, nota dan pemberitahuan isolir dikirim sebagai template yang "
                "sudah disetujui WhatsApp jika pelanggan belum mengirim pesan dalam 24 jam "
                "terakhir. Ajukan isi berikut persis di WhatsApp Manager dengan nama dan "
                "bahasa yang sama.", class_name="fn-muted"),
        rx.foreach(S.templates, _template_card),
        field("Bahasa template", rx.el.input(name="language", default_value=S.language,
                                             class_name="fn-input", spell_check=False),
              S.template_errors.get("language", ""), hint="Kode bahasa, contoh id."),
        alert(S.template_errors.get("form", "")),
        rx.el.div(rx.button(rx.icon("save", size=16), "Simpan Template", type="submit",
                            data_testid="cloud-templates-save"),
                  class_name="fn-settings-actions"),
        on_submit=S.save_templates, reset_on_submit=False, key=S.form_key.to_string(),
        class_name="fn-stack",
    )


def wa_cloud_section() -> rx.Component:
    """The section, loaded when it mounts (the settings page is superadmin-only)."""
    return rx.el.section(
        rx.el.h3(rx.icon("message_circle", size=18), "WhatsApp Cloud API",
                 class_name="fn-section-title fn-settings-title"),
        rx.cond(S.allowed, rx.fragment(
            rx.el.p("Dipakai bila WA_MODE=cloud. Kredensial diperiksa langsung ke "
                    "WhatsApp sebelum disimpan.", class_name="fn-muted"),
            rx.el.table(
                rx.el.thead(rx.el.tr(rx.el.th("Pemilik"), rx.el.th("Phone Number ID"),
                                     rx.el.th("Nomor"), rx.el.th("Token"),
                                     rx.el.th("Status"))),
                rx.el.tbody(rx.foreach(S.owners, _owner_row)),
                class_name="fn-table"),
            _credentials_form(),
            _templates_form(),
        )),
        on_mount=S.load,
        class_name="fn-card fn-form fn-settings-section",
        data_testid="settings-wa-cloud",
    )
