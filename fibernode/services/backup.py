"""Database backups (daily, Celery beat) and a verified restore.

A backup is one file in ``backup_dir`` plus a JSON manifest beside it
(``<file>.json``):

* PostgreSQL: ``pg_dump --format=custom`` → ``fibernode-YYYYmmdd-HHMMSS.dump``. The
  row counts and the invoices checksum of the manifest are read inside the very
  snapshot pg_dump dumps (``pg_export_snapshot`` + ``pg_dump --snapshot``), so they
  describe the file exactly even while the app keeps writing.
* SQLite: sqlite3's online backup API → ``fibernode-YYYYmmdd-HHMMSS.sqlite3``, then
  ``PRAGMA integrity_check`` and the counts on the copy itself.

Connection details go to ``pg_dump`` / ``pg_restore`` through the libpq
environment (``PGHOST``, ``PGPASSWORD``, ...), never on the command line where
``ps`` would show the password. Files are written as ``*.partial`` and renamed
when complete, so a crash never leaves a file that looks like a backup.

Restore goes into an **empty** database (a non-empty one only with ``force``), then
compares every table's row count and the invoices checksum with the manifest and
raises :class:`BackupError` when anything differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session, select

from fibernode import __version__, clock
from fibernode.config import get_settings, normalize_database_url
from fibernode.db import create_engine_for, get_engine
from fibernode.models import ActivityLog, Invoice, Setting
from fibernode.services import storage
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import Conflict, NotFound, ServiceError, ValidationFailed
from fibernode.services.uow import unit_of_work

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
NAME_RE = re.compile(r"^fibernode-(\d{8}-\d{6})(?:-(\d+))?\.(dump|sqlite3)$")
EXTENSIONS = {"postgresql": "dump", "sqlite": "sqlite3"}
# ``settings`` keys written after every run (read by the health check).
LAST_RUN_KEY = "backup_last_run_at"
LAST_STATUS_KEY = "backup_last_status"
LAST_FILE_KEY = "backup_last_file"
LAST_ERROR_KEY = "backup_last_error"
# The invoice columns the checksum covers (money, state and identity of every bill).
CHECKSUM_COLUMNS = ("id", "customer_id", "owner_id", "period", "amount", "discount",
                    "total_amount", "paid_amount", "status", "paid_at", "due_date", "version")
PG_TOOL_TIMEOUT_S = 6 * 3600


class BackupError(ServiceError):
    """A backup or restore failed (tool error, corrupt file, verification mismatch)."""

    code = "backup_failed"


@dataclass(frozen=True)
class BackupInfo:
    """One backup file in ``backup_dir``.

    Attributes:
        path: The backup file.
        created_at: When it was taken (manifest, else the time in its name).
        size: Bytes on disk.
        manifest: The manifest's content, ``None`` when it is missing or unreadable.
    """

    path: Path
    created_at: datetime
    size: int
    manifest: dict | None

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name


@dataclass(frozen=True)
class BackupResult:
    """What one backup run did."""

    path: Path
    size: int
    engine: str
    tables: dict[str, int]
    invoices_checksum: str
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreReport:
    """The verified outcome of a restore."""

    path: Path
    engine: str
    backup_created_at: str
    tables: dict[str, int]
    invoices_checksum: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (CLI output)."""
        return {**asdict(self), "path": str(self.path)}


# --- facts: row counts and the invoices checksum -------------------------------------


def _norm(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def invoices_checksum(conn: sa.Connection) -> tuple[int, str]:
    """MD5 over every invoice's identity, money and state, ordered by id.

    Values are read through the model's column types, so a restored database gives
    the same digest as the one it was dumped from.

    Returns:
        (number of invoices, hex digest).
    """
    table = Invoice.__table__
    cols = [table.c[name] for name in CHECKSUM_COLUMNS]
    digest = hashlib.md5(usedforsecurity=False)
    rows = 0
    result = conn.execute(sa.select(*cols).order_by(table.c.id),
                          execution_options={"stream_results": True, "yield_per": 5000})
    for row in result:
        digest.update(("\x1f".join(_norm(v) for v in row) + "\n").encode())
        rows += 1
    return rows, digest.hexdigest()


def table_counts(conn: sa.Connection) -> dict[str, int]:
    """Rows in every table of the database (not only the models': also alembic's)."""
    names = sorted(sa.inspect(conn).get_table_names())
    return {name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            for name in names}


def _alembic_version(conn: sa.Connection, tables: dict[str, int]) -> str | None:
    if "alembic_version" not in tables:
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _facts(conn: sa.Connection) -> dict[str, Any]:
    tables = table_counts(conn)
    rows, checksum = invoices_checksum(conn) if "invoices" in tables else (0, "")
    return {"tables": tables, "alembic_version": _alembic_version(conn, tables),
            "invoices": {"rows": rows, "checksum": checksum}}


# --- PostgreSQL tools -----------------------------------------------------------------


def libpq_env(url: str | URL) -> tuple[dict[str, str], str]:
    """The libpq environment and the ``--dbname`` conninfo for a SQLAlchemy URL.

    The password travels in ``PGPASSWORD`` (environment), never in argv.

    Returns:
        (environment for the subprocess, conninfo naming only the database).
    """
    from psycopg.conninfo import make_conninfo

    url = make_url(url) if isinstance(url, str) else url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = dict(url.query)
    host = url.host or query.get("host")
    for key, value in (("PGHOST", host), ("PGPORT", url.port or query.get("port")),
                       ("PGUSER", url.username), ("PGPASSWORD", url.password),
                       ("PGSSLMODE", query.get("sslmode")),
                       ("PGAPPNAME", "fibernode-backup")):
        if value:
            env[key] = str(value)
    return env, make_conninfo(dbname=url.database or "")


def _run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    tool = shutil.which(args[0])
    if tool is None:
        raise BackupError(f"{args[0]} tidak ditemukan; pasang postgresql-client.")
    try:
        proc = subprocess.run([tool, *args[1:]], env=env, capture_output=True, text=True,  # noqa: S603
                              timeout=PG_TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} melewati batas waktu.") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BackupError(f"{what} gagal (kode {proc.returncode}): {' | '.join(detail)}")


def _dump_postgres(url: URL, target: Path) -> dict[str, Any]:
    """pg_dump into ``target`` from one exported snapshot; returns that snapshot's facts."""
    env, dbname = libpq_env(url)
    engine = get_engine() if _same_url(url) else create_engine_for(
        url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                facts = _facts(conn)
                facts["server_version"] = conn.execute(sa.text("SHOW server_version")).scalar()
                # The transaction stays open (and the snapshot valid) while pg_dump runs.
                _run_tool(["pg_dump", "--format=custom", "--no-password", f"--snapshot={snapshot}",
                           f"--file={target}", f"--dbname={dbname}"], env, "pg_dump")
    finally:
        if engine is not get_engine():
            engine.dispose()
    return facts


def _same_url(url: URL) -> bool:
    return url == make_url(get_settings().database_url)


# --- SQLite ---------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise ValidationFailed({"database_url": "Backup SQLite butuh database berupa berkas."})
    return Path(url.database).expanduser().resolve()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _integrity_check(path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        result = [row[0] for row in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()
    if result != ["ok"]:
        raise BackupError(f"Salinan SQLite rusak: {'; '.join(result[:5])}")


def _sqlite_facts(path: Path) -> dict[str, Any]:
    engine = create_engine_for(_sqlite_url(path))
    try:
        with engine.connect() as conn:
            facts = _facts(conn)
        facts["server_version"] = sqlite3.sqlite_version
        return facts
    finally:
        engine.dispose()


def _dump_sqlite(url: URL, target: Path) -> dict[str, Any]:
    """Online backup of the live file into ``target``, checked and counted there."""
    source = _sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"Berkas database SQLite tidak ada: {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()
    _integrity_check(target)
    return _sqlite_facts(target)


# --- files ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(path: Path) -> Path:
    """The manifest beside a backup file."""
    return path.with_name(path.name + ".json")


def read_manifest(path: Path) -> dict | None:
    """The manifest of a backup, ``None`` when missing or unreadable."""
    try:
        data = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _name_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=clock.JAKARTA)


def _created_at(path: Path, manifest: dict | None) -> datetime | None:
    if manifest and manifest.get("created_at"):
        try:
            created = datetime.fromisoformat(manifest["created_at"])
            if created.tzinfo:
                return created
        except (TypeError, ValueError):
            pass
    match = NAME_RE.match(path.name)
    return _name_time(match.group(1)) if match else None


def _scan(directory: Path) -> list[BackupInfo]:
    found = []
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        if not NAME_RE.match(path.name) or not path.is_file():
            continue
        manifest = read_manifest(path)
        created = _created_at(path, manifest)
        if created is None:
            continue
        found.append(BackupInfo(path=path, created_at=created, size=path.stat().st_size,
                                manifest=manifest))
    found.sort(key=lambda b: (b.created_at, b.name), reverse=True)
    return found


def _new_path(directory: Path, engine: str) -> Path:
    stamp = clock.local_now().strftime("%Y%m%d-%H%M%S")
    ext = EXTENSIONS[engine]
    path = directory / f"fibernode-{stamp}.{ext}"
    n = 1
    while path.exists() or path.with_name(path.name + ".partial").exists():
        path = directory / f"fibernode-{stamp}-{n}.{ext}"
        n += 1
    return path


def prune(directory: Path, retention_days: int, now: datetime | None = None) -> list[str]:
    """Delete backups (and their manifests) older than ``retention_days``.

    Age comes from the manifest's ``created_at`` (else the time in the file name),
    not from the file's mtime, which copies and restores change. The newest backup
    is always kept, however old.

    Returns:
        Names of the deleted backup files.
    """
    now = now or clock.now()
    cutoff = now - timedelta(days=retention_days)
    deleted = []
    for info in _scan(directory)[1:]:  # [0] is the newest
        if info.created_at < cutoff:
            info.path.unlink(missing_ok=True)
            manifest_path(info.path).unlink(missing_ok=True)
            deleted.append(info.name)
    return deleted


# --- use cases ------------------------------------------------------------------------


def _record(actor: Actor, status: str, file: str, error: str = "", **meta: Any) -> None:
    """Store the outcome in ``settings`` and audit it, in one transaction."""
    now = clock.now()
    values = {LAST_RUN_KEY: now.isoformat(), LAST_STATUS_KEY: status, LAST_ERROR_KEY: error}
    if file:
        values[LAST_FILE_KEY] = file
    with unit_of_work(actor) as uow:
        stored = {s.key: s for s in uow.session.exec(
            select(Setting).where(Setting.key.in_(values))).all()}
        for key, value in values.items():
            row = stored.get(key)
            if row is None:
                uow.session.add(Setting(key=key, value=value))
            else:
                row.value, row.updated_at = value, now
        uow.audit("maintenance.backup", None, None, status=status, file=file or None,
                  **({"error": error} if error else {}), **meta)


def _log(event: str, **fields: Any) -> None:
    log.info("%s %s", event, json.dumps(fields, default=str, sort_keys=True),
             extra={"event": event, **{f"fn_{k}": v for k, v in fields.items()}})


def run_backup(actor: Actor, *, backup_dir: Path | None = None,
               database_url: str | None = None) -> BackupResult:
    """Back up the database, write its manifest, and apply the retention.

    Args:
        actor: Superadmin or a system job.
        backup_dir: Where to write (default: ``BACKUP_DIR``).
        database_url: The database to back up (default: the app's).

    Returns:
        The new file, its facts and the old backups deleted.

    Raises:
        BackupError: The dump failed; the outcome is recorded as ``error`` first.
    """
    require_superadmin(actor)
    settings = get_settings()
    directory = Path(backup_dir or settings.backup_dir)
    url = make_url(normalize_database_url(database_url or settings.database_url))
    engine = url.get_backend_name()
    if engine not in EXTENSIONS:
        raise ValidationFailed({"database_url": f"Backup tidak mendukung database {engine}."})
    started = clock.now()
    path = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = _new_path(directory, engine)
        partial = path.with_name(path.name + ".partial")
        try:
            facts = (_dump_postgres if engine == "postgresql" else _dump_sqlite)(url, partial)
            sha = _sha256(partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        size = path.stat().st_size
        manifest = {
            "format": MANIFEST_FORMAT,
            "file": path.name,
            "created_at": started.isoformat(),
            "engine": engine,
            "server_version": facts["server_version"],
            "app_version": __version__,
            "alembic_version": facts["alembic_version"],
            "size": size,
            "sha256": sha,
            "tables": facts["tables"],
            "invoices": facts["invoices"],
        }
        storage.write_atomic(manifest_path(path), json.dumps(manifest, indent=2, sort_keys=True))
        deleted = prune(directory, settings.backup_retention_days)
    except Exception as exc:
        message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        _log("maintenance.backup", status="error", error=message,
             file=path.name if path else None)
        try:
            _record(actor, "error", "", message[:500])
        except Exception:  # noqa: BLE001 - the database itself may be what failed
            log.exception("cannot record the failed backup")
        if isinstance(exc, ServiceError):
            raise
        raise BackupError(f"Backup gagal: {message}") from exc
    seconds = round((clock.now() - started).total_seconds(), 3)
    _record(actor, "ok", path.name, size=size, engine=engine, seconds=seconds,
            invoices=facts["invoices"]["rows"], deleted=deleted)
    _log("maintenance.backup", status="ok", file=str(path), size=size, engine=engine,
         seconds=seconds, deleted=deleted, invoices=facts["invoices"]["rows"])
    return BackupResult(path=path, size=size, engine=engine, tables=facts["tables"],
                        invoices_checksum=facts["invoices"]["checksum"], deleted=deleted)


def list_backups(actor: Actor, *, backup_dir: Path | None = None) -> list[BackupInfo]:
    """The backups in ``backup_dir``, newest first."""
    require_superadmin(actor)
    return _scan(Path(backup_dir or get_settings().backup_dir))


def _resolve(path: str | Path) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_file() and not candidate.is_absolute():
        candidate = get_settings().backup_dir / candidate
    if not candidate.is_file():
        raise NotFound(f"Berkas backup tidak ditemukan: {path}")
    return candidate.resolve()


def _target_tables(url: str) -> list[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).get_table_names()
    except sa.exc.OperationalError as exc:
        raise BackupError(f"Database tujuan tidak bisa dibuka: {exc.orig or exc}") from exc
    finally:
        engine.dispose()


def _restore_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        shutil.copyfile(source, partial)
        _integrity_check(partial)
        # A WAL left by the old database would be replayed onto the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def restore_backup(actor: Actor, path: str | Path, target_url: str, *,
                   force: bool = False) -> RestoreReport:
    """Restore a backup into ``target_url`` and verify it against its manifest.

    Stop the web app, worker and beat first: the restore does not coordinate with
    running processes.

    Args:
        actor: Superadmin or a system job (the CLI).
        path: The backup file (absolute, or a name in ``backup_dir``).
        target_url: SQLAlchemy URL of the database to fill; PostgreSQL: an existing,
            empty database; SQLite: a file that does not exist yet or is empty.
        force: Restore into a non-empty database (PostgreSQL: ``pg_restore --clean``;
            SQLite: the file is replaced).

    Returns:
        The verified row counts and invoices checksum.

    Raises:
        NotFound: No such backup file.
        ValidationFailed: No manifest, or the backup does not fit the target's engine.
        Conflict: The target is not empty and ``force`` is not set.
        BackupError: The file is corrupt, the restore tool failed, or the restored
            data differ from the manifest.
    """
    require_superadmin(actor)
    target_url = normalize_database_url(target_url)
    source = _resolve(path)
    manifest = read_manifest(source)
    if manifest is None:
        raise ValidationFailed({"path": "Manifest backup (.json) tidak ada atau rusak; "
                                        "backup tidak bisa diverifikasi."})
    url = make_url(target_url)
    engine = url.get_backend_name()
    if manifest.get("engine") != engine:
        raise ValidationFailed({"database_url": f"Backup {manifest.get('engine')} tidak bisa "
                                                f"dipulihkan ke database {engine}."})
    if _sha256(source) != manifest.get("sha256"):
        raise BackupError("Berkas backup rusak: sha256 tidak cocok dengan manifest.")
    target_file = _sqlite_path(url) if engine == "sqlite" else None
    if target_file is None or target_file.exists():
        existing = _target_tables(target_url)
        if existing and not force:
            raise Conflict(f"Database tujuan tidak kosong ({len(existing)} tabel). "
                           "Pakai database kosong, atau --force untuk menimpanya.")
    started = clock.now()
    if engine == "postgresql":
        env, dbname = libpq_env(url)
        args = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                "--single-transaction", "--no-password", f"--dbname={dbname}"]
        if force:
            args += ["--clean", "--if-exists"]
        _run_tool([*args, str(source)], env, "pg_restore")
    else:
        _restore_sqlite(source, target_file)

    check = create_engine_for(target_url)
    try:
        with check.connect() as conn:
            facts = _facts(conn)
    finally:
        check.dispose()
    expected_tables = manifest.get("tables") or {}
    expected_sum = (manifest.get("invoices") or {}).get("checksum")
    problems = [f"{name}: {expected_tables.get(name)} ≠ {facts['tables'].get(name)}"
                for name in sorted(set(expected_tables) | set(facts["tables"]))
                if expected_tables.get(name) != facts["tables"].get(name)]
    if facts["invoices"]["checksum"] != expected_sum:
        problems.append("checksum tagihan berbeda")
    if problems:
        _log("maintenance.restore", status="mismatch", file=str(source), problems=problems)
        raise BackupError("Hasil restore tidak cocok dengan manifest: " + "; ".join(problems))
    _mark_restored(target_url, actor, source, manifest)
    seconds = round((clock.now() - started).total_seconds(), 3)
    _log("maintenance.restore", status="ok", file=str(source), engine=engine, seconds=seconds,
         invoices=facts["invoices"]["rows"], tables=len(facts["tables"]))
    return RestoreReport(path=source, engine=engine, backup_created_at=manifest["created_at"],
                         tables=facts["tables"], invoices_checksum=facts["invoices"]["checksum"])


def _mark_restored(target_url: str, actor: Actor, source: Path, manifest: dict) -> None:
    """Leave a ``maintenance.restore`` row in the restored database's audit trail.

    Written after the verification, so the restored data stay exactly the backup's
    plus this one row.
    """
    engine = create_engine_for(target_url)
    try:
        with Session(engine) as session:
            session.add(ActivityLog(
                action="maintenance.restore",
                meta={"file": source.name, "backup_created_at": manifest.get("created_at"),
                      "job": actor.name or "restore"}))
            session.commit()
    except sa.exc.SQLAlchemyError:
        log.warning("restore: cannot write the audit row", exc_info=True)
    finally:
        engine.dispose()
