"""The pacing policy of one WhatsApp session, property-tested with an injected clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fibernode.clock import JAKARTA
from fibernode.services import wa_throttle as wt
from fibernode.services.wa_throttle import PacingState, RateConfig, Throttle

# 2026-02-04 07:00 Jakarta.
MORNING = datetime(2026, 2, 4, 0, 0, tzinfo=UTC)
EPS = timedelta(microseconds=1)


def jkt(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2026, 2, day, hour, minute, tzinfo=JAKARTA)


@st.composite
def configs(draw, *, caps: bool = True, quiet: bool = True) -> RateConfig:
    low = draw(st.integers(1, 60))
    high = draw(st.integers(low, low + 60))
    quiet_start, quiet_end = "", ""
    if quiet and draw(st.booleans()):
        quiet_start = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30])):02d}"
        quiet_end = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15])):02d}"
    return RateConfig(
        min_delay_s=low, max_delay_s=high, jitter_s=draw(st.integers(0, 30)),
        max_per_hour=draw(st.integers(1, 40)) if caps else 10**6,
        max_per_day=draw(st.integers(1, 120)) if caps else 10**6,
        batch_size=draw(st.integers(1, 25)), batch_cooldown_s=draw(st.integers(0, 900)),
        quiet_start=quiet_start, quiet_end=quiet_end)


def simulate(config: RateConfig, seed: int, sends: int, idle: list[int] | None = None,
             start: datetime = MORNING) -> list[datetime]:
    """Send as soon as allowed (plus an optional idle time per send, a late worker)."""
    rng = random.Random(seed)
    throttle = Throttle(config, clock=lambda: start)
    state, now, times = PacingState(), start, []
    for i in range(sends):
        if idle:
            now += timedelta(seconds=idle[i % len(idle)])
        at = throttle.next_allowed(state, now)
        assert at is not None and at >= now
        assert throttle.may_send(state, at)
        times.append(at)
        state = throttle.after_send(state, at, rng)
        now = at
    return times


@settings(max_examples=150, deadline=None)
@given(configs(), st.integers(0, 2**32), st.integers(1, 250),
       st.lists(st.integers(0, 4000), max_size=5))
def test_spacing_caps_and_quiet_hours_hold_over_a_run(config, seed, sends, idle):
    times = simulate(config, seed, sends, idle)
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # Spacing: never below the minimum, whatever else is going on.
    assert all(g >= config.min_delay_s - 1e-6 for g in gaps)
    # Quiet hours: never a send inside them.
    assert not any(wt.in_quiet_hours(t, config) for t in times)
    # Daily cap per Jakarta date.
    per_day: dict = {}
    for t in times:
        per_day[wt.jakarta_date(t)] = per_day.get(wt.jakarta_date(t), 0) + 1
    assert max(per_day.values()) <= config.max_per_day
    # Hourly cap: each window starts at its first send and lasts an hour.
    window_start, in_window = None, 0
    for t in times:
        if window_start is None or t >= window_start + timedelta(hours=1):
            window_start, in_window = t, 0
        in_window += 1
        assert in_window <= config.max_per_hour
    # … so any sliding hour holds at most two windows' worth.
    for i, t in enumerate(times):
        later = [u for u in times[i:] if u < t + timedelta(hours=1)]
        assert len(later) <= 2 * config.max_per_hour
    # Batch cooldown: any batch_size + 1 consecutive sends span the cooldown too.
    n = config.batch_size
    for a, b in zip(times, times[n:], strict=False):
        span = (b - a).total_seconds()
        assert span >= n * config.min_delay_s + config.batch_cooldown_s - 1e-6


@settings(max_examples=150, deadline=None)
@given(configs(caps=False, quiet=False), st.integers(0, 2**32), st.integers(2, 120))
def test_without_caps_spacing_is_delay_plus_jitter_and_every_batch_rests(config, seed, sends):
    times = simulate(config, seed, sends)
    upper = config.max_delay_s + config.jitter_s
    for i, (a, b) in enumerate(zip(times, times[1:], strict=False), start=1):
        gap = (b - a).total_seconds()
        rest = config.batch_cooldown_s if i % config.batch_size == 0 else 0
        assert config.min_delay_s + rest - 1e-6 <= gap <= upper + rest + 1e-6


@settings(max_examples=300, deadline=None)
@given(configs(), st.integers(0, 2**32))
def test_delay_draw_stays_within_min_and_max_plus_jitter(config, seed):
    rng = random.Random(seed)
    for _ in range(50):
        d = wt.draw_delay(config, rng)
        assert config.min_delay_s <= d <= config.max_delay_s + config.jitter_s


def test_jitter_really_varies_and_covers_its_range():
    config = RateConfig(min_delay_s=8, max_delay_s=8, jitter_s=5)
    rng = random.Random(7)
    draws = [wt.draw_delay(config, rng) for _ in range(2000)]
    assert min(draws) >= 8 and max(draws) <= 13
    assert min(draws) < 8.1 and max(draws) > 12.9  # the whole 0-5 s jitter is used


@settings(max_examples=100, deadline=None)
@given(configs(), st.integers(0, 2**32), st.integers(0, 300))
def test_stagger_is_spaced_like_the_spec(config, seed, count):
    start = MORNING
    times = wt.stagger(start, count, config, random.Random(seed))
    assert len(times) == count
    previous = start
    for i, t in enumerate(times):
        gap = (t - previous).total_seconds()
        rest = config.batch_cooldown_s if i and i % config.batch_size == 0 else 0
        assert config.min_delay_s + rest - 1e-6 <= gap
        assert gap <= config.max_delay_s + config.jitter_s + rest + 1e-6
        previous = t


def test_stagger_spec_example_500_messages_take_about_six_hours():
    times = wt.stagger(jkt(6), 500, RateConfig(), random.Random(1))
    # 20 per batch then 5 minutes: 24 cooldowns plus ~15.5 s average spacing.
    hours = (times[-1] - jkt(6)).total_seconds() / 3600
    assert 3.5 < hours < 5
    assert times[19] - times[18] < timedelta(seconds=21)
    assert times[20] - times[19] >= timedelta(seconds=308)


@given(st.builds(PacingState, next_send_at=st.none() | st.just(MORNING),
                 batch_count=st.integers(0, 30), hour_count=st.integers(0, 100),
                 day_count=st.integers(0, 500), paused=st.just(True)),
       configs())
def test_a_paused_session_never_sends(state, config):
    assert wt.next_allowed(state, MORNING, config) is None
    assert not wt.may_send(state, MORNING + timedelta(days=3), config)


@settings(max_examples=200, deadline=None)
@given(configs(), st.integers(0, 2**32), st.integers(0, 20), st.integers(0, 86_400 * 2))
def test_next_allowed_is_a_fixed_point_not_before_now(config, seed, sends, offset):
    times = simulate(config, seed, sends)
    state = PacingState()
    rng = random.Random(seed)
    for t in times:
        state = wt.after_send(state, t, config, rng)
    now = MORNING + timedelta(seconds=offset)
    at = wt.next_allowed(state, now, config)
    assert at >= now
    assert state.next_send_at is None or at >= state.next_send_at
    assert wt.next_allowed(state, at, config) == at


def test_quiet_hours_wrap_midnight():
    config = RateConfig(quiet_start="21:00", quiet_end="06:00")
    assert not wt.in_quiet_hours(jkt(20, 59), config)
    assert wt.in_quiet_hours(jkt(21, 0), config)
    assert wt.in_quiet_hours(jkt(0, 30), config)
    assert wt.in_quiet_hours(jkt(5, 59), config)
    assert not wt.in_quiet_hours(jkt(6, 0), config)
    # A send due at 23:00 waits for 06:00 the next morning, 05:00 for 06:00 that day.
    assert wt.next_allowed(PacingState(), jkt(23), config) == jkt(6, day=5)
    assert wt.next_allowed(PacingState(), jkt(5), config) == jkt(6)
    assert wt.next_allowed(PacingState(), jkt(12), config) == jkt(12)


def test_quiet_hours_within_one_day_and_none():
    config = RateConfig(quiet_start="12:00", quiet_end="13:00")
    assert wt.next_allowed(PacingState(), jkt(12, 30), config) == jkt(13)
    assert wt.next_allowed(PacingState(), jkt(13, 30), config) == jkt(13, 30)
    off = RateConfig(quiet_start="", quiet_end="")
    assert wt.next_allowed(PacingState(), jkt(2), off) == jkt(2)


def test_hourly_cap_waits_for_the_window_and_daily_cap_for_midnight():
    config = RateConfig(max_per_hour=2, max_per_day=3, quiet_start="", quiet_end="")
    full_hour = PacingState(hour_started_at=jkt(9), hour_count=2, day_date=jkt(9).date(),
                            day_count=2)
    assert wt.next_allowed(full_hour, jkt(9, 30), config) == jkt(10)
    full_day = PacingState(hour_started_at=jkt(9), hour_count=1, day_date=jkt(9).date(),
                           day_count=3)
    assert wt.next_allowed(full_day, jkt(9, 30), config) == jkt(0, day=5)
    # With quiet hours the next day starts at their end.
    quiet = RateConfig(max_per_day=3)
    assert wt.next_allowed(full_day, jkt(9, 30), quiet) == jkt(6, day=5)


def test_after_send_counts_and_resets_windows():
    config = RateConfig(batch_size=3, batch_cooldown_s=300, min_delay_s=10, max_delay_s=10,
                        jitter_s=0)
    rng = random.Random(0)
    state = PacingState()
    state = wt.after_send(state, jkt(9), config, rng)
    assert (state.hour_count, state.day_count, state.batch_count) == (1, 1, 1)
    assert state.next_send_at == jkt(9) + timedelta(seconds=10)
    state = wt.after_send(state, jkt(9, 1), config, rng)
    state = wt.after_send(state, jkt(9, 2), config, rng)
    # Third of a batch of three: the next send also waits the cooldown.
    assert state.batch_count == 0
    assert state.next_send_at == jkt(9, 2) + timedelta(seconds=310)
    # A new hour window and a new Jakarta day start over.
    later = wt.after_send(state, jkt(10, 30), config, rng)
    assert (later.hour_started_at, later.hour_count) == (jkt(10, 30), 1)
    tomorrow = wt.after_send(later, jkt(7, day=5), config, rng)
    assert (tomorrow.day_date, tomorrow.day_count) == (jkt(7, day=5).date(), 1)


def test_an_idle_session_starts_a_fresh_batch():
    config = RateConfig(batch_size=3, batch_cooldown_s=300, min_delay_s=10, max_delay_s=10,
                        jitter_s=0)
    rng = random.Random(0)
    state = wt.after_send(PacingState(), jkt(9), config, rng)
    state = wt.after_send(state, jkt(9, 1), config, rng)
    assert state.batch_count == 2
    rested = wt.after_send(state, jkt(11), config, rng)
    assert rested.batch_count == 1  # two hours idle count as the rest


def test_parse_hhmm():
    assert wt.parse_hhmm("6:05").hour == 6
    assert wt.parse_hhmm("") is None
    for bad in ("25:00", "12:60", "1200", "ab:cd", "12:5"):
        try:
            wt.parse_hhmm(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
