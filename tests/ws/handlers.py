"""Every state and event handler of the app, classified like the REST routes.

``ROWS`` maps ``<state>.<handler>`` (the state's short name) to a :class:`Row`;
``tests/ws/test_event_handlers.py`` fails when the app has a handler without a
row, or the table names one that is gone, so a new handler must be classified
here before it can land.

Access (``Row.access``):

* ``public``   — meant for clients without a session (login, receipts, branding,
  layout, Reflex's hydrate and internals): still carries no user data.
* ``user``     — any logged-in role, rows scoped by the services.
* ``super``    — superadmin only: both mitra and anonymous are refused.
* ``owned``    — takes the id of a tenant's row (``Row.kind``): every caller gets
  *another* tenant's row (mitra A gets mitra B's, everyone else mitra A's); only
  the superadmin may see or change it.
* ``ui``       — opens, closes or toggles a piece of the page; no data.
* ``upload``   — an upload target (reached over HTTP ``/_upload``); over the
  socket it gets no files.
* ``helper``   — a plain method Reflex exposes as an event handler although no
  page calls it; it must do nothing for any caller.

Every row, for every caller, is held to the same oracle (tests/ws/oracle.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fibernode import clock

Args = Callable[[Any, str], dict[str, Any]]  # (estate, role) -> payload
PERIOD = clock.current_period()
TODAY = clock.today().isoformat()


@dataclass(frozen=True)
class Row:
    """How one handler is called and what the spec allows."""

    access: str
    args: Args | None = None
    kind: str | None = None  # the kind of row an ``owned`` handler takes
    page: str | None = None  # overrides the state's page ("{customer}" is filled in)
    fresh_tab: bool = False  # ends or changes the tab's session: use a throwaway tab
    background: bool = False  # a background task that may keep running


def const(**payload: Any) -> Args:
    return lambda _e, _r: payload


def other(kind: str, name: str = "", **extra: Any) -> Args:
    """Payload ``{name: <another tenant's row of kind>}`` plus constants."""
    arg = name or f"{kind}_id"
    return lambda e, r: {arg: str(e.other(kind, r)), **extra}


def form(build: Callable[[Any, str], dict[str, Any]]) -> Args:
    return lambda e, r: {"form": build(e, r)}


def cform(**values: Any) -> Args:
    return lambda _e, _r: {"form": dict(values)}


# The page each state lives on (its load handler's route).
PAGES: dict[str, str] = {
    "state": "/", "proof_state": "/invoices", "activity_state": "/admin/activity",
    "admin_finance_state": "/admin/finance", "mitra_state": "/admin/mitra",
    "packages_state": "/admin/packages", "admin_settings_state": "/admin/settings",
    "customer_detail_state": "/customers/{customer}", "import_state": "/customers/import",
    "wa_cloud_settings_state": "/admin/settings",
    "customer_replies_state": "/customers/{customer}",
    "customers_state": "/customers", "dashboard_state": "/", "finance_state": "/finance",
    "finance_report_state": "/finance/report", "invoices_state": "/invoices",
    "login_state": "/login", "profile_state": "/profile", "two_factor_state": "/profile",
    "receipt_state": "/receipt/{receipt}", "whats_app_state": "/whatsapp",
    "branding_state": "/", "notification_state": "/", "header_search_state": "/",
    "session_state": "/", "ui_state": "/", "shared_state_base_internal": "/",
    "frontend_event_exception_state": "/", "on_load_internal_state": "/",
    "update_vars_internal_state": "/",
}

_customer_form = form(lambda e, r: {
    "name": "Pelanggan Uji Soket", "phone": f"0815{e.next():08d}",
    "package_id": str(e.package_id), "billing_date": "7",
    "owner_id": str(e.owner_of_other(r))})
_move = form(lambda e, r: {"new_owner_id": str(e.owner_of_other(r))})
_run = form(lambda e, r: {"period": PERIOD, "owner_id": str(e.owner_of_other(r))})
_recap = form(lambda e, r: {"start": TODAY, "end": TODAY, "fmt": "csv",
                            "owner": str(e.owner_of_other(r))})
_settle = form(lambda e, r: {"year": PERIOD[:4], "month": PERIOD[5:7], "fmt": "csv",
                             "owner": str(e.owner_of_other(r))})
_owner_value = lambda e, r: {"value": str(e.owner_of_other(r))}  # noqa: E731

ROWS: dict[str, Row] = {
    # --- Reflex's own handlers on the root and its internal states ---------------------
    "state.hydrate": Row("public"),
    "state.hydrate_and_load": Row("public", args=const(vars=None, hashes=None)),
    "state.set_is_hydrated": Row("public", args=const(value=True)),
    "on_load_internal_state.on_load_internal": Row("public"),
    "on_load_internal_state.set_is_hydrated": Row("public", args=const(value=True)),
    "update_vars_internal_state.update_vars_internal": Row(
        "public", args=lambda e, r: {"vars": e.identity_vars(r)}),
    "frontend_event_exception_state.handle_frontend_exception": Row(
        "public", args=const(info="Error: uji", component_stack="")),
    # --- public pages -------------------------------------------------------------------
    "login_state.submit": Row("public", args=cform(username="tidak-ada", password="salah")),
    "login_state.arrive": Row("public"),
    "receipt_state.load": Row("public"),
    "branding_state.load": Row("public"),
    "ui_state.toggle_sidebar": Row("public"),
    # --- the session ----------------------------------------------------------------------
    "session_state.logout": Row("user", fresh_tab=True),
    "session_state.redirect_if_logged_in": Row("user", page="/login"),
    "notification_state.load": Row("user"),
    "header_search_state.search": Row("user", args=lambda e, r: {"term": e.mark_of_other(r)}),
    "header_search_state.submit": Row("user", args=lambda e, r: {
        "form": {"q": e.mark_of_other(r)}}),
    "header_search_state.close": Row("ui"),
    # --- payment proofs -------------------------------------------------------------------
    "proof_state.open_for": Row("owned", kind="paid_invoice",
                                args=other("paid_invoice", "invoice_id", title="Bukti")),
    "proof_state.delete": Row("owned", kind="proof", args=other("proof", "proof_id")),
    "proof_state.refresh": Row("user"),
    "proof_state.poll": Row("user", background=True),
    "proof_state.set_open": Row("ui", args=const(value=True)),
    "proof_state.handle_upload": Row("upload", args=const(files=[])),
    # --- the audit log (superadmin) ---------------------------------------------------------
    "activity_state.load": Row("super"),
    "activity_state.open": Row("super"),
    "activity_state.go": Row("super", args=const(delta=1)),
    "activity_state.apply_filter": Row("super", args=cform(action_group="", user="")),
    "activity_state.reset_filters": Row("super"),
    "activity_state.clear_history": Row("super"),
    "activity_state.show_history": Row("super", kind="customer", args=lambda e, r: {
        "resource": "customers", "resource_id": str(e.other("customer", r))}),
    "activity_state.toggle_json": Row("super", kind="audit",
                                      args=other("audit", "row_id")),
    # --- mitra finance (superadmin) -----------------------------------------------------------
    "admin_finance_state.load": Row("super"),
    "admin_finance_state.open_owner": Row("super", kind="owner",
                                          args=other("owner", "owner_id")),
    "admin_finance_state.set_month": Row("super", args=const(value=PERIOD[5:7])),
    "admin_finance_state.set_year": Row("super", args=const(value=PERIOD[:4])),
    "admin_finance_state.sort_by": Row("super", args=const(column="name")),
    # --- mitra accounts (superadmin) ------------------------------------------------------------
    "mitra_state.load": Row("super"),
    "mitra_state.refresh": Row("super"),
    "mitra_state.go": Row("super", args=const(delta=1)),
    "mitra_state.apply_search": Row("super", args=cform(search="Qz")),
    "mitra_state.activate": Row("super", kind="mitra", args=other("mitra", "mitra_id")),
    "mitra_state.ask": Row("super", kind="mitra", args=lambda e, r: {
        "action": "deactivate", "mitra_id": str(e.other("mitra", r)), "name": "x"}),
    "mitra_state.confirm": Row("super"),
    "mitra_state.open_create": Row("super"),
    "mitra_state.open_edit": Row("super", kind="mitra", args=other("mitra", "mitra_id")),
    "mitra_state.open_password": Row("super", kind="mitra", args=lambda e, r: {
        "mitra_id": str(e.other("mitra", r)), "name": "x"}),
    "mitra_state.reset_password": Row("super", args=cform(new_password="Baru12345!")),
    "mitra_state.save": Row("super", args=cform(username="", name="")),
    "mitra_state.set_confirm_open": Row("ui", args=const(value=True)),
    "mitra_state.set_form_open": Row("ui", args=const(value=True)),
    "mitra_state.set_password_open": Row("ui", args=const(value=True)),
    # --- packages (superadmin) -----------------------------------------------------------------
    "packages_state.load": Row("super"),
    "packages_state.ask_delete": Row("super", kind="package", args=lambda e, r: {
        "package_id": str(e.other("package", r)), "name": "x"}),
    "packages_state.delete": Row("super"),
    "packages_state.open_create": Row("super"),
    "packages_state.open_edit": Row("super", kind="package",
                                    args=other("package", "package_id")),
    "packages_state.save": Row("super", args=cform(name="", speed="", price="")),
    "packages_state.toggle_active": Row("super", kind="package", args=lambda e, r: {
        "package_id": str(e.other("package", r)), "active": False}),
    "packages_state.set_delete_open": Row("ui", args=const(value=True)),
    "packages_state.set_form_open": Row("ui", args=const(value=True)),
    # --- settings (superadmin) -----------------------------------------------------------------
    "admin_settings_state.load": Row("super"),
    "admin_settings_state.save": Row("super", args=cform(app_name="Uji Soket Net")),
    "admin_settings_state.reset_logo": Row("super", args=const(target="logo")),
    "admin_settings_state.set_color": Row("super", args=const(key="theme_color",
                                                              value="#112233")),
    "admin_settings_state.set_domain": Row("super", args=const(value="uji.example")),
    "admin_settings_state.set_ssl_method": Row("super", args=const(value="none")),
    "admin_settings_state.set_toggle": Row("super", args=const(key="wa_enabled",
                                                               value=True)),
    "admin_settings_state.upload_logo": Row("upload", args=const(files=[])),
    "admin_settings_state.upload_splash": Row("upload", args=const(files=[])),
    # --- one subscriber (the page of another tenant's subscriber) ------------------------------
    # Malformed on purpose: refused before any call to the Graph API.
    "wa_cloud_settings_state.load": Row("super"),
    "wa_cloud_settings_state.choose_owner": Row("ui", args=const(owner_id="x")),
    "wa_cloud_settings_state.save_credentials": Row("super", args=cform(
        owner_id=str(uuid.UUID(int=1)), phone_id="x", token="y")),
    "wa_cloud_settings_state.save_templates": Row("super", args=cform(
        template_reminder="fibernode_pengingat", language="id")),
    "customer_replies_state.load_for": Row("owned", kind="customer",
                                           args=other("customer", "customer_id")),
    "customer_detail_state.load": Row("owned", kind="customer"),
    "customer_detail_state.edit": Row("owned", kind="customer"),
    "customer_detail_state.delete": Row("owned", kind="customer"),
    "customer_detail_state.move": Row("owned", kind="customer", args=_move),
    "customer_detail_state.toggle_inactive": Row("owned", kind="customer"),
    "customer_detail_state.toggle_isolir": Row("owned", kind="customer",
                                               args=cform(reason="uji")),
    "customer_detail_state.open_wa": Row("owned", kind="customer"),
    "customer_detail_state.resend": Row("owned", kind="failed_log",
                                        args=other("failed_log", "log_id")),
    "customer_detail_state.ask_resend": Row("ui", args=const(log_id="")),
    "customer_detail_state.set_resend_open": Row("ui", args=const(value=False)),
    "customer_detail_state.send_wa": Row("owned", kind="customer", args=cform(text="Halo")),
    "customer_detail_state.choose_wa_template": Row("owned", kind="customer",
                                                    args=const(template="reminder")),
    "customer_detail_state.open_edit": Row("owned", kind="customer",
                                           args=other("customer", "customer_id")),
    "customer_detail_state.open_create": Row("user"),
    "customer_detail_state.save_form": Row("user", args=_customer_form),
    "customer_detail_state.preview_discount_text": Row("user", args=const(raw="10")),
    "customer_detail_state.preview_package": Row("user", kind="package",
                                                 args=other("package", "package_id")),
    "customer_detail_state.set_delete_open": Row("ui", args=const(value=True)),
    "customer_detail_state.set_form_open": Row("ui", args=const(value=True)),
    "customer_detail_state.set_isolate_open": Row("ui", args=const(value=True)),
    "customer_detail_state.set_move_open": Row("ui", args=const(value=True)),
    "customer_detail_state.set_wa_open": Row("ui", args=const(value=True)),
    # --- subscriber import (superadmin) -------------------------------------------------------
    "import_state.load": Row("super"),
    "import_state.go": Row("super", args=const(delta=1)),
    "import_state.cancel": Row("super"),
    "import_state.confirm": Row("super"),
    "import_state.download_errors": Row("super"),
    "import_state.download_sample": Row("super"),
    "import_state.poll": Row("super", background=True),
    "import_state.set_outcome": Row("super", args=const(value="error")),
    "import_state.start_over": Row("super"),
    "import_state.handle_upload": Row("upload", args=const(files=[])),
    # --- subscribers ------------------------------------------------------------------------
    "customers_state.load": Row("user"),
    "customers_state.refresh": Row("user"),
    "customers_state.go": Row("user", args=const(delta=1)),
    "customers_state.apply_search": Row("user", args=lambda e, r: {
        "form": {"search": e.mark_of_other(r)}}),
    "customers_state.clear_search": Row("user"),
    "customers_state.reset_filters": Row("user"),
    "customers_state.sort_by": Row("user", args=const(column="name")),
    "customers_state.set_day_filter": Row("user", args=const(value="5")),
    "customers_state.set_package_filter": Row("user", kind="package",
                                              args=lambda e, r: {"value": str(e.package_id)}),
    "customers_state.set_status": Row("user", args=const(value="active")),
    "customers_state.set_owner_filter": Row("owned", kind="owner", args=_owner_value),
    "customers_state.toggle_selected": Row("owned", kind="customer",
                                           args=other("customer", "customer_id")),
    "customers_state.toggle_all": Row("user"),
    "customers_state.move_selected": Row("user", args=_move),
    "customers_state.open_create": Row("user"),
    "customers_state.open_edit": Row("owned", kind="customer",
                                     args=other("customer", "customer_id")),
    "customers_state.save_form": Row("user", args=_customer_form),
    "customers_state.preview_discount_text": Row("user", args=const(raw="10")),
    "customers_state.preview_package": Row("user", kind="package",
                                           args=other("package", "package_id")),
    "customers_state.set_filters_open": Row("ui", args=const(value=True)),
    "customers_state.set_form_open": Row("ui", args=const(value=True)),
    "customers_state.set_move_open": Row("ui", args=const(value=True)),
    # --- dashboard ----------------------------------------------------------------------------
    "dashboard_state.load": Row("user"),
    "dashboard_state.set_owner_filter": Row("owned", kind="owner", args=_owner_value),
    # --- finance ------------------------------------------------------------------------------
    "finance_state.load": Row("user"),
    "finance_state.refresh": Row("user"),
    "finance_state.go": Row("user", args=const(delta=1)),
    "finance_state.apply_search": Row("user", args=lambda e, r: {
        "form": {"search": e.mark_of_other(r)}}),
    "finance_state.set_day": Row("user", args=const(value=TODAY[8:10])),
    "finance_state.set_month": Row("user", args=const(value=PERIOD[5:7])),
    "finance_state.set_year": Row("user", args=const(value=PERIOD[:4])),
    "finance_state.set_status": Row("user", args=const(value="paid")),
    "finance_state.set_tab": Row("user", args=const(tab="paid")),
    "finance_state.set_owner_filter": Row("owned", kind="owner", args=_owner_value),
    "finance_report_state.load": Row("user"),
    "finance_report_state.clear_jobs": Row("user"),
    "finance_report_state.poll_jobs": Row("user", background=True),
    "finance_report_state.set_report": Row("user", args=const(value="recap")),
    "finance_report_state.start_recap": Row("owned", kind="owner", args=_recap),
    "finance_report_state.start_report": Row("owned", kind="owner", args=_recap),
    "finance_report_state.start_settlement": Row("owned", kind="owner", args=_settle),
    # --- invoices -----------------------------------------------------------------------------
    "invoices_state.load": Row("user"),
    "invoices_state.refresh": Row("user"),
    "invoices_state.go": Row("user", args=const(delta=1)),
    "invoices_state.apply_search": Row("user", args=lambda e, r: {
        "form": {"search": e.mark_of_other(r)}}),
    "invoices_state.set_status": Row("user", args=const(value="unpaid")),
    "invoices_state.set_period": Row("user", args=const(value=PERIOD)),
    "invoices_state.set_due_date": Row("user", args=const(value=TODAY)),
    "invoices_state.set_owner_filter": Row("owned", kind="owner", args=_owner_value),
    "invoices_state.open_pay": Row("owned", kind="invoice", args=other("invoice")),
    "invoices_state.pay": Row("user", args=cform(amount="1", method="cash")),
    "invoices_state.open_unpay": Row("owned", kind="paid_invoice",
                                     args=other("paid_invoice", "invoice_id")),
    "invoices_state.unpay": Row("user", args=cform(reason="uji")),
    "invoices_state.toggle_selected": Row("owned", kind="invoice", args=other("invoice")),
    "invoices_state.clear_selection": Row("user"),
    "invoices_state.wa_resend": Row("owned", kind="invoice", args=lambda e, r: {
        "invoice_id": str(e.other("invoice", r)), "kind": "reminder"}),
    "invoices_state.run_billing": Row("owned", kind="owner", args=_run),
    "invoices_state.open_wa_bulk": Row("user"),
    "invoices_state.send_wa_bulk": Row("user"),
    "invoices_state.start_bundle": Row("user"),
    "invoices_state.poll_bundle": Row("user", background=True),
    "invoices_state.set_pay_open": Row("ui", args=const(value=True)),
    "invoices_state.set_run_open": Row("ui", args=const(value=True)),
    "invoices_state.set_unpay_open": Row("ui", args=const(value=True)),
    "invoices_state.set_wa_open": Row("ui", args=const(value=True)),
    # --- the caller's own account -----------------------------------------------------------------
    "profile_state.load": Row("user"),
    "profile_state.save_profile": Row("user", args=cform(name="", phone="")),
    "profile_state.change_password": Row("user", args=cform(
        current_password="salah", new_password="Baru12345!", confirm_password="Baru12345!")),
    "profile_state.revoke": Row("owned", kind="session", args=other("session", "session_id")),
    "two_factor_state.load": Row("user"),
    "two_factor_state.start": Row("user"),
    "two_factor_state.confirm": Row("user", args=cform(code="000000")),
    "two_factor_state.disable": Row("user", args=cform(password="salah", code="000000")),
    "two_factor_state.regenerate": Row("user", args=cform(regen_code="000000")),
    "two_factor_state.hide_codes": Row("ui"),
    # --- WhatsApp -------------------------------------------------------------------------------
    "whats_app_state.load": Row("user"),
    "whats_app_state.set_tab": Row("user", args=const(tab="logs")),
    "whats_app_state.reload_logs": Row("user"),
    "whats_app_state.reload_queue": Row("user"),
    "whats_app_state.filter_logs": Row("user", args=cform(type="", status="")),
    "whats_app_state.log_go": Row("user", args=const(delta=1)),
    "whats_app_state.queue_go": Row("user", args=const(delta=1)),
    "whats_app_state.set_queue_status": Row("user", args=const(value="failed")),
    "whats_app_state.set_owner_filter": Row("owned", kind="owner", args=_owner_value),
    "whats_app_state.cancel": Row("owned", kind="pending_queue",
                                  args=other("pending_queue", "queue_id")),
    "whats_app_state.resend": Row("owned", kind="failed_queue", args=lambda e, r: {
        "target": f"queue:{e.other('failed_queue', r)}"}),
    "whats_app_state.ask_resend": Row("ui", args=const(target="")),
    "whats_app_state.cancel_resend": Row("ui"),
    "whats_app_state.resume": Row("user"),
    "whats_app_state.choose_template": Row("user", args=const(key="reminder")),
    "whats_app_state.edit_template": Row("user", args=const(text="Halo {nama}")),
    "whats_app_state.save_template": Row("user"),
    "whats_app_state.reset_template": Row("user"),
    "whats_app_state.preview_bulk": Row("user", args=cform(filter="unpaid",
                                                           template="reminder")),
    "whats_app_state.send_bulk": Row("user"),
    "whats_app_state.clear_bulk": Row("user"),
    "whats_app_state.send_test": Row("user", args=cform(phone="", text="")),
    "whats_app_state.save_config": Row("super", args=cform(provider="")),
    "whats_app_state.start_link": Row("user", args=cform(phone="")),
    "whats_app_state.watch_link": Row("user", background=True),
    "whats_app_state.set_pairing": Row("ui", args=const(value=True)),
    "whats_app_state.toggle_offset": Row("ui", args=const(offset="1")),
    "whats_app_state.logout": Row("user"),
}

# ``setvar`` exists on every state: each is sent with the var an attacker would
# pick (identity, owner filter, a stored id), then the state's follow-up
# handler shows whether the forged value was believed.
SETVAR: dict[str, tuple[str, Callable[[Any, str], Any], str | None]] = {
    # state: (var, value(estate, role), follow-up handler)
    "state": ("customer_id", lambda e, r: str(e.other("customer", r)), None),
    "session_state": ("role", lambda e, r: "superadmin", "notification_state.load"),
    "customers_state": ("owner_filter", lambda e, r: str(e.owner_of_other(r)), "refresh"),
    "dashboard_state": ("owner_filter", lambda e, r: str(e.owner_of_other(r)), "load"),
    "finance_state": ("owner_filter", lambda e, r: str(e.owner_of_other(r)), "refresh"),
    "invoices_state": ("owner_filter", lambda e, r: str(e.owner_of_other(r)), "refresh"),
    "whats_app_state": ("owner_filter", lambda e, r: str(e.owner_of_other(r)),
                        "reload_queue"),
    "proof_state": ("invoice_id", lambda e, r: str(e.other("paid_invoice", r)), "refresh"),
    "import_state": ("job_id", lambda e, r: str(e.import_job), "load"),
    "mitra_state": ("confirm_id", lambda e, r: str(e.other("mitra", r)), "confirm"),
    "packages_state": ("delete_id", lambda e, r: str(e.other("package", r)), "delete"),
    "customer_detail_state": ("customer", lambda e, r: {"id": str(e.other("customer", r))},
                              "toggle_inactive"),
    "activity_state": ("open_id", lambda e, r: str(e.other("audit", r)), None),
    "profile_state": ("role_label", lambda e, r: "Superadmin", "load"),
}


def setvar_row(state: str) -> Row:
    """The ``setvar`` row of ``state`` (its var and value come from ``SETVAR``)."""
    var, _value, _follow = SETVAR.get(state, ("", None, None))
    return Row("public", page=None, kind=var or None)


@dataclass
class Target:
    """One handler of the app: its state's names and the handler's name."""

    state_full: str
    state: str
    handler: str
    vars: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.state}.{self.handler}"

    @property
    def event_name(self) -> str:
        return f"{self.state_full}.{self.handler}"


def short_name(full: str) -> str:
    """The state's own name: ``…customers____customers_state`` → ``customers_state``."""
    return full.rsplit(".", 1)[-1].rsplit("___", 1)[-1].lstrip("_")


def enumerate_handlers() -> list[Target]:
    """Every event handler of every state in the app, ``setvar`` included."""
    from reflex.state import State

    import fibernode.fibernode  # noqa: F401  (registers every page and state)

    out: list[Target] = []

    def walk(cls) -> None:
        full = cls.get_full_name()
        for name in sorted(cls.event_handlers):
            out.append(Target(full, short_name(full), name, sorted(cls.base_vars)))
        for sub in sorted(cls.get_substates(), key=lambda s: s.get_full_name()):
            walk(sub)

    walk(State)
    return out


def new_uuid() -> str:
    return str(uuid.uuid4())
