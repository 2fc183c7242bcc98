"""Runtime configuration, read once from environment variables.

Everything has an embedded default so that a first run needs no configuration:
a SQLite file database, Celery on a SQLite broker, WhatsApp in outbox mode.
Production mode (``APP_ENV=production``) refuses the development defaults for
secrets, so a forgotten ``.env`` cannot ship a guessable key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development-only secrets. Production mode refuses to start with any of them.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production-000"  # noqa: S105
DEV_JWT_REFRESH_SECRET = "dev-only-refresh-secret-change-me-in-production"  # noqa: S105
DEV_ENCRYPTION_KEY = "0" * 64
DEV_ADMIN_PASSWORD = "Admin123!"  # noqa: S105
DEV_GATEWAY_TOKEN = "dev-only-wa-gateway-token"  # noqa: S105
WA_MODES = ("outbox", "neonize", "cloud")

SPEC_PLACEHOLDER_SECRETS = {
    "your-super-secret-jwt-key-min-32-chars",
    "your-refresh-secret-key-min-32-chars",
    "your-64-character-hex-encryption-key",
}


class ConfigError(RuntimeError):
    """Raised when the configuration cannot be used (message is for the operator)."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} harus berupa angka bulat, bukan {raw!r}.") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} harus berupa angka, bukan {raw!r}.") from exc
    if value <= 0:
        raise ConfigError(f"{name} harus lebih dari 0.")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _env_duration(name: str, default: str) -> timedelta:
    """A duration written as ``15m``, ``12h``, ``7d`` or plain seconds."""
    raw = _env(name, default).lower()
    unit = raw[-1] if raw[-1:] in _DURATION_UNITS else "s"
    number = raw[:-1] if raw[-1:] in _DURATION_UNITS else raw
    try:
        seconds = int(number) * _DURATION_UNITS[unit]
    except ValueError as exc:
        raise ConfigError(f"{name} harus berupa durasi seperti 15m, 12h atau 7d, "
                          f"bukan {raw!r}.") from exc
    if seconds <= 0:
        raise ConfigError(f"{name} harus lebih dari 0.")
    return timedelta(seconds=seconds)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment."""

    app_env: str
    data_dir: Path
    database_url: str
    redis_url: str | None
    celery_broker_url: str
    celery_result_backend: str
    jwt_secret: str
    jwt_refresh_secret: str
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    rate_limit_factor: float
    encryption_key: str
    cors_origin: str
    log_level: str
    admin_username: str
    admin_password: str
    admin_name: str
    admin_business_name: str
    timezone: str
    login_max_attempts: int
    login_lockout_minutes: int
    session_hours: int
    remember_days: int
    device_cookie_days: int
    wa_mode: str
    # False when WA_MODE was unset or blank and ``wa_mode`` is the outbox default.
    wa_mode_explicit: bool
    wa_gateway_url: str
    wa_gateway_token: str
    wa_sessions_dir: Path
    wa_cloud_api_base: str
    wa_cloud_api_version: str
    wa_cloud_app_secret: str
    wa_cloud_verify_token: str
    public_url: str
    uploads_dir: Path
    tmp_dir: Path
    backup_dir: Path
    backup_retention_days: int
    frontend_port: int
    backend_port: int
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        """Whether the app runs in production mode."""
        return self.app_env == "production"

    @property
    def is_sqlite(self) -> bool:
        """Whether the main database is SQLite."""
        return self.database_url.startswith("sqlite")

    def validate_for_startup(self) -> None:
        """Refuse to run production with development or placeholder secrets.

        Raises:
            ConfigError: with a message naming every variable to fix.
        """
        if self.wa_mode not in WA_MODES:
            raise ConfigError(f"WA_MODE harus salah satu dari {', '.join(WA_MODES)}, "
                              f"bukan {self.wa_mode!r}.")
        if not self.is_production:
            return
        problems: list[str] = []
        checks = {
            "JWT_SECRET": (self.jwt_secret, DEV_JWT_SECRET),
            "JWT_REFRESH_SECRET": (self.jwt_refresh_secret, DEV_JWT_REFRESH_SECRET),
            "ENCRYPTION_KEY": (self.encryption_key, DEV_ENCRYPTION_KEY),
            "ADMIN_PASSWORD": (self.admin_password, DEV_ADMIN_PASSWORD),
        }
        # Outbox records messages without sending them: production must choose it on purpose.
        if not self.wa_mode_explicit:
            problems.append("WA_MODE wajib diisi (outbox, neonize atau cloud); outbox hanya "
                            "mencatat pesan dan tidak mengirimnya ke pelanggan")
        for name, (value, dev_value) in checks.items():
            if value == dev_value or value in SPEC_PLACEHOLDER_SECRETS:
                problems.append(f"{name} masih memakai nilai bawaan")
        for name, value in (("JWT_SECRET", self.jwt_secret),
                            ("JWT_REFRESH_SECRET", self.jwt_refresh_secret)):
            if len(value) < 32:
                problems.append(f"{name} minimal 32 karakter")
        try:
            key = bytes.fromhex(self.encryption_key)
            if len(key) != 32:
                problems.append("ENCRYPTION_KEY harus 64 karakter hex (32 byte)")
        except ValueError:
            problems.append("ENCRYPTION_KEY harus 64 karakter hex (32 byte)")
        if self.wa_mode == "neonize" and self.wa_gateway_token == DEV_GATEWAY_TOKEN:
            problems.append("WA_GATEWAY_TOKEN masih memakai nilai bawaan")
        if self.is_sqlite:
            problems.append("DATABASE_URL harus menunjuk ke PostgreSQL di production")
        if not self.redis_url:
            problems.append("REDIS_URL wajib diisi di production")
        if problems:
            raise ConfigError(
                "FiberNode menolak berjalan dalam mode production: "
                + "; ".join(problems)
                + ". Isi variabel tersebut di file .env lalu jalankan ulang."
            )


def normalize_database_url(url: str) -> str:
    """Point PostgreSQL URLs at the psycopg 3 driver.

    Args:
        url: A URL as operators write it (``postgres://`` or ``postgresql://``).

    Returns:
        The URL SQLAlchemy needs for psycopg 3.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load_settings() -> Settings:
    """Build settings from the current environment (not cached)."""
    data_dir = Path(_env("FIBERNODE_DATA_DIR", str(PROJECT_ROOT / "data"))).resolve()
    database_url = normalize_database_url(
        _env("DATABASE_URL", _sqlite_url(data_dir / "fibernode.db"))
    )
    redis_url = os.environ.get("REDIS_URL", "").strip() or None
    # Without Redis, Celery uses kombu's SQLAlchemy transport on a SQLite file:
    # a real broker shared by the web app, the worker and beat, needing no server.
    default_broker = redis_url or "sqla+" + _sqlite_url(data_dir / "celery-broker.db")
    default_backend = (
        redis_url.rsplit("/", 1)[0] + "/1" if redis_url and "/" in redis_url[8:]
        else "db+" + _sqlite_url(data_dir / "celery-results.db")
    )
    return Settings(
        app_env=_env("APP_ENV", "development").lower(),
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        celery_broker_url=_env("CELERY_BROKER_URL", default_broker),
        celery_result_backend=_env("CELERY_RESULT_BACKEND", default_backend),
        jwt_secret=_env("JWT_SECRET", DEV_JWT_SECRET),
        jwt_refresh_secret=_env("JWT_REFRESH_SECRET", DEV_JWT_REFRESH_SECRET),
        # REST API tokens (spec): a short access JWT and a rotating refresh token.
        access_token_ttl=_env_duration("JWT_EXPIRES_IN", "15m"),
        refresh_token_ttl=_env_duration("REFRESH_TOKEN_EXPIRES_IN", "7d"),
        # Scales every request rate limit (e.g. 2 doubles them; the test suite raises it).
        rate_limit_factor=_env_float("RATE_LIMIT_FACTOR", 1.0),
        encryption_key=_env("ENCRYPTION_KEY", DEV_ENCRYPTION_KEY),
        cors_origin=_env("CORS_ORIGIN", "http://localhost:3000"),
        log_level=_env("LOG_LEVEL", "info").upper(),
        admin_username=_env("ADMIN_USERNAME", "superadmin"),
        admin_password=_env("ADMIN_PASSWORD", DEV_ADMIN_PASSWORD),
        admin_name=_env("ADMIN_NAME", "Super Admin"),
        admin_business_name=_env("ADMIN_BUSINESS_NAME", "FiberNode Pusat"),
        timezone=_env("TZ", "Asia/Jakarta"),
        login_max_attempts=_env_int("LOGIN_MAX_ATTEMPTS", 5),
        login_lockout_minutes=_env_int("LOGIN_LOCKOUT_MINUTES", 15),
        session_hours=_env_int("SESSION_HOURS", 12),
        remember_days=_env_int("REMEMBER_ME_DAYS", 30),
        # How long a trusted-device token (fibernode.services.devices) stays valid.
        device_cookie_days=_env_int("DEVICE_COOKIE_DAYS", 180),
        wa_mode=_env("WA_MODE", "outbox").lower(),
        wa_mode_explicit=bool(os.environ.get("WA_MODE", "").strip()),
        # The wa-gateway service (neonize mode): internal HTTP port, shared secret.
        wa_gateway_url=_env("WA_GATEWAY_URL", "http://127.0.0.1:8765").rstrip("/"),
        wa_gateway_token=_env("WA_GATEWAY_TOKEN", DEV_GATEWAY_TOKEN),
        wa_sessions_dir=Path(_env("WA_SESSIONS_DIR", str(data_dir / "wa-sessions"))).resolve(),
        # Official Cloud API: the Graph base is overridable for a proxy or a local fake.
        wa_cloud_api_base=_env("WA_CLOUD_API_BASE", "https://graph.facebook.com").rstrip("/"),
        wa_cloud_api_version=_env("WA_CLOUD_API_VERSION", "21.0"),
        wa_cloud_app_secret=_env("WA_CLOUD_APP_SECRET", ""),
        wa_cloud_verify_token=_env("WA_CLOUD_VERIFY_TOKEN", ""),
        public_url=_env("PUBLIC_URL", "http://localhost:3000"),
        # Uploaded branding and payment-proof photos (a Docker volume in production).
        uploads_dir=Path(_env("UPLOADS_DIR", str(data_dir / "uploads"))).resolve(),
        # Staging for uploads and generated files; the nightly cleanup empties old ones.
        tmp_dir=Path(_env("FIBERNODE_TMP_DIR", str(data_dir / "tmp"))).resolve(),
        backup_dir=Path(_env("BACKUP_DIR", str(data_dir / "backups"))).resolve(),
        backup_retention_days=_env_int("BACKUP_RETENTION_DAYS", 30),
        frontend_port=_env_int("FRONTEND_PORT", 3000),
        # Reflex's production mode serves the pages and the backend on one port.
        backend_port=_env_int("BACKEND_PORT", _env_int("FRONTEND_PORT", 3000)),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests call ``reset_settings``)."""
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings so the next call re-reads the environment."""
    get_settings.cache_clear()
