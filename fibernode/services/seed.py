"""First-run data: the superadmin from ADMIN_*, default settings, and demo data.

Idempotent: rows that already exist (by username, package name, or owner and
phone) are left alone, so running it on every start seeds exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.models import Customer, Package, User, UserRole
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.passwords import hash_password
from fibernode.services.uow import unit_of_work

DEMO_PACKAGES = [
    ("Paket 10 Mbps", "10 Mbps", 100_000),
    ("Paket 20 Mbps", "20 Mbps", 150_000),
    ("Paket 30 Mbps", "30 Mbps", 200_000),
    ("Paket 50 Mbps", "50 Mbps", 250_000),
    ("Paket 100 Mbps", "100 Mbps", 350_000),
]
DEMO_MITRA = [
    ("mitra1", "Mitra123!", "Budi Santoso", "WiFi Sukamaju"),
    ("mitra2", "Mitra123!", "Siti Rahayu", "Net Mekarjaya"),
]
# (name, phone, owner username or None for the superadmin, billing date, package, discount)
DEMO_CUSTOMERS = [
    ("Ahmad Fauzi", "6281234567890", "mitra1", 5, "Paket 10 Mbps", 0),
    ("Dewi Lestari", "6289876543210", "mitra1", 10, "Paket 20 Mbps", 10_000),
    ("Rudi Hartono", "6281333444555", None, 15, "Paket 50 Mbps", 0),
]


@dataclass
class SeedReport:
    """What a seed run created."""

    created: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return ", ".join(self.created) if self.created else "tidak ada yang baru"


def seed(actor: Actor, *, demo: bool = True) -> SeedReport:
    """Create whatever of the first-run data is missing, in one transaction."""
    require_superadmin(actor)
    cfg = get_settings()
    report = SeedReport()
    with unit_of_work(actor) as uow:
        s = uow.session
        admin = s.exec(select(User).where(User.role == UserRole.SUPERADMIN)).first()
        if admin is None:
            admin = User(username=cfg.admin_username.lower(),
                         password_hash=hash_password(cfg.admin_password),
                         name=cfg.admin_name, role=UserRole.SUPERADMIN,
                         business_name=cfg.admin_business_name)
            s.add(admin)
            s.flush()
            uow.audit("user.create", "users", admin.id, username=admin.username,
                      role=UserRole.SUPERADMIN, seed=True)
            report.created.append(f"superadmin {admin.username}")
        if demo:
            _seed_demo(uow, admin, report)
    report.created += [f"setting {k}" for k in settings_service.ensure_defaults(actor)]
    return report


def _seed_demo(uow, admin: User, report: SeedReport) -> None:
    s = uow.session
    packages = {p.name: p for p in s.exec(select(Package)).all()}
    for name, speed, price in DEMO_PACKAGES:
        if name not in packages:
            pkg = Package(name=name, speed=speed, price=price)
            s.add(pkg)
            s.flush()
            packages[name] = pkg
            uow.audit("package.create", "packages", pkg.id, name=name, price=price, seed=True)
            report.created.append(name)
    owners = {admin.username: admin}
    for username, password, name, business in DEMO_MITRA:
        user = s.exec(select(User).where(sa.func.lower(User.username) == username)).first()
        if user is None:
            user = User(username=username, password_hash=hash_password(password), name=name,
                        role=UserRole.MITRA, business_name=business)
            s.add(user)
            s.flush()
            uow.audit("user.create", "users", user.id, username=username,
                      role=UserRole.MITRA, seed=True)
            report.created.append(f"mitra {username}")
        owners[username] = user
    for name, phone, owner_username, billing_date, pkg_name, discount in DEMO_CUSTOMERS:
        owner = owners[owner_username or admin.username]
        exists = s.exec(select(Customer.id).where(Customer.owner_id == owner.id,
                                                  Customer.phone == phone)).first()
        if exists:
            continue
        pkg = packages[pkg_name]
        cust = Customer(owner_id=owner.id, package_id=pkg.id, name=name, phone=phone,
                        billing_date=billing_date, discount=discount,
                        total_bill=pkg.price - discount, register_date=clock.today())
        s.add(cust)
        s.flush()
        uow.audit("customer.create", "customers", cust.id, name=name, owner=owner.username,
                  seed=True)
        report.created.append(f"pelanggan {name}")
