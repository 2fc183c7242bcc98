"""Configuration: production refuses development secrets; URLs are normalised."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest

from fibernode.config import (
    DEV_ENCRYPTION_KEY,
    DEV_JWT_SECRET,
    PROJECT_ROOT,
    ConfigError,
    load_settings,
    normalize_database_url,
)

CONFIG_VARS = (
    "APP_ENV", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
    "JWT_SECRET", "JWT_REFRESH_SECRET", "ENCRYPTION_KEY", "ADMIN_USERNAME", "ADMIN_PASSWORD",
    "ADMIN_NAME", "ADMIN_BUSINESS_NAME", "LOGIN_MAX_ATTEMPTS", "LOGIN_LOCKOUT_MINUTES",
    "SESSION_HOURS", "REMEMBER_ME_DAYS", "FIBERNODE_DATA_DIR", "WA_MODE",
)


def safe_production() -> dict[str, str]:
    """A production environment with real secrets and real servers."""
    return {
        "APP_ENV": "production",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "JWT_REFRESH_SECRET": secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "ADMIN_PASSWORD": "Sangat-Rahasia-2024",
        "DATABASE_URL": "postgres://fibernode:pw@db:5432/fibernode",
        "REDIS_URL": "redis://redis:6379/0",
        "WA_MODE": "outbox",
    }


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Start from an environment without any FiberNode variable; returns a setter."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path))

    def set_vars(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_vars


def refusal() -> str:
    """The ConfigError message for the current environment."""
    with pytest.raises(ConfigError) as exc:
        load_settings().validate_for_startup()
    return str(exc.value)


def test_production_with_default_secrets_is_refused(env):
    env(APP_ENV="production")
    message = refusal()
    assert message.startswith("FiberNode menolak berjalan dalam mode production")
    for expected in ("JWT_SECRET masih memakai nilai bawaan",
                     "JWT_REFRESH_SECRET masih memakai nilai bawaan",
                     "ENCRYPTION_KEY masih memakai nilai bawaan",
                     "ADMIN_PASSWORD masih memakai nilai bawaan",
                     "DATABASE_URL harus menunjuk ke PostgreSQL di production",
                     "REDIS_URL wajib diisi di production"):
        assert expected in message
    assert message.endswith("Isi variabel tersebut di file .env lalu jalankan ulang.")


def test_production_with_proper_settings_passes(env):
    env(**safe_production())
    settings = load_settings()
    settings.validate_for_startup()
    assert settings.is_production and not settings.is_sqlite
    assert settings.database_url == "postgresql+psycopg://fibernode:pw@db:5432/fibernode"
    assert settings.celery_broker_url == "redis://redis:6379/0"
    assert settings.celery_result_backend == "redis://redis:6379/1"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"JWT_SECRET": "your-super-secret-jwt-key-min-32-chars"},
         "JWT_SECRET masih memakai nilai bawaan"),
        ({"ENCRYPTION_KEY": "your-64-character-hex-encryption-key"},
         "ENCRYPTION_KEY masih memakai nilai bawaan"),
        ({"JWT_REFRESH_SECRET": "pendek"}, "JWT_REFRESH_SECRET minimal 32 karakter"),
        ({"ENCRYPTION_KEY": "zz" * 32}, "ENCRYPTION_KEY harus 64 karakter hex (32 byte)"),
        ({"ENCRYPTION_KEY": "ab" * 16}, "ENCRYPTION_KEY harus 64 karakter hex (32 byte)"),
        ({"ADMIN_PASSWORD": "Admin123!"}, "ADMIN_PASSWORD masih memakai nilai bawaan"),
        ({"DATABASE_URL": "sqlite:////data/fibernode.db"},
         "DATABASE_URL harus menunjuk ke PostgreSQL di production"),
        ({"REDIS_URL": ""}, "REDIS_URL wajib diisi di production"),
    ],
    ids=["spec-placeholder-jwt", "spec-placeholder-key", "short-secret", "non-hex-key",
         "short-key", "dev-admin-password", "sqlite", "no-redis"],
)
def test_each_unsafe_production_setting_is_named(env, override, expected):
    env(**{**safe_production(), **override})
    message = refusal()
    assert expected in message
    # Only the bad variable is reported.
    assert set(re.findall(r"\b[A-Z][A-Z_]+[A-Z]\b", message)) == set(override)


@pytest.mark.parametrize("unset", [None, "", "  "], ids=["missing", "empty", "blank"])
def test_production_refuses_to_start_without_an_explicit_wa_mode(env, monkeypatch, unset):
    env(**safe_production())
    if unset is None:
        monkeypatch.delenv("WA_MODE")
    else:
        monkeypatch.setenv("WA_MODE", unset)
    message = refusal()
    assert "WA_MODE wajib diisi" in message
    assert "tidak mengirimnya ke pelanggan" in message
    assert set(re.findall(r"\b[A-Z][A-Z_]+[A-Z]\b", message)) == {"WA_MODE"}


@pytest.mark.parametrize("mode", ["outbox", "neonize", "cloud"])
def test_production_accepts_an_explicit_wa_mode(env, mode):
    env(**{**safe_production(), "WA_MODE": mode, "WA_GATEWAY_TOKEN": "t" * 40})
    settings = load_settings()
    assert settings.wa_mode == mode and settings.wa_mode_explicit
    settings.validate_for_startup()


def test_development_defaults_to_outbox_without_wa_mode(env):
    settings = load_settings()
    assert (settings.wa_mode, settings.wa_mode_explicit) == ("outbox", False)
    settings.validate_for_startup()


def test_development_accepts_the_defaults(env):
    settings = load_settings()
    assert settings.app_env == "development"
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.encryption_key == DEV_ENCRYPTION_KEY
    assert settings.is_sqlite and settings.database_url.endswith("fibernode.db")
    assert (settings.login_max_attempts, settings.login_lockout_minutes) == (5, 15)
    assert (settings.session_hours, settings.remember_days) == (12, 30)
    settings.validate_for_startup()


def test_blank_variables_fall_back_to_defaults(env):
    env(JWT_SECRET="   ", LOGIN_MAX_ATTEMPTS="")
    settings = load_settings()
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.login_max_attempts == 5


def test_non_numeric_number_is_a_config_error(env):
    env(LOGIN_MAX_ATTEMPTS="lima")
    with pytest.raises(ConfigError, match="LOGIN_MAX_ATTEMPTS harus berupa angka bulat"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("sqlite:///data/fibernode.db", "sqlite:///data/fibernode.db"),
    ],
)
def test_database_url_is_normalised(url, expected):
    assert normalize_database_url(url) == expected


def test_postgres_url_from_the_environment_is_normalised(env):
    env(DATABASE_URL="postgres://fibernode:pw@db/fibernode")
    assert load_settings().database_url == "postgresql+psycopg://fibernode:pw@db/fibernode"


# --- the operator command ----------------------------------------------------------------


def run_cli(extra_env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    child_env.update({"FIBERNODE_DATA_DIR": str(tmp_path), **extra_env})
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "fibernode.cli", "check-config"],
        cwd=PROJECT_ROOT, env=child_env, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_check_config_refuses_production_defaults(tmp_path):
    proc = run_cli({"APP_ENV": "production"}, tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("ERROR: FiberNode menolak berjalan dalam mode production")
    assert "JWT_SECRET masih memakai nilai bawaan" in proc.stderr
    assert "WA_MODE wajib diisi" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_config_accepts_a_safe_production_setup(tmp_path):
    proc = run_cli(safe_production(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Konfigurasi OK (production)."
