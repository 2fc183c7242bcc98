"""Fixed-window rate limits for public endpoints (the receipt page, later the API).

``hit("receipt", ip, 30, 60)`` counts one request of ``ip`` against "30 per 60 s".
With ``REDIS_URL`` configured the counters live in Redis, shared by every web
worker: one Lua script increments the counter and, on the window's first hit,
sets its expiry, atomically. Without Redis (the embedded single-process mode)
they live in this process, behind a lock. When Redis cannot be reached the
in-process counters take over, so an outage never locks visitors out.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from fibernode.config import get_settings
from fibernode.services.context import Actor
from fibernode.services.errors import RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "fibernode:ratelimit"
MAX_KEY_LENGTH = 200
# The in-process table is swept of finished windows when it grows past this size.
SWEEP_AT = 10_000

# KEYS[1] counter; ARGV[1] window in seconds. Returns {count, seconds left}.
_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead; if not, after how many seconds to retry."""

    allowed: bool
    retry_after: int  # 0 when allowed


class MemoryLimiter:
    """Thread-safe fixed windows in this process (embedded mode and Redis fallback)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)

    def hit(self, key: str, limit: int, window_s: int) -> RateDecision:
        """Count one request for ``key``."""
        now = self._clock()
        with self._lock:
            end, count = self._windows.get(key, (0.0, 0))
            if end <= now:
                if len(self._windows) >= SWEEP_AT:
                    self._sweep(now)
                end, count = now + window_s, 0
            count += 1
            self._windows[key] = (end, count)
        if count <= limit:
            return RateDecision(True, 0)
        return RateDecision(False, max(1, math.ceil(end - now)))

    def _sweep(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] > now}

    def reset(self) -> None:
        """Forget every counter (tests)."""
        with self._lock:
            self._windows.clear()


_memory = MemoryLimiter()
_scripts: dict[str, Any] = {}  # Redis URL -> registered Lua script (holds its client)
_scripts_lock = threading.Lock()


def _script(url: str):
    """The counting script bound to a client of ``url`` (one client per URL)."""
    script = _scripts.get(url)
    if script is None:
        import redis

        with _scripts_lock:
            script = _scripts.get(url)
            if script is None:
                client = redis.Redis.from_url(url, socket_timeout=0.5,
                                              socket_connect_timeout=0.5)
                script = _scripts[url] = client.register_script(_LUA)
    return script


def _key(bucket: str, key: str) -> str:
    return f"{KEY_PREFIX}:{bucket}:{key}"[:MAX_KEY_LENGTH]


def hit(bucket: str, key: str, limit: int, window_s: int) -> RateDecision:
    """Count one request of ``key`` (e.g. a client IP) in ``bucket`` and decide.

    Args:
        bucket: What is limited, e.g. ``"receipt"``.
        key: Who is counted, e.g. the client IP.
        limit: Requests allowed per window.
        window_s: Window length in seconds (the window starts at its first request).

    Returns:
        ``allowed`` and, when refused, ``retry_after`` seconds until the window ends.
    """
    if limit < 1 or window_s < 1:
        raise ValueError("limit and window_s must be at least 1")
    full_key = _key(bucket, key)
    url = get_settings().redis_url
    if url:
        try:
            count, ttl = _script(url)(keys=[full_key], args=[window_s])
        except Exception:  # Redis down or misconfigured: degrade, never lock people out
            log.warning("rate limit: Redis unavailable, using in-process counters",
                        exc_info=True)
        else:
            if int(count) <= limit:
                return RateDecision(True, 0)
            return RateDecision(False, max(1, int(ttl)))
    return _memory.hit(full_key, limit, window_s)


def reset_memory() -> None:
    """Forget the in-process counters (tests)."""
    _memory.reset()


# Requests per minute. The API's per-address limits live in fibernode.api.security;
# these are shared with the UI, which has no HTTP middleware in front of its events.
LOGIN_PER_MINUTE = 10  # per address: web login submits and POST /api/auth/login
USER_PER_MINUTE = 600  # per logged-in user, across every API route and app event


# Per user, for the heavy actions, through the UI and the API alike.
IMPORTS_PER_5_MIN = 10
BULK_SENDS_PER_5_MIN = 5


def count_user_request(actor: Actor) -> None:
    """Count one request of a logged-in user: an API call or an event of the app.

    Raises:
        RateLimited: the user sent more than ``USER_PER_MINUTE`` this minute.
    """
    if actor.user_id is None:
        return
    decision = hit_scaled("user", str(actor.user_id), USER_PER_MINUTE)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def require_quota(actor: Actor, bucket: str, limit: int, window_s: int) -> None:
    """Count one heavy action of a logged-in user (scaled by ``RATE_LIMIT_FACTOR``).

    System jobs and anonymous callers are not counted here (the address limits
    cover the latter).

    Raises:
        RateLimited: the user did this ``limit`` times within the window already.
    """
    if actor.user_id is None:
        return
    scaled = max(1, round(limit * get_settings().rate_limit_factor))
    decision = hit(f"user-{bucket}", str(actor.user_id), scaled, window_s)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def hit_scaled(bucket: str, key: str, per_minute: int) -> RateDecision:
    """:func:`hit` with a one-minute window and the limit scaled by ``RATE_LIMIT_FACTOR``."""
    limit = max(1, round(per_minute * get_settings().rate_limit_factor))
    return hit(bucket, key, limit, 60)
