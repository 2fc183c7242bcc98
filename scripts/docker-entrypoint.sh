#!/usr/bin/env bash
# FiberNode Internet — container entrypoint.
#
#   web      check config, migrate, seed, then serve frontend + backend on one port
#   worker   Celery worker
#   beat     Celery beat (periodic jobs)
#   migrate  run database migrations only
#   backup   pg_dump the database once per BACKUP_INTERVAL_SECONDS, forever
#
# Anything else is executed as given (e.g. `bash`, `python -m fibernode.cli ...`).
set -Eeuo pipefail

APP_DIR="${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$APP_DIR"

log() {
    printf '%s [%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S %z')" "${ROLE:-entrypoint}" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

require_uint() {
    local name="$1" value="$2"
    [[ "$value" =~ ^[0-9]+$ ]] || die "$name harus berupa angka bulat, bukan '$value'"
}

# Serve the frontend exported at image build time (.web/build/client) and the
# backend from one server. This is the code path `reflex run --env prod
# --single-port` ends in (reflex.utils.exec.run_backend_prod with
# mount_frontend_compiled_app=True), minus the frontend rebuild that command
# does on every start, which would need Node, bun and the npm registry at run
# time.
WEB_LAUNCHER='
import os

from reflex.utils import exec as rx_exec
from reflex_base import constants
from reflex_base.config import get_config
from reflex_base.environment import environment

host = os.environ.get("BACKEND_HOST", "0.0.0.0")
port = int(os.environ.get("BACKEND_PORT", "8000"))

environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
environment.REFLEX_BACKEND_ONLY.set(True)
environment.REFLEX_SKIP_COMPILE.set(True)
config = get_config()
config._set_persistent(frontend_port=port, backend_port=port)
rx_exec.run_backend_prod(
    host, port, config.loglevel.subprocess_level(), mount_frontend_compiled_app=True
)
'

cmd_migrate() {
    log "Menjalankan migrasi database"
    python -m fibernode.cli migrate
}

cmd_web() {
    [[ -f .web/build/client/index.html ]] \
        || die "frontend belum dibangun (.web/build/client/index.html tidak ada)"
    log "Memeriksa konfigurasi"
    python -m fibernode.cli check-config
    cmd_migrate
    log "Mengisi data awal (idempoten)"
    python -m fibernode.cli seed
    log "Menjalankan web di ${BACKEND_HOST:-0.0.0.0}:${BACKEND_PORT:-8000}"
    exec python -c "$WEB_LAUNCHER"
}

cmd_worker() {
    local concurrency="${CELERY_CONCURRENCY:-2}"
    require_uint CELERY_CONCURRENCY "$concurrency"
    exec celery -A workers.celery_app worker --loglevel=INFO --concurrency="$concurrency"
}

cmd_beat() {
    local data_dir="${FIBERNODE_DATA_DIR:-/app/data}"
    mkdir -p "$data_dir"
    exec celery -A workers.celery_app beat --loglevel=INFO \
        --schedule "$data_dir/celerybeat-schedule"
}

# SQLAlchemy URL -> libpq URL: postgresql+psycopg://... -> postgresql://...
libpq_url() {
    local url="$1"
    if [[ "$url" =~ ^postgres(ql)?(\+[A-Za-z0-9_]+)?:// ]]; then
        printf 'postgresql://%s' "${url#*://}"
    else
        return 1
    fi
}

backup_once() {
    local dir="$1" url="$2" retention_days="$3"
    local file tmp size
    file="$dir/fibernode-$(date '+%Y%m%d-%H%M%S').dump"
    tmp="$file.partial"

    log "Backup dimulai: $file"
    if ! pg_dump --format=custom --file="$tmp" --dbname="$url"; then
        rm -f "$tmp"
        log "Backup GAGAL: pg_dump keluar dengan error"
        return 1
    fi
    mv "$tmp" "$file"
    size="$(du -h "$file" | cut -f1)"
    log "Backup selesai: $file ($size)"

    local old deleted=0
    while IFS= read -r -d '' old; do
        rm -f "$old"
        log "Backup lama dihapus: $old"
        deleted=$((deleted + 1))
    done < <(find "$dir" -maxdepth 1 -type f -name 'fibernode-*.dump' \
        -mmin "+$((retention_days * 24 * 60))" -print0)
    log "Retensi ${retention_days} hari: $deleted file lama dihapus"
}

cmd_backup() {
    local dir="${BACKUP_DIR:-/backups}"
    local interval="${BACKUP_INTERVAL_SECONDS:-86400}"
    local retention_days="${BACKUP_RETENTION_DAYS:-30}"
    local url
    require_uint BACKUP_INTERVAL_SECONDS "$interval"
    require_uint BACKUP_RETENTION_DAYS "$retention_days"
    (( interval > 0 )) || die "BACKUP_INTERVAL_SECONDS harus lebih dari 0"
    [[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL wajib diisi"
    url="$(libpq_url "$DATABASE_URL")" \
        || die "DATABASE_URL bukan URL PostgreSQL; backup hanya untuk PostgreSQL"
    command -v pg_dump >/dev/null || die "pg_dump tidak ditemukan"
    mkdir -p "$dir"

    local sleep_pid=""
    trap 'log "Berhenti"; [[ -n "$sleep_pid" ]] && kill "$sleep_pid" 2>/dev/null; exit 0' TERM INT
    log "Backup tiap ${interval} detik ke $dir, retensi ${retention_days} hari"
    while true; do
        backup_once "$dir" "$url" "$retention_days" || true
        log "Backup berikutnya dalam ${interval} detik"
        # Background sleep + wait, so SIGTERM is handled without waiting it out.
        sleep "$interval" &
        sleep_pid=$!
        wait "$sleep_pid"
    done
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

ROLE="${1:-web}"
[[ $# -gt 0 ]] && shift

case "$ROLE" in
    web) cmd_web ;;
    worker) cmd_worker ;;
    beat) cmd_beat ;;
    migrate) cmd_migrate ;;
    backup) cmd_backup ;;
    help | -h | --help) usage ;;
    *) exec "$ROLE" "$@" ;;
esac
