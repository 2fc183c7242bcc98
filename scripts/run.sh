#!/usr/bin/env bash
# Set up and run FiberNode on embedded defaults: SQLite, Celery on a SQLite
# broker with a real worker and beat, WhatsApp in outbox mode, demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

export WA_MODE=${WA_MODE:-outbox}
PORT=${FRONTEND_PORT:-3000}
mkdir -p data/logs

python -m fibernode.cli check-config
python -m fibernode.cli migrate
python -m fibernode.cli seed

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

celery -A workers.celery_app worker --loglevel=INFO --concurrency=1 >data/logs/worker.log 2>&1 &
pids+=($!)
celery -A workers.celery_app beat --loglevel=INFO --schedule data/celerybeat-schedule >data/logs/beat.log 2>&1 &
pids+=($!)
# neonize mode: the WhatsApp connections live in their own long-running process.
if [[ "$WA_MODE" == "neonize" ]]; then
  python -m fibernode.cli wa-gateway >data/logs/wa-gateway.log 2>&1 &
  pids+=($!)
fi
reflex run --env prod --frontend-port "$PORT" --backend-port "$PORT" &
web_pid=$!
pids+=("$web_pid")

for _ in $(seq 1 240); do
  curl -fsS "http://127.0.0.1:$PORT/api/health" >/dev/null 2>&1 && break
  kill -0 "$web_pid" 2>/dev/null || { echo "Reflex berhenti; lihat pesan di atas." >&2; exit 1; }
  sleep 1
done
cat <<MSG

  FiberNode Internet berjalan di  http://localhost:$PORT
  Login demo:
    superadmin / ${ADMIN_PASSWORD:-Admin123!}   (Superadmin, FiberNode Pusat)
    mitra1     / Mitra123!   (WiFi Sukamaju)
    mitra2     / Mitra123!   (Net Mekarjaya)
  Log worker, beat & wa-gateway: data/logs/   ·   Hentikan dengan Ctrl+C

MSG
wait "$web_pid"
