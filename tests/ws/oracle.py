"""Sentinel data, the rows each caller is handed, and what no caller may receive or change.

Every tenant's data carries a marker that appears nowhere else: mitra A's
subscribers are named ``… Qzalfa …`` (address, notes too), mitra B's ``Qzbeta``,
the superadmin's own ``Qzsuper``, and a mitra account only the superadmin sees
``Qzmitra``; each sentinel subscriber has a plain NIK no one but the superadmin
may read. Raw session tokens may never travel over the socket at all (only the
browser's cookie carries them). :func:`forbidden` says which of these a caller
must never receive; :func:`fingerprint` digests every row a caller must not
change.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from fibernode.db import get_engine, new_session
from fibernode.models import ActivityLog, User, UserSession
from fibernode.services import auth, customers
from fibernode.services.context import Actor
from tests.api.test_tenant_isolation import Estate
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD

ROLES = ("anonymous", "mitra_a", "mitra_b", "superadmin")
USERNAMES = {"superadmin": "superadmin", "mitra_a": "mitra1", "mitra_b": "mitra2"}
MARK = {"mitra_a": "Qzalfa", "mitra_b": "Qzbeta", "superadmin": "Qzsuper"}
MITRA_MARK = "Qzmitra"  # a mitra account: the superadmin's to see
NIK = {"mitra_a": "3201777700000001", "mitra_b": "3201777700000002",
       "superadmin": "3201777700000003"}
SERVER_ERROR = "Terjadi kesalahan di server"
CLIENT_IP = "10.20.0.1"


def login(role: str, ip: str = CLIENT_IP) -> str:
    """A fresh web session for ``role`` through the auth service; the raw token."""
    password = ADMIN_PASSWORD if role == "superadmin" else MITRA_PASSWORD
    return auth.login(Actor.anonymous(ip, "pytest-ws"), USERNAMES[role], password).token


class SocketEstate(Estate):
    """The REST suite's estate with marked names, plus what only the socket needs."""

    tokens: dict[str, str]
    import_job: uuid.UUID

    def customer(self, owner: str) -> uuid.UUID:
        n = self.next()
        return customers.create_customer(
            self.world.admin, name=f"Uji {MARK[owner]} {_letters(n)}",
            phone=f"0813{n:08d}", package_id=self.package_id, billing_date=5,
            owner_id=self.ids[owner], address=f"Jalan {MARK[owner]} {_letters(n)}",
            notes=f"Catatan {MARK[owner]}")

    def _name_of(self, customer_id: uuid.UUID) -> str:
        return customers.get_customer(self.world.admin, customer_id).name

    def tenant_of_other(self, role: str) -> str:
        """The tenant whose rows ``role`` is handed: never its own (A gets B's)."""
        return "mitra_b" if role == "mitra_a" else "mitra_a"

    def owner_of_other(self, role: str) -> uuid.UUID:
        return self.ids[self.tenant_of_other(role)]

    def mark_of_other(self, role: str) -> str:
        """A search term that finds the other tenant's rows without being their marker."""
        return MARK[self.tenant_of_other(role)][:4]

    def other(self, kind: str, role: str) -> Any:
        """A fresh row of ``kind`` belonging to another tenant than ``role``."""
        tenant = self.tenant_of_other(role)
        if kind == "owner":
            return self.ids[tenant]
        if kind == "session":
            token = login(tenant, ip="10.20.0.9")
            with new_session() as s:
                return s.exec(select(UserSession.id).where(
                    UserSession.token_hash == auth.hash_token(token))).one()
        if kind == "audit":
            with new_session() as s:
                return s.exec(select(ActivityLog.id).where(
                    ActivityLog.user_id == self.ids[tenant])
                    .order_by(ActivityLog.created_at.desc())).first()
        maker = {
            "customer": self.customer, "invoice": self.invoice,
            "paid_invoice": lambda o: self.invoice(o, paid=True), "proof": self.proof,
            "pending_queue": lambda o: self.queue_row(o, "pending"),
            "failed_queue": lambda o: self.queue_row(o, "failed"),
            "failed_log": self.failed_log,
            "mitra": self.mitra, "package": self.package,
        }[kind]
        return maker(tenant)

    def identity_vars(self, role: str) -> dict[str, str]:
        """What a forged ``update_vars_internal`` would set: identity and owner filters."""
        from tests.ws.client import client_storage_cookies

        out: dict[str, Any] = {}
        for state_key in client_storage_cookies():
            # A forged token (a stolen one would simply be that user's session).
            out[state_key] = "f" * 43
        from reflex.state import State

        for cls in _all_states(State):
            for var in ("role", "owner_filter", "user_name"):
                if var in cls.base_vars:
                    value = "superadmin" if var == "role" else str(self.owner_of_other(role))
                    out[f"{cls.get_full_name()}.{var}"] = value
        return out


def _all_states(cls) -> list:
    out = [cls]
    for sub in cls.get_substates():
        out.extend(_all_states(sub))
    return out


def _letters(n: int) -> str:
    """``n`` written with letters only (names refuse digits in some checks)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
        if n == 0:
            return out


def build_estate() -> SocketEstate:
    """Seeded users plus one marked subscriber (NIK, address, notes) per owner."""
    from tests.factories import World

    admin = auth.login(Actor.anonymous("10.20.0.2", "pytest"), "superadmin",
                       ADMIN_PASSWORD).actor
    world = World(admin=admin,
                  mitra_a=auth.login(Actor.anonymous("10.20.0.2", "pytest"), "mitra1",
                                     MITRA_PASSWORD).actor,
                  mitra_b=auth.login(Actor.anonymous("10.20.0.2", "pytest"), "mitra2",
                                     MITRA_PASSWORD).actor,
                  anonymous=Actor.anonymous("10.20.0.9", "pytest"))
    estate = SocketEstate(world)
    estate.actors = {"superadmin": world.admin, "mitra_a": world.mitra_a,
                     "mitra_b": world.mitra_b}
    with new_session() as s:
        for role, username in USERNAMES.items():
            estate.ids[role] = s.exec(select(User.id).where(User.username == username)).one()
    estate.package_id = estate.package("superadmin")
    for owner in ("mitra_a", "mitra_b", "superadmin"):
        customers.create_customer(
            world.admin, name=f"Pelanggan {MARK[owner]}", phone=f"08177700{len(owner):04d}",
            package_id=estate.package_id, billing_date=5, owner_id=estate.ids[owner],
            nik=NIK[owner], address=f"Jalan {MARK[owner]} Raya",
            notes=f"Catatan rahasia {MARK[owner]}")
        estate.invoice(owner, paid=True)
        estate.invoice(owner)
    from fibernode.services import users

    users.create_mitra(world.admin, username="qzmitra", password=MITRA_PASSWORD,
                       name=f"Pemilik {MITRA_MARK}", business_name=f"Usaha {MITRA_MARK}")
    estate.import_job = estate.import_job("superadmin")
    estate.tokens = {}
    return estate


def forbidden(role: str, tokens: dict[str, str]) -> dict[str, str]:
    """Every sentinel ``role`` must never receive: {what it is: the text}."""
    out = {f"session token of {r}": t for r, t in tokens.items()}
    if role == "superadmin":
        return out
    out.update({f"NIK of {o}'s subscriber": nik for o, nik in NIK.items()})
    out[f"mitra account {MITRA_MARK}"] = MITRA_MARK
    for owner, mark in MARK.items():
        if owner != role:
            out[f"{owner}'s data ({mark})"] = mark
    return out


def leaks(text: str, role: str, tokens: dict[str, str]) -> list[str]:
    """The forbidden sentinels ``text`` contains."""
    low = text.lower()
    return [what for what, s in forbidden(role, tokens).items() if s.lower() in low]


# --- what a caller must not change --------------------------------------------------------

OWNED = ("customers", "invoices", "payments", "wa_message_queue", "payment_proofs",
         "wa_outbox", "wa_message_logs", "revenue_months")
GLOBAL = ("packages", "wa_numbers", "import_jobs")
PER_USER = {"users": "id", "wa_sessions": "user_id", "recovery_codes": "user_id"}


def fingerprint(role: str, ids: dict[str, uuid.UUID]) -> dict[str, str]:
    """A digest per table of the rows ``role`` may not change (none for the superadmin)."""
    if role == "superadmin":
        return {}
    me = ids.get(role)
    where_owner = "true" if me is None else "t.owner_id IS DISTINCT FROM :me"
    where_user = "true" if me is None else "t.{col} IS DISTINCT FROM :me"
    queries = {name: f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {name} t "
                     f"WHERE {where_owner}" for name in OWNED}
    queries.update({name: f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {name} t"
                    for name in GLOBAL})
    queries["settings"] = ("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM settings t "
                           "WHERE t.key <> 'app_version'")
    for name, col in PER_USER.items():
        cols = "t::text" if name != "users" else (
            "(t.id, t.username, t.role, t.is_active, t.password_hash, t.name, t.phone, "
            "t.business_name, t.totp_secret)::text")
        queries[name] = (f"SELECT md5(string_agg({cols}, '|' ORDER BY {cols})) FROM {name} t "
                         f"WHERE {where_user.format(col=col)}")
    queries["user_sessions"] = ("SELECT md5(string_agg((t.id, t.revoked_at)::text, '|' ORDER BY "
                                "t.id)) FROM user_sessions t WHERE "
                                + where_user.format(col="user_id"))
    params = {} if me is None else {"me": me}
    out = {}
    with get_engine().connect() as conn:
        for name, sql in queries.items():
            out[name] = conn.execute(sa.text(sql), params).scalar() or ""
    return out
