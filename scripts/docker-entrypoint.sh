#!/usr/bin/env bash
# FiberNode Internet — container entrypoint.
#
#   web      check config, migrate, seed, then serve frontend + backend on one port
#   worker   Celery worker
#   beat     Celery beat (periodic jobs)
#   migrate  run database migrations only
#   backup   back the database up once now (beat schedules the daily backup)
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

# One backup now (the same job Celery beat runs daily at 02:00 Asia/Jakarta):
# pg_dump into BACKUP_DIR with a manifest, then the retention.
cmd_backup() {
    log "Backup sekali ke ${BACKUP_DIR:-/backups}"
    exec python -m fibernode.cli backup
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
