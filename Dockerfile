# FiberNode Internet — production image.
#
#   build     Python venv in /opt/venv with the app installed (pip install .)
#   frontend  static Reflex frontend, exported once at build time
#   runtime   slim image: venv + app + built .web, non-root, tini as PID 1
#
# One port (8000) serves the static frontend, the Reflex event websocket and
# /api/health: see `web` in scripts/docker-entrypoint.sh.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Reflex 0.10 needs Node.js >= 22.22; Debian bookworm only ships Node 18.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Compilers only for dependencies that ship no wheel; this stage is discarded.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first: with only pyproject.toml present, `pip install .` installs
# every dependency and an empty package, so this layer is reused until
# pyproject.toml or README.md changes.
COPY pyproject.toml README.md ./
RUN pip install . && rm -rf build ./*.egg-info

COPY fibernode/ fibernode/
COPY workers/ workers/
COPY alembic/ alembic/
COPY alembic.ini rxconfig.py ./
COPY assets/ assets/
COPY scripts/ scripts/
# Bytecode compiled now: at run time the code is read-only to the app user.
RUN pip install --no-deps --force-reinstall . \
    && rm -rf build ./*.egg-info \
    && python -m compileall -q fibernode workers alembic rxconfig.py \
    && chmod 0755 scripts/*.sh

# --------------------------------------------------------------------------
FROM build AS frontend

ARG BUN_VERSION=1.4.4

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
# Reflex's own bun download is not used (REFLEX_USE_SYSTEM_BUN=1): bun comes
# from the npm registry like every other frontend package.
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && npm install -g "bun@${BUN_VERSION}" \
    && npm cache clean --force \
    && node --version \
    && bun --version

# Reflex's committed frontend lockfile pins the npm packages bun installs.
COPY reflex.lock/ reflex.lock/

# Importing the app reads fibernode.config; development mode only relaxes the
# secret checks for this build step and never reaches the runtime image.
# BACKEND_PORT/FRONTEND_PORT 8000: the exported frontend points its websocket at
# the same host on port 8000 (or at the same https origin behind a proxy).
RUN mkdir -p /tmp/fibernode-build \
    && APP_ENV=development \
       FIBERNODE_DATA_DIR=/tmp/fibernode-build \
       FRONTEND_PORT=8000 \
       BACKEND_PORT=8000 \
       REFLEX_USE_SYSTEM_BUN=1 \
       REFLEX_TELEMETRY_ENABLED=false \
       reflex export --frontend-only --no-zip --env prod \
    && test -f .web/build/client/index.html \
    && rm -rf .web/node_modules /tmp/fibernode-build

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Must match the postgres image in docker-compose.yml: pg_dump refuses to dump
# a server newer than itself, and bookworm's own postgresql-client is 15.
ARG PG_MAJOR=16

# PYTHONPATH=/app: every process (celery included) imports the package from
# /app, where fibernode.config finds alembic.ini and alembic/ beside it.
# REFLEX_BACKEND_ONLY: the frontend is prebuilt, so no process compiles pages
# or links assets at run time.
ENV TZ=Asia/Jakarta \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    REFLEX_USE_SYSTEM_BUN=1 \
    REFLEX_BACKEND_ONLY=true \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false \
    REFLEX_UPLOADED_FILES_DIR=/app/uploads \
    UPLOADS_DIR=/app/uploads \
    FIBERNODE_DATA_DIR=/app/data \
    FRONTEND_PORT=8000 \
    BACKEND_PORT=8000 \
    BACKUP_DIR=/backups

# postgresql-client-$PG_MAJOR comes from the PostgreSQL project's apt repository;
# postgresql-common ships its signing key and the script that adds it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       ca-certificates curl libcairo2 libmagic1 postgresql-common tini tzdata \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/* \
    && pg_dump --version

RUN groupadd --system --gid 10001 fibernode \
    && useradd --system --uid 10001 --gid fibernode --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin fibernode

WORKDIR /app

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --from=frontend /app/.web /app/.web

# Code stays root-owned; the user writes only to the volumes, Reflex's .web and
# .states, and /tmp. A new named volume inherits these owners on first mount.
RUN mkdir -p /app/uploads /app/wa-sessions /app/data /app/.states /backups \
    && chown -R fibernode:fibernode \
       /app/uploads /app/wa-sessions /app/data /app/.states /app/.web /backups

# Numeric, so the host and orchestrators can tell it is not root.
USER 10001:10001

VOLUME ["/app/uploads", "/app/wa-sessions", "/app/data", "/backups"]

EXPOSE 8000

# Probes the web server; docker-compose.yml gives worker/beat/wa-gateway their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/api/health"]

ENTRYPOINT ["/usr/bin/tini", "--", "/app/scripts/docker-entrypoint.sh"]
CMD ["web"]
