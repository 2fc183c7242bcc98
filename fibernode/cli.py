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
    sub.add_parser("backup", help="backup database sekali sekarang (ke BACKUP_DIR)")
    sub.add_parser("backups", help="daftar backup di BACKUP_DIR")
    rs = sub.add_parser("restore", help="pulihkan backup ke database KOSONG lalu verifikasi")
    rs.add_argument("file", help="berkas backup (path, atau nama di BACKUP_DIR)")
    rs.add_argument("--database-url", required=True,
                    help="database tujuan (URL SQLAlchemy), harus kosong")
    rs.add_argument("--force", action="store_true",
                    help="timpa database tujuan walaupun tidak kosong")
    hc = sub.add_parser("health", help="cek kesehatan; keluar 1 bila tidak sehat")
    hc.add_argument("--component", choices=["web", "worker", "beat"],
                    help="cek satu proses saja (untuk healthcheck Docker)")
    hc.add_argument("--hostname", help="nama worker Celery (bawaan: celery@<hostname>)")
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
    elif args.cmd in ("backup", "backups", "restore"):
        return _backup_command(args)
    elif args.cmd == "health":
        return _health_command(args)
    return 0


def _backup_command(args: argparse.Namespace) -> int:
    """``backup``, ``backups`` and ``restore``."""
    import json

    from fibernode.clock import JAKARTA
    from fibernode.services import backup
    from fibernode.services.context import Actor
    from fibernode.services.errors import ServiceError

    actor = Actor.system(f"cli.{args.cmd}")
    try:
        if args.cmd == "backup":
            result = backup.run_backup(actor)
            print(f"Backup selesai: {result.path} ({result.size} byte)")
            for name in result.deleted:
                print(f"Backup lama dihapus: {name}")
        elif args.cmd == "backups":
            for info in backup.list_backups(actor):
                invoices = ((info.manifest or {}).get("invoices") or {}).get("rows", "?")
                print(f"{info.created_at.astimezone(JAKARTA):%Y-%m-%d %H:%M:%S}  "
                      f"{info.size:>12}  {info.path}  tagihan={invoices}"
                      f"{'' if info.manifest else '  (tanpa manifest)'}")
        else:
            report = backup.restore_backup(actor, args.file, args.database_url,
                                           force=args.force)
            print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
            print("Restore selesai dan cocok dengan manifest.")
    except ServiceError as exc:
        details = getattr(exc, "details", None)
        print(f"ERROR: {exc.message}{f' {details}' if details else ''}", file=sys.stderr)
        return 1
    return 0


def _health_command(args: argparse.Namespace) -> int:
    """``health``: the whole report, or one process for a container healthcheck."""
    import json

    from fibernode.services import health

    if args.component:
        from workers.celery_app import ping_worker

        healthy, why = health.check_component(args.component, hostname=args.hostname,
                                              ping=ping_worker)
        print(f"{args.component}: {'OK' if healthy else 'TIDAK SEHAT'} - {why}")
        return 0 if healthy else 1
    report = health.check()
    print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
