#!/usr/bin/env bash
# Install everything FiberNode needs on a fresh machine: a Python venv with the
# project, bun (from npm: Reflex's own bun download is not reachable here), and
# with --test the test extras plus Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))'; then
      PY=$candidate; break
    fi
  done
fi
[[ -n "$PY" ]] || { echo "Python 3.11–3.13 tidak ditemukan." >&2; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  say "Membuat virtualenv (.venv) dengan $PY"
  "$PY" -m venv .venv
fi
extras=""; [[ $WITH_TEST == 1 ]] && extras="[test]"
stamp=".venv/.installed${extras}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  say "Memasang dependensi Python"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  touch "$stamp"
fi

if [[ ! -x .tools/node_modules/.bin/bun ]] || [[ "$(.tools/node_modules/.bin/bun --version 2>/dev/null)" != "$BUN_VERSION" ]]; then
  command -v npm >/dev/null || { echo "npm diperlukan untuk memasang bun (apt-get install npm)." >&2; exit 1; }
  say "Memasang bun $BUN_VERSION dari npm ke .tools/"
  npm install --prefix .tools --no-audit --no-fund --silent "bun@$BUN_VERSION"
fi

apt_install() {
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# neonize (the WhatsApp gateway) imports python-magic, which needs libmagic.
if ! ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1'; then
  say "Memasang libmagic untuk gateway WhatsApp"
  apt_install libmagic1
fi

# cairosvg (SVG logos rasterised for icons) loads the system's libcairo.
if ! ldconfig -p 2>/dev/null | grep -q 'libcairo\.so\.2'; then
  say "Memasang libcairo untuk logo SVG"
  apt_install libcairo2
fi

if [[ $WITH_TEST == 1 ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    say "Memasang Chromium (Debian) untuk tes browser"
    apt_install chromium
  fi
  if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; then
    say "Memasang PostgreSQL dan Redis untuk tes"
    apt_install postgresql redis-server
  fi
fi
