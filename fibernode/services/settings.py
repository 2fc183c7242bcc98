"""Site settings (key/value): branding, receipt toggles and the running version."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from fibernode import __version__, clock
from fibernode.db import new_session
from fibernode.models import Setting
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work

DEFAULTS: dict[str, str] = {
    "app_name": "FiberNode Internet",
    "logo_url": "",
    "favicon_url": "",
    "meta_description": "Sistem manajemen tagihan langganan WiFi",
    "domain": "",
    "ssl_method": "none",
    "receipt_logo_enabled": "true",
    "receipt_show_company_name": "true",
    "receipt_show_customer_phone": "true",
    "receipt_show_nik": "false",
    "receipt_show_area": "true",
    "receipt_show_package": "true",
    "receipt_show_discount": "true",
    "receipt_show_payment_method": "true",
    "receipt_show_paid_by": "true",
    "receipt_footer_text": "Terima kasih atas pembayaran Anda.",
    "splash_logo_url": "",
    "splash_bg_color": "#3B82F6",
    # Browser / installed-app chrome colour (manifest theme_color, <meta name=theme-color>).
    "theme_color": "#3B82F6",
    # Written by the logo pipeline only (hashed files under /branding/); empty = defaults.
    "icon_192_url": "",
    "icon_512_url": "",
    "icon_maskable_url": "",
    "apple_touch_icon_url": "",
    "app_version": __version__,
}
DEFAULT_LOGO = "/logo.svg"
# Shipped icons (assets/icons), used until the superadmin uploads a logo.
DEFAULT_ICONS = {
    "favicon_url": "/icons/favicon-32.png",
    "icon_192_url": "/icons/icon-192.png",
    "icon_512_url": "/icons/icon-512.png",
    "icon_maskable_url": "/icons/icon-maskable-512.png",
    "apple_touch_icon_url": "/icons/apple-touch-icon.png",
}


@dataclass(frozen=True)
class Branding:
    """Public branding shown before login (splash, login page)."""

    app_name: str
    logo_url: str
    splash_logo_url: str
    splash_bg_color: str
    meta_description: str
    app_version: str
    theme_color: str = DEFAULTS["theme_color"]
    favicon_url: str = DEFAULT_ICONS["favicon_url"]
    icon_192_url: str = DEFAULT_ICONS["icon_192_url"]
    icon_512_url: str = DEFAULT_ICONS["icon_512_url"]
    icon_maskable_url: str = DEFAULT_ICONS["icon_maskable_url"]
    apple_touch_icon_url: str = DEFAULT_ICONS["apple_touch_icon_url"]


def get_values(keys: list[str] | None = None) -> dict[str, str]:
    """Current values, falling back to the defaults for keys never stored."""
    with new_session() as s:
        q = select(Setting.key, Setting.value)
        if keys:
            q = q.where(Setting.key.in_(keys))
        stored = {k: v for k, v in s.exec(q).all() if v is not None}
    merged = {**DEFAULTS, **stored}
    return merged if keys is None else {k: merged.get(k, "") for k in keys}


def get_branding(actor: Actor) -> Branding:
    """Branding for everyone, including anonymous visitors."""
    v = get_values(["app_name", "logo_url", "splash_logo_url", "splash_bg_color",
                    "meta_description", "app_version", "theme_color", *DEFAULT_ICONS])
    logo = v["logo_url"] or DEFAULT_LOGO
    icons = {key: v[key] or default for key, default in DEFAULT_ICONS.items()}
    return Branding(
        app_name=v["app_name"] or DEFAULTS["app_name"],
        logo_url=logo,
        splash_logo_url=v["splash_logo_url"] or logo,
        splash_bg_color=v["splash_bg_color"] or DEFAULTS["splash_bg_color"],
        meta_description=v["meta_description"],
        app_version=v["app_version"] or __version__,
        theme_color=v["theme_color"] or DEFAULTS["theme_color"],
        **icons,
    )


def _upsert(session, key: str, value: str) -> str | None:
    row = session.exec(select(Setting).where(Setting.key == key)).first()
    if row is None:
        session.add(Setting(key=key, value=value))
        return None
    old = row.value
    if old != value:
        row.value = value
        row.updated_at = clock.now()
    return old


def ensure_defaults(actor: Actor) -> list[str]:
    """Insert every default key that is missing (seeding); returns the keys added."""
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        present = set(uow.session.exec(select(Setting.key)).all())
        added = [k for k in DEFAULTS if k not in present]
        for key in added:
            uow.session.add(Setting(key=key, value=DEFAULTS[key]))
        if added:
            uow.audit("settings.seed", "settings", None, keys=added)
        return added


def record_app_version(actor: Actor, version: str = __version__) -> bool:
    """Write the running package version to ``app_version`` at startup.

    Returns:
        True when the stored version changed.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        old = _upsert(uow.session, "app_version", version)
        if old == version:
            return False
        uow.audit("settings.app_version", "settings", None, changes={
            "app_version": {"from": old, "to": version}})
        return True


# Keys the superadmin edits as on/off switches ("true" / "false").
TOGGLE_KEYS = frozenset(k for k in DEFAULTS if k.startswith("receipt_") and k not in
                        ("receipt_footer_text",))
# Keys written only by the system, never through update_settings.
SYSTEM_KEYS = frozenset({"app_version", "icon_192_url", "icon_512_url", "icon_maskable_url",
                         "apple_touch_icon_url"})
TEXT_LIMITS = {"app_name": 100, "meta_description": 300, "receipt_footer_text": 500}
COLOR_KEYS = frozenset({"theme_color", "splash_bg_color"})
# Logo and favicon addresses: normally written by the logo pipeline (/branding/…).
URL_KEYS = frozenset({"logo_url", "splash_logo_url", "favicon_url"})
SSL_METHODS = ("none", "letsencrypt", "cloudflare")
HEX_COLOR_RE = re.compile(r"^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalize_hex_color(value: str) -> str | None:
    """``#abc`` / ``#AABBCC`` as ``#AABBCC``; ``None`` when it is not a hex colour."""
    text = value.strip()
    if not HEX_COLOR_RE.match(text):
        return None
    if len(text) == 4:
        text = "#" + "".join(c * 2 for c in text[1:])
    return text.upper()


def _check_value(key: str, text: str) -> tuple[str, str | None]:
    """A text value normalised, or the Indonesian reason it is refused."""
    if key in COLOR_KEYS:
        color = normalize_hex_color(text)
        if color is None:
            return text, "Warna harus kode hex, contoh #3B82F6."
        return color, None
    if key == "ssl_method":
        if text not in SSL_METHODS:
            return text, "Pilih salah satu: none, letsencrypt atau cloudflare."
        return text, None
    if key == "domain":
        host = text.lower().rstrip(".")
        if "://" in host or "/" in host:
            return text, ("Isi nama domain saja tanpa http:// atau garis miring, "
                          "contoh tagihan.fibernode.id.")
        if host and not HOSTNAME_RE.match(host):
            return text, "Nama domain tidak valid, contoh tagihan.fibernode.id."
        return host, None
    if key in URL_KEYS and text and not (
            (text.startswith("/") and not text.startswith("//"))
            or text.startswith("https://")):
        return text, "Alamat harus diawali / (file aplikasi) atau https://."
    return text, None


def store_values(session, values: dict[str, str]) -> dict[str, dict]:
    """Write already-checked values in ``session``; returns ``{key: {from, to}}``.

    The caller owns the transaction and its audit row (the logo pipeline writes
    the system icon keys this way).
    """
    changes = {}
    for key, value in values.items():
        old = _upsert(session, key, value)
        if old is None:
            old = DEFAULTS.get(key, "")
        if old != value:
            changes[key] = {"from": old, "to": value}
    return changes


def update_settings(actor: Actor, values: dict[str, str | bool]) -> dict[str, dict]:
    """Change site settings (superadmin only), audited with before and after.

    Args:
        actor: The superadmin.
        values: Known keys only; receipt switches take booleans or "true"/"false".

    Returns:
        What changed, ``{key: {"from": old, "to": new}}``.

    Raises:
        ValidationFailed: an unknown or system key, or a value that does not fit.
    """
    require_superadmin(actor)
    clean_values: dict[str, str] = {}
    problems: dict[str, str] = {}
    for key, value in values.items():
        if key not in DEFAULTS or key in SYSTEM_KEYS:
            problems[key] = "Pengaturan tidak dikenal."
            continue
        if key in TOGGLE_KEYS:
            text = str(value).strip().lower()
            if isinstance(value, bool):
                text = "true" if value else "false"
            if text not in ("true", "false"):
                problems[key] = "Nilai harus aktif atau nonaktif."
                continue
            clean_values[key] = text
            continue
        text = str(value or "").strip()
        limit = TEXT_LIMITS.get(key, 500)
        if len(text) > limit:
            problems[key] = f"Maksimal {limit} karakter."
            continue
        text, problem = _check_value(key, text)
        if problem:
            problems[key] = problem
            continue
        clean_values[key] = text
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        changes = store_values(uow.session, clean_values)
        if changes:
            uow.audit("settings.update", "settings", None, changes=changes)
        return changes


def touch_heartbeat(key: str) -> None:
    """Record that a background process is alive (telemetry, not audited)."""
    now = clock.now().isoformat()
    with unit_of_work(Actor.system(key)).bookkeeping("heartbeat of a background process") as uow:
        s = uow.session
        updated = s.exec(
            sa.update(Setting).where(Setting.key == key).values(value=now,
                                                                 updated_at=clock.now())
        ).rowcount
        if not updated:
            s.add(Setting(key=key, value=now))
