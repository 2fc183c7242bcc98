"""Operator commands: ``python -m fibernode.cli <command>`` (see ``--help``)."""

from __future__ import annotations

import argparse
import os
import sys

from fibernode.config import PROJECT_ROOT, ConfigError, get_settings


def alembic_config():
    """Alembic configuration pointing at this project's migrations."""
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return cfg


def migrate(revision: str = "head") -> None:
    """Upgrade the database to ``revision``."""
    from alembic import command

    settings = get_settings()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(), revision)


def migrate_url(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (not the configured one) to ``revision``.

    For tests and tools that make databases of their own.
    """
    from alembic import command

    from fibernode.db import create_engine_for

    engine = create_engine_for(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            cfg.attributes["configure_logger"] = False
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def downgrade(revision: str) -> None:
    """Downgrade the database to ``revision``."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="fibernode")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check-config", help="tolak konfigurasi production yang tidak aman")
    m = sub.add_parser("migrate", help="jalankan migrasi database")
    m.add_argument("revision", nargs="?", default="head")
    d = sub.add_parser("downgrade", help="mundurkan migrasi database")
    d.add_argument("revision")
    sd = sub.add_parser("seed", help="isi data awal (sekali saja)")
    sd.add_argument("--no-demo", action="store_true", help="tanpa data contoh")
    wg = sub.add_parser("wa-gateway", help="jalankan layanan WhatsApp gateway (neonize)")
    wg.add_argument("--host", default=os.environ.get("WA_GATEWAY_HOST", "127.0.0.1"))
    wg.add_argument("--port", type=int, default=None,
                    help="bawaan: port dari WA_GATEWAY_URL")
    wg.add_argument("--test-mode", action="store_true",
                    default=os.environ.get("WA_GATEWAY_TEST_MODE", "") == "1",
                    help="klien WhatsApp tiruan untuk pengujian (tanpa jaringan)")
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
        settings.validate_for_startup()
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        print(f"Konfigurasi OK ({settings.app_env}).")
    elif args.cmd == "migrate":
        migrate(args.revision)
    elif args.cmd == "downgrade":
        downgrade(args.revision)
    elif args.cmd == "seed":
        from fibernode.services.context import Actor
        from fibernode.services.seed import seed

        demo = not args.no_demo and not settings.is_production
        print(f"Seed: {seed(Actor.system('seed'), demo=demo)}")
    elif args.cmd == "wa-gateway":
        from urllib.parse import urlsplit

        from fibernode.whatsapp.gateway.server import run

        if args.test_mode and settings.is_production:
            print("ERROR: --test-mode tidak boleh dipakai di production.", file=sys.stderr)
            return 2
        port = args.port or urlsplit(settings.wa_gateway_url).port or 8765
        run(args.host, port, test_mode=args.test_mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
