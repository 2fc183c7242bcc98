"""Operator commands: ``python -m fibernode.cli {check-config,migrate,seed,downgrade}``."""

from __future__ import annotations

import argparse
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
