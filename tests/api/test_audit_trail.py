"""Audit trail: EVERY mutating route leaves its ``activity_logs`` row — who, from where, what.

The rule: a successful call of a mutating route of ``create_api()`` (POST, PUT,
PATCH, DELETE) writes, in the transaction of its change, an ``activity_logs`` row
whose

* ``user_id`` is the caller (for the public login and refresh: the user who logged
  in; a refused login names no user),
* ``ip_address`` is the client address of the request (``scope["client"]``, here
  the distinctive ``203.0.113.7``), and no other row of the request names another
  address,
* ``resource`` / ``resource_id`` name the row the route concerns, and
* for a change of an existing row, the metadata carries the value before AND after
  of every field the call changed — ``meta["changes"][field] == {"from", "to"}``
  (``apply_changes``), ``meta["before"]`` / ``meta["after"]`` for pay and unpay,
  ``meta["status"] == {"from", "to"}`` for queued messages. A delete keeps the
  row's last values (``meta["before"]``, or the top level of ``meta``).

``CASES`` calls every mutating route at least once as a real client would. URLs,
rows and bodies come from the tenant-isolation table (``ROUTES``, ``MAKERS`` and its
``estate`` fixture); a case overrides them where that table deliberately sends a
failing body (wrong 2FA codes, a dry run, a preview). Routes with more than one use
case behind them (PATCH of a mitra: details, password, active flag) get a case each.
:func:`test_every_mutating_route_is_classified` fails as soon as a mutating route
exists that no case calls, so a new endpoint must state its audit row here first.

Calls that by design write no activity row are listed in ``EXEMPT`` with the
reason, and the walk checks that they indeed add none. Changes whose values must
not (secrets) or need not be logged are listed in ``NO_BEFORE_AFTER`` with the
reason. Refused calls (403, 404, 409, 422) write nothing and change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import SQLModel, select

from fibernode import clock
from fibernode.api import create_api
from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    ImportJob,
    Invoice,
    LoginAttempt,
    Package,
    PaymentProof,
    RefreshToken,
    User,
    UserSession,
    WaMessageLog,
    WaMessageQueue,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import (
    api_tokens,
    auth,
    branding,
    customers,
    settings,
    two_factor,
    wa_cloud,
    wa_direct,
    web_login,
    whatsapp,
)
from fibernode.services.context import Actor
from fibernode.services.errors import LockedOut, LoginFailed
from fibernode.services.wa_sessions import SessionEvent, ensure_session, record_event
from tests.api import test_tenant_isolation as iso
from tests.api.rest_helpers import token_for
from tests.api.test_tenant_isolation import MAKERS, OK, OWNERS, PERIOD, PNG, ROUTES, USERNAMES
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD
from tests.whatsapp import fake_graph

# The isolation suite's fixture: the three owners, fresh rows of every kind, an outbox
# gateway, no Celery.
estate = iso.estate

CLIENT_IP = "203.0.113.7"  # TEST-NET-3: no fixture logs in from here
SETUP_IP = "198.51.100.23"  # logins made while preparing a call
LOCKOUT_IP = "198.51.100.99"  # failed logins that lock an account out
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WEBHOOK_SECRET = "rahasia-webhook-uji"  # noqa: S105 - test value

# Mounts serve files only; a new mount must be described here (and in ROUTES).
READ_ONLY_MOUNTS = {"/api/docs/static": "Swagger UI's static files (GET only)"}


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Walk:
    """What the cases share: the estate, the callers' tokens and the 2FA enrolment."""

    estate: iso.Estate
    tokens: dict[str, str]
    secret: str = ""  # the superadmin's TOTP secret once the confirm case enrolled it
    recovery_codes: list[str] = field(default_factory=list)

    def user(self, who: str) -> uuid.UUID:
        return self.estate.ids[who]


@dataclass
class Call:
    """One prepared request and whom its audit row must name."""

    url: str
    caller: str | None
    row: Any = None  # the row the route concerns (resource_id)
    json: Any = None
    files: dict | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # a bearer token of its own instead of the caller's
    user_id: uuid.UUID | None = None  # the audit row's user (default: the caller)
    ok: frozenset[int] = OK


Prepare = Callable[[Walk, Call], None]
Rid = Callable[[Call, Any], "uuid.UUID | None"]
Watch = Callable[[Call], "dict[str, Any] | None"]


def ROW(call: Call, _res) -> uuid.UUID:
    return uuid.UUID(str(call.row))


def RESPONSE(_call: Call, res) -> uuid.UUID:
    return uuid.UUID(res.json()["id"])


def NONE(_call: Call, _res) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """A successful call of one mutating route and the audit row it must leave.

    Attributes:
        method: HTTP method of the route.
        path: Route path as FastAPI declares it.
        action: The audit row's action; ``None`` for a call in ``EXEMPT`` (no row).
        resource: The row's ``resource``.
        rid: How to get the expected ``resource_id`` (``ROW``, ``RESPONSE``, ``NONE``).
        caller: Who calls (an ``OWNERS`` key) or ``None`` for anonymous.
        variant: Names a second use case behind the same route.
        owner: Whose row ``ROUTES``' maker builds.
        prepare: Adjusts the call from ``ROUTES`` (body, row, state it needs).
        watch: Reads the fields the call changes (or deletes), before and after it.
        check: Further assertions on (walk, call, response, audit row or ``None``).
    """

    method: str
    path: str
    action: str | None
    resource: str | None = None
    rid: Rid = ROW
    caller: str | None = "superadmin"
    variant: str = ""
    owner: str = "mitra_a"
    prepare: Prepare | None = None
    watch: Watch | None = None
    check: Callable[[Walk, Call, Any, ActivityLog | None], None] | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.variant}]" if self.variant else "")


def columns(model: type[SQLModel], *names: str) -> Watch:
    """Watch ``names`` of the ``model`` row the call concerns (``None`` once deleted)."""
    def read(call: Call) -> dict[str, Any] | None:
        with new_session() as s:
            row = s.get(model, uuid.UUID(str(call.row)))
            return None if row is None else {n: getattr(row, n) for n in names}
    return read


def setting_values(*keys: str) -> Watch:
    """Watch site settings."""
    return lambda _call: settings.get_values(list(keys))


def _username(user_id: uuid.UUID) -> str:
    with new_session() as s:
        return s.get(User, user_id).username


def _active_refresh_ids(user_id: uuid.UUID) -> set[uuid.UUID]:
    with new_session() as s:
        return set(s.exec(select(RefreshToken.id).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))))


def _connect(w: Walk, who: str) -> uuid.UUID:
    """Mark ``who``'s WhatsApp as linked (as the gateway would); returns the session id."""
    with new_session() as s:
        row = s.exec(select(WaSession).where(WaSession.user_id == w.user(who))).first()
    if row is None or row.status != WaSessionStatus.CONNECTED:
        record_event(w.user(who), SessionEvent(status=WaSessionStatus.CONNECTED))
    with new_session() as s:
        return ensure_session(s, w.user(who)).id


# Preparations: each gets the call ``ROUTES`` describes and makes it a successful one.


def _login_ok(w: Walk, c: Call) -> None:
    c.json = {"username": "mitra1", "password": MITRA_PASSWORD}
    c.user_id = w.user("mitra_a")


def _web_claim(w: Walk, c: Call) -> None:
    code = web_login.begin(Actor.anonymous(CLIENT_IP, "pytest"), "mitra1", MITRA_PASSWORD).code
    c.content = urlencode({"code": code, "next": "/"}).encode()
    c.headers = {"content-type": "application/x-www-form-urlencoded",
                 "origin": "http://testserver"}
    c.json = None
    # 303 into the app's pages, which this API-only app does not serve (the client follows).
    c.ok = frozenset({303, 404})


def _web_logout(w: Walk, c: Call) -> None:
    token = auth.login(Actor.anonymous(CLIENT_IP, "pytest"), "mitra1", MITRA_PASSWORD).token
    with new_session() as s:
        c.row = s.exec(select(UserSession.id).where(
            UserSession.token_hash == auth.hash_token(token))).one()
    c.headers = {"cookie": f"{auth.SESSION_COOKIE}={token}", "origin": "http://testserver"}
    c.user_id = w.user("mitra_a")
    c.ok = frozenset({303, 404})


def _login_wrong_password(_w: Walk, c: Call) -> None:
    c.json = {"username": "mitra1", "password": "bukan-passwordnya"}
    c.ok = frozenset({401})


def _login_locked_out(w: Walk, c: Call) -> None:
    username = _username(MAKERS["mitra"](w.estate, "superadmin"))
    for _ in range(20):
        try:
            api_tokens.login(Actor.anonymous(LOCKOUT_IP, "pytest"), username, "salah-terus")
        except LoginFailed:
            continue
        except LockedOut:
            break
    c.json = {"username": username, "password": MITRA_PASSWORD}
    c.ok = frozenset({429})


def _login_wrong_second_step(w: Walk, c: Call) -> None:
    assert w.secret, "needs the 2FA confirm case first"
    right = int(pyotp.TOTP(w.secret).now())
    c.json = {"username": "superadmin", "password": ADMIN_PASSWORD,
              "otp": f"{(right + 500_000) % 1_000_000:06d}"}
    c.ok = frozenset({401})
    c.row = w.user("superadmin")


def _refresh(w: Walk, c: Call) -> None:
    before = _active_refresh_ids(w.user("mitra_b"))
    pair = api_tokens.login(Actor.anonymous(SETUP_IP, "pytest"), "mitra2", MITRA_PASSWORD)
    [c.row] = _active_refresh_ids(w.user("mitra_b")) - before
    c.json = {"refresh_token": pair.refresh_token}
    c.user_id = w.user("mitra_b")


def _own_token(_w: Walk, c: Call) -> None:
    c.token = token_for(USERNAMES[c.caller])  # logout revokes the token it is called with


def _me(w: Walk, c: Call) -> None:
    c.row = w.user(c.caller)
    c.json = {"bank_name": "Bank Audit Uji"}


def _my_password(w: Walk, c: Call) -> None:
    user_id = MAKERS["mitra"](w.estate, "superadmin")
    pair = api_tokens.login(Actor.anonymous(SETUP_IP, "pytest"), _username(user_id),
                            MITRA_PASSWORD)
    c.token, c.user_id, c.row = pair.access_token, user_id, user_id
    c.json = {"current_password": MITRA_PASSWORD, "new_password": "Rahasia456!",
              "confirm_password": "Rahasia456!"}


def _superadmin_row(w: Walk, c: Call) -> None:
    c.row = w.user("superadmin")


def _2fa_confirm(w: Walk, c: Call) -> None:
    c.row = w.user("superadmin")
    w.secret = two_factor.begin_enrolment(w.estate.actors["superadmin"]).secret
    c.json = {"code": pyotp.TOTP(w.secret).now()}


def _2fa_new_codes(w: Walk, c: Call) -> None:
    assert w.secret, "needs the 2FA confirm case first"
    c.row = w.user("superadmin")
    with new_session() as s:
        last = s.get(User, c.row).totp_last_step
    # The step after the confirm's: still inside the accepted window, not a replay.
    c.json = {"code": pyotp.TOTP(w.secret).generate_otp(last + 1)}


def _2fa_disable(w: Walk, c: Call) -> None:
    assert w.recovery_codes, "needs the 2FA recovery-codes case first"
    c.row = w.user("superadmin")
    c.json = {"password": ADMIN_PASSWORD, "code": w.recovery_codes[0]}


def _keep_codes(w: Walk, _c: Call, res, _row) -> None:
    w.recovery_codes = res.json()["recovery_codes"]


def _settings_body(_w: Walk, c: Call) -> None:
    c.json = {"receipt_footer_text": "Terima kasih, diuji oleh audit trail."}


def _with_logo(w: Walk, _c: Call) -> None:
    branding.upload_logo(w.estate.actors["superadmin"], PNG, "logo.png")


def body(value: Any) -> Prepare:
    def prepare(_w: Walk, c: Call) -> None:
        c.json = value(_w, c) if callable(value) else value
    return prepare


def _permanent(_w: Walk, c: Call) -> None:
    c.url += "?permanent=true"


def _isolated(w: Walk, c: Call) -> None:
    customers.set_isolated(w.estate.actors["superadmin"], c.row, True, "Belum bayar")
    c.json = {"isolated": False}


def _generate(_w: Walk, c: Call) -> None:
    c.json = {"period": clock.shift_period(PERIOD, 1), "dry_run": False}


def _same_count(key: str) -> Callable[[Walk, Call, Any, ActivityLog | None], None]:
    def check(_w: Walk, _c: Call, res, row: ActivityLog | None) -> None:
        assert row.meta[key] == res.json()[key] > 0, (row.meta, res.json())
    return check


def _connected(w: Walk, c: Call) -> None:
    c.row = _connect(w, c.caller)


def _session_row(w: Walk, c: Call) -> None:
    with new_session() as s:
        c.row = ensure_session(s, w.user(c.caller)).id
        s.commit()


def _send_bulk(w: Walk, c: Call) -> None:
    _connect(w, c.caller)
    w.estate.invoice(c.caller)  # an unpaid invoice, so "unpaid" finds someone
    c.json = {"filter": "unpaid", "template": "custom", "customMessage": "Halo {nama_pelanggan}",
              "preview": False}


def _check_number(w: Walk, c: Call) -> None:
    _connect(w, c.caller)
    c.json = {"phone": "081234500077"}  # not cached: the gateway is asked


def _webhook(w: Walk, c: Call) -> None:
    _connect(w, "mitra_a")
    log_id = whatsapp.send_test(w.estate.actors["mitra_a"], "081234500088")
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        provider_id = s.get(WaMessageLog, log_id).provider_message_id
    assert provider_id, "the test message was not sent (wa_direct dispatch failed?)"
    payload = {"entry": [{"changes": [{"value": {"statuses": [
        {"id": provider_id, "status": "delivered", "timestamp": str(int(clock.now().timestamp()))},
    ]}}]}]}
    c.content = json.dumps(payload).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), c.content, hashlib.sha256).hexdigest()
    c.headers = {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}
    c.json = None


def _failed_attempt_recorded(_w: Walk, _c: Call, _res, _row) -> None:
    with new_session() as s:
        assert s.exec(select(LoginAttempt).where(
            LoginAttempt.username == "mitra1", LoginAttempt.ip_address == CLIENT_IP,
            LoginAttempt.success.is_(False))).first(), "the lockout counter saw the failure"


def _receipt_applied(_w: Walk, _c: Call, res, _row) -> None:
    assert res.json()["changed"] == 1, res.text


def _cloud_credentials(_w: Walk, c: Call) -> None:
    # Answered by the fake Graph API the test starts (the ``graph`` fixture).
    c.json = {"phoneNumberId": fake_graph.PHONE_ID, "accessToken": fake_graph.TOKEN}
    c.ok = OK


def _cloud_session(call: Call, _res) -> uuid.UUID:
    with new_session() as s:
        return s.exec(select(WaSession.id).where(WaSession.user_id == call.row)).one()


def _cloud_templates(_w: Walk, c: Call) -> None:
    c.json = {"names": {"reminder": "tagihan_audit"}, "language": "id"}


def _template_names(_call: Call) -> dict[str, str]:
    return {"wa_cloud.template.reminder": wa_cloud.template_settings()["reminder"].name}


def _answered(_w: Walk, _c: Call, res, _row) -> None:
    assert res.json()["on_whatsapp"] is not None, res.text


C = Case
INVOICE_STATE = columns(Invoice, "status", "paid_amount", "version")
CASES: list[Case] = [
    # public: login, refresh (the user who logs in is the row's user)
    C("POST", "/api/auth/login", "auth.api_login", "refresh_tokens", NONE, None,
      prepare=_login_ok),
    C("POST", "/api/auth/login", None, caller=None, variant="wrong password",
      prepare=_login_wrong_password, check=_failed_attempt_recorded),
    C("POST", "/api/auth/login", "auth.login_blocked", "users", NONE, None,
      variant="locked out", prepare=_login_locked_out),
    C("POST", "/api/auth/refresh", "auth.api_refresh", "refresh_tokens", ROW, None,
      prepare=_refresh),
    # the web session cookie (the login itself is audited when its form is checked)
    C("POST", "/api/session/claim", None, caller=None, prepare=_web_claim),
    C("POST", "/api/session/end", "auth.logout", "user_sessions", ROW, None,
      prepare=_web_logout),
    # the caller's own account
    C("POST", "/api/auth/logout", "auth.api_logout", "refresh_tokens", NONE, "mitra_a",
      prepare=_own_token),
    C("PATCH", "/api/auth/me", "user.profile_update", "users", ROW, "mitra_a", prepare=_me,
      watch=columns(User, "bank_name")),
    C("PATCH", "/api/auth/me", "auth.password_change", "users", ROW, "mitra_a",
      variant="password", prepare=_my_password),
    # two-step login, in the order a superadmin goes through it
    C("POST", "/api/auth/2fa/enroll", "auth.two_factor_enrol", "users", ROW,
      prepare=_superadmin_row),
    C("POST", "/api/auth/2fa/confirm", "auth.two_factor_enabled", "users", ROW,
      prepare=_2fa_confirm, check=_keep_codes),
    C("POST", "/api/auth/login", "auth.two_factor_failed", "users", ROW, None,
      variant="wrong 2FA code", prepare=_login_wrong_second_step),
    C("POST", "/api/auth/2fa/recovery-codes", "auth.recovery_codes_regenerated", "users", ROW,
      prepare=_2fa_new_codes, check=_keep_codes),
    C("POST", "/api/auth/2fa/disable", "auth.two_factor_disabled", "users", ROW,
      prepare=_2fa_disable),
    # settings
    C("PATCH", "/api/settings", "settings.update", "settings", NONE, prepare=_settings_body,
      watch=setting_values("receipt_footer_text")),
    C("POST", "/api/settings/upload-logo", "settings.logo_upload", "settings", NONE,
      watch=setting_values("logo_url", "favicon_url")),
    C("POST", "/api/settings/reset-logo", "settings.logo_reset", "settings", NONE,
      prepare=_with_logo, watch=setting_values("logo_url", "favicon_url")),
    # mitra accounts
    C("POST", "/api/users", "user.create", "users", RESPONSE),
    C("PATCH", "/api/users/{user_id}", "user.update", "users",
      watch=columns(User, "phone")),
    C("PATCH", "/api/users/{user_id}", "user.password_reset", "users", variant="password",
      prepare=body({"new_password": "Rahasia789!"})),
    C("PATCH", "/api/users/{user_id}", "user.deactivate", "users", variant="is_active",
      prepare=body({"is_active": False}), watch=columns(User, "is_active")),
    C("DELETE", "/api/users/{user_id}", "user.deactivate", "users",
      watch=columns(User, "is_active")),
    C("DELETE", "/api/users/{user_id}", "user.delete", "users", variant="permanent",
      prepare=_permanent, watch=columns(User, "username", "business_name")),
    # packages
    C("POST", "/api/packages", "package.create", "packages", RESPONSE),
    C("PATCH", "/api/packages/{package_id}", "package.update", "packages",
      watch=columns(Package, "price")),
    C("PATCH", "/api/packages/{package_id}", "package.deactivate", "packages",
      variant="is_active", prepare=body({"is_active": False}),
      watch=columns(Package, "is_active")),
    C("DELETE", "/api/packages/{package_id}", "package.deactivate", "packages",
      watch=columns(Package, "is_active")),
    C("DELETE", "/api/packages/{package_id}", "package.delete", "packages",
      variant="permanent", prepare=_permanent, watch=columns(Package, "name", "price")),
    # subscribers
    C("POST", "/api/customers", "customer.create", "customers", RESPONSE, "mitra_a"),
    C("PATCH", "/api/customers/{customer_id}", "customer.update", "customers",
      caller="mitra_a", watch=columns(Customer, "phone", "discount", "total_bill")),
    C("PATCH", "/api/customers/{customer_id}", "customer.move", "customers",
      variant="owner_id", prepare=body(lambda w, _c: {"owner_id": str(w.user("mitra_b"))}),
      watch=columns(Customer, "owner_id")),
    C("PATCH", "/api/customers/{customer_id}", "customer.deactivate", "customers",
      variant="inactive", prepare=body({"inactive": True}),
      watch=columns(Customer, "status")),
    C("DELETE", "/api/customers/{customer_id}", "customer.delete", "customers",
      watch=columns(Customer, "name", "phone")),
    C("PATCH", "/api/customers/{customer_id}/isolate", "customer.isolate", "customers",
      watch=columns(Customer, "status")),
    C("PATCH", "/api/customers/{customer_id}/isolate", "customer.unisolate", "customers",
      variant="restore", prepare=_isolated, watch=columns(Customer, "status")),
    C("POST", "/api/customers/import", "import.upload", "import_jobs", RESPONSE),
    C("POST", "/api/customers/import/{job_id}/confirm", "import.confirm", "import_jobs"),
    C("POST", "/api/customers/import/{job_id}/cancel", "import.cancel", "import_jobs"),
    # invoices and payment proofs (the owning mitra)
    C("POST", "/api/invoices/generate", "billing.run", "invoices", NONE, prepare=_generate,
      check=_same_count("created")),
    C("POST", "/api/invoices/generate", None, variant="dry run"),
    C("PATCH", "/api/invoices/{invoice_id}/pay", "invoice.pay", "invoices", caller="mitra_a",
      watch=INVOICE_STATE),
    C("PATCH", "/api/invoices/{invoice_id}/unpay", "invoice.unpay", "invoices",
      caller="mitra_a", watch=INVOICE_STATE),
    C("POST", "/api/invoices/{invoice_id}/payment-proofs", "payment_proof.attach",
      "payment_proofs", RESPONSE, "mitra_a"),
    C("DELETE", "/api/payment-proofs/{proof_id}", "payment_proof.delete", "payment_proofs",
      caller="mitra_a", watch=columns(PaymentProof, "invoice_id", "status")),
    # finance files
    C("POST", "/api/finance/export-jobs", "finance.export_job", "file_jobs", RESPONSE,
      "mitra_a"),
    C("POST", "/api/finance/reports", "finance.export_job", "file_jobs", RESPONSE, "mitra_a"),
    C("POST", "/api/finance/settlements", "finance.export_job", "file_jobs", RESPONSE,
      "mitra_a"),
    # WhatsApp
    C("POST", "/api/wa/connect", "wa.link.start", "wa_sessions", caller="mitra_a",
      prepare=_session_row),
    C("POST", "/api/wa/disconnect", "wa.logout", "wa_sessions", caller="mitra_a",
      prepare=_connected),
    C("POST", "/api/wa/send-test", "wa.send_test", "wa_message_logs", RESPONSE, "mitra_a",
      prepare=_connected),
    C("POST", "/api/wa/send-manual", "wa.send_manual", "wa_message_logs", RESPONSE,
      "mitra_a", prepare=_connected),
    C("POST", "/api/wa/send-bulk", "wa.send_bulk", "wa_message_queue", NONE, "mitra_a",
      prepare=_send_bulk, check=_same_count("queued")),
    C("POST", "/api/wa/send-bulk", None, caller="mitra_a", variant="preview"),
    C("POST", "/api/wa/check-number", None, caller="mitra_a", prepare=_check_number,
      check=_answered),
    C("POST", "/api/wa/queue/{queue_id}/retry", "wa.queue.retry", "wa_message_queue",
      caller="mitra_a", watch=columns(WaMessageQueue, "status")),
    C("DELETE", "/api/wa/queue/{queue_id}", "wa.queue.cancel", "wa_message_queue",
      caller="mitra_a", watch=columns(WaMessageQueue, "status")),
    C("POST", "/api/wa/logs/{log_id}/resend", "wa.direct.resend", "wa_message_logs",
      caller="mitra_a", watch=columns(WaMessageLog, "error_message")),
    C("POST", "/api/wa/webhook", None, caller=None, prepare=_webhook, check=_receipt_applied),
    C("PUT", "/api/wa/cloud/credentials/{owner_id}", "wa.cloud.credentials", "wa_sessions",
      _cloud_session, prepare=_cloud_credentials),
    C("PUT", "/api/wa/cloud/templates", "wa.cloud.templates", "settings", NONE,
      prepare=_cloud_templates, watch=_template_names),
]

# Calls that write no activity row, on purpose (the walk checks that they write none).
EXEMPT: dict[str, str] = {
    "POST /api/auth/login [wrong password]":
        "a refused login is recorded in login_attempts (with the address) for the "
        "lockout, not as an activity; the lockout itself is (auth.login_blocked)",
    "POST /api/invoices/generate [dry run]": "dry run: only counts, changes nothing",
    "POST /api/wa/send-bulk [preview]": "preview: shows the recipients, queues nothing",
    "POST /api/session/claim":
        "hands a browser the HttpOnly cookie of a login already audited as auth.login "
        "(web_login.begin); the one-time code is burnt as bookkeeping",
    "POST /api/wa/check-number":
        "a lookup: at most caches WhatsApp's answer in wa_numbers (a cache, no business data)",
    "POST /api/wa/webhook":
        "WhatsApp's own delivery / read receipts (system, signature-checked): facts "
        "about a message whose sending was audited, not an action by anyone",
}

# Changes of an existing row whose audit row carries no before/after values, and why.
NO_BEFORE_AFTER: dict[str, str] = {
    "POST /api/session/end":
        "a logout: the action is the fact (this session ended), like auth.logout in the app",
    "POST /api/auth/refresh":
        "rotates a refresh token (bookkeeping of the login family); tokens are secrets",
    "PATCH /api/auth/me [password]": "the password is a secret: the fact only",
    "PATCH /api/users/{user_id} [password]": "the password is a secret: the fact only",
    "POST /api/auth/2fa/enroll": "TOTP secret: the action names the step, no values",
    "POST /api/auth/2fa/confirm": "TOTP secret and recovery codes: the action names the step",
    "POST /api/auth/2fa/recovery-codes": "recovery codes are secrets: the fact only",
    "POST /api/auth/2fa/disable": "TOTP secret: the action names the step, no values",
    "POST /api/auth/login [wrong 2FA code]": "a refusal: nothing of the account changes",
    "POST /api/customers/import/{job_id}/confirm":
        "a job's fixed step (previewed → importing → done); counts are in the row "
        "and in the customer.import row that follows",
    "POST /api/customers/import/{job_id}/cancel":
        "a job's fixed step (validating / previewed → cancelled)",
    "POST /api/wa/connect":
        "the link's status change is the gateway event's row (wa.session.status with "
        "status from/to); this row records who asked and how",
    "POST /api/wa/disconnect": "as connect: wa.session.status records the status change",
}


# --- the walk ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as the audit row's JSON holds it."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _transition(meta: dict, name: str) -> tuple[Any, Any] | None:
    """``(before, after)`` of one field as the row records it, in any of the conventions."""
    changes = meta.get("changes") or {}
    if isinstance(changes.get(name), dict):
        return changes[name].get("from"), changes[name].get("to")
    own = meta.get(name)
    if isinstance(own, dict) and {"from", "to"} <= own.keys():
        return own["from"], own["to"]
    before, after = meta.get("before") or {}, meta.get("after") or {}
    if name in before and name in after:
        return before[name], after[name]
    return None


def _log_ids() -> set[uuid.UUID]:
    with new_session() as s:
        return set(s.exec(select(ActivityLog.id)))


def _logs_since(seen: set[uuid.UUID]) -> list[ActivityLog]:
    with new_session() as s:
        rows = s.exec(select(ActivityLog).order_by(ActivityLog.created_at)).all()
        return [r for r in rows if r.id not in seen]


def _client(api, token: str | None) -> TestClient:
    client = TestClient(api, client=(CLIENT_IP, 50000))
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def _prepared(walk: Walk, case: Case) -> Call:
    rule = ROUTES[(case.method, case.path)]
    row = MAKERS[rule.row](walk.estate, case.owner) if rule.row else None
    call = Call(url=(rule.url or case.path).replace("{row}", str(row)), caller=case.caller,
                row=row, user_id=walk.user(case.caller) if case.caller else None,
                json=rule.json(walk.estate, case.caller, row) if rule.json else None,
                files=rule.files() if rule.files else None)
    if case.prepare is not None:
        case.prepare(walk, call)
    return call


def _audit_problems(case: Case, call: Call, res, before, after,
                    new: list[ActivityLog]) -> tuple[list[str], ActivityLog | None]:
    """What is wrong with the rows ``case``'s call wrote."""
    problems: list[str] = []
    # Every row the request wrote was written for this client (or by the system itself).
    for r in new:
        if not (r.ip_address == CLIENT_IP or (r.user_id is None and r.ip_address is None)):
            problems.append(f"{r.action} row has ip {r.ip_address!r}, user {r.user_id}")
    if case.action is None:
        if new:
            problems.append(f"exempt ({EXEMPT.get(case.name)}) but wrote "
                            f"{[r.action for r in new]}")
        return problems, None
    rows = [r for r in new if r.action == case.action]
    if len(rows) != 1:
        return problems + [f"expected one {case.action} row, got {[r.action for r in new]}"], None
    row = rows[0]
    expected = {"user_id": call.user_id, "ip_address": CLIENT_IP, "resource": case.resource,
                "resource_id": case.rid(call, res)}
    actual = {k: getattr(row, k) for k in expected}
    if actual != expected:
        problems.append(f"{case.action} row is {actual}, expected {expected}")
    meta = row.meta or {}
    if before is not None and after is None:  # deleted: the row keeps the last values
        kept = meta.get("before") or meta
        for name, value in before.items():
            if kept.get(name) != _plain(value):
                problems.append(f"deleted {name}={_plain(value)!r} not kept: {meta}")
    elif before is not None:
        changed = {n for n in before if _plain(before[n]) != _plain(after[n])}
        if not changed:
            problems.append(f"the call changed none of {sorted(before)}")
        for name in sorted(changed):
            found = _transition(meta, name)
            want = (_plain(before[name]), _plain(after[name]))
            if found != want:
                problems.append(f"{name}: before/after {want} not in the row: {meta}")
    return problems, row


def _run(api, walk: Walk, case: Case) -> list[str]:
    call = _prepared(walk, case)
    before = case.watch(call) if case.watch else None
    token = call.token or (walk.tokens[call.caller] if call.caller else None)
    assert wa_direct.wait_for_dispatch(10)  # earlier sends finish before we look
    seen = _log_ids()
    res = _client(api, token).request(case.method, call.url, json=call.json,
                                      files=call.files, content=call.content,
                                      headers=call.headers)
    if res.status_code not in call.ok:
        return [f"{res.status_code} (expected {sorted(call.ok)}): {res.text[:300]}"]
    assert wa_direct.wait_for_dispatch(10)  # receipts and notices sent after the commit
    after = case.watch(call) if case.watch else None
    problems, row = _audit_problems(case, call, res, before, after, _logs_since(seen))
    if case.check is not None and not problems:
        case.check(walk, call, res, row)
    return problems


def test_every_mutating_call_leaves_its_audit_row(estate, monkeypatch, graph):
    """Each case, called from ``CLIENT_IP``: its row with user, address, resource, values."""
    monkeypatch.setenv("WA_CLOUD_APP_SECRET", WEBHOOK_SECRET)
    reset_settings()
    api = create_api()
    walk = Walk(estate, tokens={c: token_for(USERNAMES[c]) for c in OWNERS})
    problems: list[str] = []
    for case in CASES:
        try:
            problems += [f"{case.name}: {p}" for p in _run(api, walk, case)]
        except Exception as exc:  # one broken case must not hide the others
            where = traceback.format_exception(exc)[-2].strip().splitlines()[0]
            problems.append(f"{case.name}: {type(exc).__name__}: {exc} ({where})")
    assert not problems, f"{len(problems)} of {len(CASES)} calls broke the audit rule:\n" + \
        "\n".join(problems)


# --- the table ---------------------------------------------------------------------------------


def _mutating_routes(api) -> set[tuple[str, str]]:
    return {(m, p) for m, p in iso._app_routes(api) if m in MUTATING}


def _mounts(api) -> set[str]:
    return {p for m, p in iso._app_routes(api) if m == "MOUNT"}


def test_every_mutating_route_is_classified():
    """The cases call exactly the app's mutating routes; mounts are described too."""
    api = create_api()
    routes = _mutating_routes(api)
    covered = {(c.method, c.path) for c in CASES}
    assert not sorted(routes - covered), \
        f"mutating routes without an audit case: {sorted(routes - covered)}"
    assert not sorted(covered - routes), \
        f"cases for routes that are gone: {sorted(covered - routes)}"
    assert _mounts(api) == set(READ_ONLY_MOUNTS), "a mount must be described here"


def test_an_unclassified_mutating_route_fails_the_check():
    """A new POST route without a case is reported (a new GET route is not our business)."""
    api = create_api()
    api.post("/api/rahasia")(lambda: {})
    api.get("/api/baca-saja")(lambda: {})
    covered = {(c.method, c.path) for c in CASES}
    assert _mutating_routes(api) - covered == {("POST", "/api/rahasia")}


def test_the_exemptions_are_explained_and_exact():
    """Every exemption names a real case and gives a reason; nothing is exempt silently."""
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "each case needs its own variant name"
    exempt = {c.name for c in CASES if c.action is None}
    assert exempt == set(EXEMPT), "EXEMPT must name exactly the cases without an action"
    assert set(NO_BEFORE_AFTER) <= set(names) - exempt
    assert all(reason.strip() for reason in (*EXEMPT.values(), *NO_BEFORE_AFTER.values()))


def test_every_change_of_a_row_is_watched_or_explained():
    """A case on an existing row checks before/after, unless NO_BEFORE_AFTER says why not."""
    loose = [c.name for c in CASES if c.action and c.rid is ROW and c.watch is None
             and c.name not in NO_BEFORE_AFTER]
    assert not loose, f"row changes without before/after check or reason: {loose}"
    watched = {c.name for c in CASES if c.watch is not None}
    assert not watched & set(NO_BEFORE_AFTER)


# --- refusals ----------------------------------------------------------------------------------


def _counts() -> dict[str, int]:
    with new_session() as s:
        return {t.name: s.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables}


def _dump(model: type[SQLModel] | None, row_id: Any) -> dict | None:
    if model is None:
        return None
    with new_session() as s:
        return s.get(model, row_id).model_dump()


def test_refused_calls_write_nothing(estate):
    """403, 404, 409 and 422: no activity row, no row added or removed, the target unchanged."""
    e, api = estate, create_api()
    tokens = {c: token_for(USERNAMES[c]) for c in OWNERS}
    cust, inv, paid = e.customer("mitra_a"), e.invoice("mitra_a"), e.invoice("mitra_a", True)
    mitra, pkg, failed = e.mitra("superadmin"), e.package("superadmin"), e.queue_row(
        "mitra_a", "failed")
    wrong = {"code": "12345"}  # never a valid code: five digits
    two_factor.begin_enrolment(e.actors["superadmin"])
    refusals = [
        ("mitra_b", "PATCH", f"/api/customers/{cust}", {"phone": "081211112222"}, 404,
         Customer, cust),
        ("mitra_a", "PATCH", f"/api/customers/{cust}", {"name": "Ganti Nama"}, 403,
         Customer, cust),
        ("mitra_a", "PATCH", f"/api/customers/{cust}", {"phone": "12", "discount": 5}, 422,
         Customer, cust),
        ("superadmin", "PATCH", f"/api/customers/{cust}/isolate", {"isolated": True}, 422,
         Customer, cust),
        ("mitra_a", "PATCH", f"/api/invoices/{inv}/pay", {"version": 7, "method": "cash"}, 409,
         Invoice, inv),
        ("mitra_b", "PATCH", f"/api/invoices/{inv}/pay", {"version": 1, "method": "cash"}, 404,
         Invoice, inv),
        ("mitra_a", "PATCH", f"/api/invoices/{paid}/unpay", {"version": 1, "reason": "Uji"},
         409, Invoice, paid),
        ("superadmin", "PATCH", f"/api/users/{mitra}",
         {"phone": "081211113333", "new_password": "Rahasia999!"}, 422, User, mitra),
        ("superadmin", "DELETE", f"/api/users/{e.ids['mitra_a']}", None, 409, User,
         e.ids["mitra_a"]),
        ("mitra_a", "PATCH", "/api/settings", {"app_name": "Punya Mitra"}, 403, None, None),
        ("superadmin", "PATCH", f"/api/packages/{pkg}", {"price": -5}, 422, Package, pkg),
        ("mitra_a", "DELETE", f"/api/packages/{pkg}", None, 403, Package, pkg),
        ("superadmin", "POST", "/api/auth/2fa/confirm", wrong, 422, User, e.ids["superadmin"]),
        ("mitra_a", "DELETE", f"/api/wa/queue/{failed}", None, 409, WaMessageQueue, failed),
        ("mitra_b", "POST", f"/api/wa/queue/{failed}/retry", None, 404, WaMessageQueue, failed),
        ("superadmin", "POST", f"/api/customers/import/{uuid.uuid4()}/confirm", None, 404,
         ImportJob, None),
    ]
    problems = []
    for caller, method, url, payload, status, model, row_id in refusals:
        where = f"{caller} {method} {url} {payload}"
        target = _dump(model, row_id) if row_id else None
        assert wa_direct.wait_for_dispatch(10)
        counts, seen = _counts(), _log_ids()
        res = _client(api, tokens[caller]).request(method, url, json=payload)
        if res.status_code != status:
            problems.append(f"{where}: {res.status_code} (expected {status}) {res.text[:200]}")
            continue
        if new := _logs_since(seen):
            problems.append(f"{where}: refused but wrote {[r.action for r in new]}")
        if (after := _counts()) != counts:
            diff = {k: (counts[k], after[k]) for k in counts if counts[k] != after[k]}
            problems.append(f"{where}: refused but changed {diff}")
        if row_id and _dump(model, row_id) != target:
            problems.append(f"{where}: refused but the row changed")
    assert not problems, "\n".join(problems)
