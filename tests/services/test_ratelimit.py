"""Rate limits: in-process fixed windows and the shared Redis counters."""

from __future__ import annotations

import threading

import pytest
import redis

from fibernode.config import reset_settings
from fibernode.services import ratelimit
from fibernode.services.ratelimit import MemoryLimiter, RateDecision
from tests.conftest import REDIS_URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hammer(limit: int, calls: int, threads: int = 8) -> list[RateDecision]:
    barrier = threading.Barrier(threads)
    out: list[RateDecision] = []
    lock = threading.Lock()

    def run():
        barrier.wait()
        for _ in range(calls // threads):
            decision = ratelimit.hit("receipt", "10.0.0.1", limit, 60)
            with lock:
                out.append(decision)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=30)
    return out


# --- in-process ----------------------------------------------------------------------------


@pytest.fixture
def memory(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_settings()
    ratelimit.reset_memory()
    yield
    ratelimit.reset_memory()
    reset_settings()


def test_memory_window_allows_the_limit_then_refuses(memory):
    decisions = [ratelimit.hit("receipt", "10.0.0.1", 3, 60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[0].retry_after == 0
    assert 1 <= decisions[3].retry_after <= 60
    # Other keys and other buckets have their own counters.
    assert ratelimit.hit("receipt", "10.0.0.2", 3, 60).allowed
    assert ratelimit.hit("receipt-pdf", "10.0.0.1", 3, 60).allowed


def test_memory_window_resets_when_it_ends():
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    assert [limiter.hit("k", 2, 60).allowed for _ in range(3)] == [True, True, False]
    clock.now += 45
    refused = limiter.hit("k", 2, 60)
    assert (refused.allowed, refused.retry_after) == (False, 15)
    clock.now += 15
    assert limiter.hit("k", 2, 60).allowed


def test_memory_table_is_swept(monkeypatch):
    monkeypatch.setattr(ratelimit, "SWEEP_AT", 10)
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    for i in range(10):
        limiter.hit(f"ip{i}", 5, 10)
    clock.now += 11
    limiter.hit("ip0", 5, 10)  # a new window for ip0, with a full table: sweep
    assert len(limiter._windows) == 1


def test_memory_counts_exactly_under_threads(memory):
    decisions = hammer(limit=50, calls=400)
    assert sum(d.allowed for d in decisions) == 50


def test_bad_arguments(memory):
    with pytest.raises(ValueError):
        ratelimit.hit("receipt", "x", 0, 60)
    with pytest.raises(ValueError):
        ratelimit.hit("receipt", "x", 5, 0)


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def on_redis(monkeypatch):
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # the test database (15) only
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    reset_settings()
    ratelimit.reset_memory()
    yield client
    client.flushdb()
    reset_settings()


def test_redis_window_allows_the_limit_then_refuses(on_redis):
    decisions = [ratelimit.hit("receipt", "10.0.0.1", 3, 60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert 1 <= decisions[-1].retry_after <= 60
    key = "fibernode:ratelimit:receipt:10.0.0.1"
    assert int(on_redis.get(key)) == 5
    assert 0 < on_redis.ttl(key) <= 60
    # Counted in Redis, not in this process.
    assert ratelimit._memory._windows == {}
    assert ratelimit.hit("receipt", "10.0.0.2", 3, 60).allowed


def test_redis_window_ends_with_its_key(on_redis):
    for _ in range(3):
        ratelimit.hit("receipt", "10.0.0.1", 2, 60)
    on_redis.delete("fibernode:ratelimit:receipt:10.0.0.1")  # what expiry does
    assert ratelimit.hit("receipt", "10.0.0.1", 2, 60).allowed


def test_redis_counter_without_expiry_gets_one(on_redis):
    key = "fibernode:ratelimit:receipt:10.0.0.1"
    on_redis.set(key, 7)  # e.g. left by a crashed client between INCR and EXPIRE
    decision = ratelimit.hit("receipt", "10.0.0.1", 3, 60)
    assert not decision.allowed and decision.retry_after == 60
    assert 0 < on_redis.ttl(key) <= 60


def test_redis_counts_exactly_under_threads(on_redis):
    decisions = hammer(limit=50, calls=400)
    assert sum(d.allowed for d in decisions) == 50


def test_unreachable_redis_falls_back_to_memory(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/15")
    reset_settings()
    ratelimit.reset_memory()
    try:
        decisions = [ratelimit.hit("receipt", "10.0.0.1", 2, 60) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
    finally:
        ratelimit.reset_memory()
        reset_settings()


def test_quota_counts_per_user_in_redis_and_skips_jobs(on_redis, monkeypatch):
    import uuid

    from fibernode.models import UserRole
    from fibernode.services.context import Actor
    from fibernode.services.errors import RateLimited

    monkeypatch.setenv("RATE_LIMIT_FACTOR", "1")
    reset_settings()
    alice = Actor(user_id=uuid.uuid4(), role=UserRole.MITRA)
    bob = Actor(user_id=uuid.uuid4(), role=UserRole.MITRA)
    for _ in range(3):
        ratelimit.require_quota(alice, "bulk-send", 3, 300)
    with pytest.raises(RateLimited) as refused:
        ratelimit.require_quota(alice, "bulk-send", 3, 300)
    assert 290 <= refused.value.retry_after <= 300
    ratelimit.require_quota(bob, "bulk-send", 3, 300)
    for _ in range(10):  # jobs and anonymous callers are limited elsewhere
        ratelimit.require_quota(Actor.system("beat"), "bulk-send", 3, 300)
    assert on_redis.get(f"fibernode:ratelimit:user-bulk-send:{alice.user_id}") == b"4"
