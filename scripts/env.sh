# Sourced by the other scripts: tool paths and Reflex settings for this checkout.
FIBERNODE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$FIBERNODE_ROOT/.venv/bin:$FIBERNODE_ROOT/.tools/node_modules/.bin:$PATH"
export REFLEX_USE_SYSTEM_BUN=1
export REFLEX_TELEMETRY_ENABLED=false
