"""The anti-ban pacing policy of one WhatsApp session, as a pure object (no database).

WhatsApp bans a *number* that sends too fast or too much (spec "Strategi Anti-Banned
WhatsApp"), so each owner's session keeps a small pacing state and every send goes
through two questions answered here:

* :func:`next_allowed` — given the state and the current time, when may this session
  send next? (random spacing, batch cooldown, hourly and daily caps, quiet hours, pause)
* :func:`after_send` — the state after a send at ``now`` (draws the next spacing).

:func:`stagger` spreads a batch of newly queued messages over time the way the spec's
``scheduleReminders`` does. Time is always passed in (``now``) and randomness comes
from an injected :class:`random.Random`, so the rules can be property-tested.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from fibernode.clock import JAKARTA

HOUR = timedelta(hours=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RateConfig:
    """Per-session sending limits; defaults are the spec's ``WA_RATE_CONFIG``.

    Attributes:
        min_delay_s: Least spacing between two sends of one session (seconds).
        max_delay_s: Largest random spacing before jitter (seconds).
        jitter_s: Extra random 0..jitter seconds added to every spacing.
        max_per_hour: Sends per session within one hour window.
        max_per_day: Sends per session per Jakarta calendar day.
        batch_size: After this many sends the session rests ``batch_cooldown_s``.
        batch_cooldown_s: Length of that rest (seconds).
        retry_delay_s: Wait before retrying a failed message (seconds).
        max_retries: Attempts before a message is marked failed.
        quiet_start: Start of the nightly pause, ``HH:MM`` Jakarta ("" = none).
        quiet_end: End of the nightly pause, ``HH:MM`` Jakarta; may be after midnight.
    """

    min_delay_s: float = 8
    max_delay_s: float = 15
    jitter_s: float = 5
    max_per_hour: int = 50
    max_per_day: int = 300
    batch_size: int = 20
    batch_cooldown_s: float = 300
    retry_delay_s: float = 600
    max_retries: int = 3
    quiet_start: str = "21:00"
    quiet_end: str = "06:00"


@dataclass(frozen=True)
class PacingState:
    """What a session remembers about its recent sends (columns of ``wa_sessions``).

    Attributes:
        next_send_at: Earliest time of the next send (``None``: at once).
        batch_count: Sends since the last batch cooldown.
        hour_started_at: Start of the current hour window (its first send).
        hour_count: Sends in that window.
        day_date: Jakarta date ``day_count`` belongs to.
        day_count: Sends on that date.
        paused: The queue is paused (restricted account): never send.
    """

    next_send_at: datetime | None = None
    batch_count: int = 0
    hour_started_at: datetime | None = None
    hour_count: int = 0
    day_date: date | None = None
    day_count: int = 0
    paused: bool = False


def parse_hhmm(text: str) -> time | None:
    """``"21:00"`` → 21:00; empty → ``None``.

    Raises:
        ValueError: text that is not ``HH:MM`` with a valid hour and minute.
    """
    text = (text or "").strip()
    if not text:
        return None
    hours, sep, minutes = text.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2 \
            or len(hours) not in (1, 2):
        raise ValueError(text)
    return time(int(hours), int(minutes))


def quiet_window(config: RateConfig) -> tuple[time, time] | None:
    """The quiet hours as (start, end) local times, or ``None`` when there are none."""
    start, end = parse_hhmm(config.quiet_start), parse_hhmm(config.quiet_end)
    if start is None or end is None or start == end:
        return None
    return start, end


def in_quiet_hours(at: datetime, config: RateConfig) -> bool:
    """Whether ``at`` falls in the quiet hours (start inclusive, end exclusive)."""
    window = quiet_window(config)
    if window is None:
        return False
    start, end = window
    local = at.astimezone(JAKARTA).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight (21:00–06:00)


def quiet_end_after(at: datetime, config: RateConfig) -> datetime:
    """The first moment at or after ``at`` outside the quiet hours."""
    if not in_quiet_hours(at, config):
        return at
    _, end = quiet_window(config)  # type: ignore[misc]  # in quiet hours → a window
    local = at.astimezone(JAKARTA)
    candidate = datetime.combine(local.date(), end, JAKARTA)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(at.tzinfo)


def jakarta_date(at: datetime) -> date:
    """The Jakarta calendar date of ``at``."""
    return at.astimezone(JAKARTA).date()


def _next_jakarta_midnight(at: datetime) -> datetime:
    local = at.astimezone(JAKARTA)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), JAKARTA)
    return midnight.astimezone(at.tzinfo)


def next_allowed(state: PacingState, now: datetime, config: RateConfig) -> datetime | None:
    """When the session may send next, at or after ``now``.

    Args:
        state: The session's pacing state.
        now: Current time (aware).
        config: The limits.

    Returns:
        The earliest allowed send time (``now`` when it may send at once), or ``None``
        when the queue is paused (it must not send until a person resumes it).
    """
    if state.paused:
        return None
    at = max(now, state.next_send_at) if state.next_send_at else now
    # Each rule can only push the time later; a few rounds settle them all (a cap can
    # push into quiet hours, whose end can fall into a new day, and so on).
    for _ in range(8):
        moved = at
        if state.day_date == jakarta_date(moved) and state.day_count >= config.max_per_day:
            moved = _next_jakarta_midnight(moved)
        if (state.hour_started_at is not None and moved < state.hour_started_at + HOUR
                and state.hour_count >= config.max_per_hour):
            moved = state.hour_started_at + HOUR
        moved = quiet_end_after(moved, config)
        if moved == at:
            return at
        at = moved
    return at


def may_send(state: PacingState, now: datetime, config: RateConfig) -> bool:
    """Whether the session may send at ``now``."""
    allowed = next_allowed(state, now, config)
    return allowed is not None and allowed <= now


def draw_delay(config: RateConfig, rng: random.Random) -> float:
    """One spacing: uniform(min, max) plus uniform(0, jitter) seconds."""
    low, high = sorted((float(config.min_delay_s), float(config.max_delay_s)))
    return rng.uniform(low, high) + rng.uniform(0, max(0.0, float(config.jitter_s)))


def after_send(state: PacingState, now: datetime, config: RateConfig,
               rng: random.Random) -> PacingState:
    """The state after a send at ``now``: counts advanced, next spacing drawn.

    A session that has been idle for at least the cooldown has rested already, so its
    batch starts over (a morning's first message does not inherit last night's count).

    Args:
        state: The state before the send.
        now: When the send happened.
        config: The limits.
        rng: Random source for the spacing.

    Returns:
        The new state (``next_send_at`` = ``now`` + spacing [+ cooldown]).
    """
    today = jakarta_date(now)
    day_count = state.day_count + 1 if state.day_date == today else 1
    if state.hour_started_at is None or now >= state.hour_started_at + HOUR:
        hour_started_at, hour_count = now, 1
    else:
        hour_started_at, hour_count = state.hour_started_at, state.hour_count + 1
    batch_count = state.batch_count
    cooldown = timedelta(seconds=float(config.batch_cooldown_s))
    if state.next_send_at is not None and now - state.next_send_at >= cooldown:
        batch_count = 0
    batch_count += 1
    delay = draw_delay(config, rng)
    if batch_count >= config.batch_size:
        delay += float(config.batch_cooldown_s)
        batch_count = 0
    return replace(state, next_send_at=now + timedelta(seconds=delay),
                   batch_count=batch_count, hour_started_at=hour_started_at,
                   hour_count=hour_count, day_date=today, day_count=day_count)


def stagger(start: datetime, count: int, config: RateConfig,
            rng: random.Random) -> list[datetime]:
    """Scheduled times for ``count`` new messages of one session (spec ``scheduleReminders``).

    Each message comes a random spacing after the previous one (min..max plus jitter),
    and every ``batch_size`` messages the next one waits the cooldown as well. These
    are only the earliest times: the worker still applies :func:`next_allowed`.

    Args:
        start: When the first spacing starts counting.
        count: How many messages.
        config: The limits.
        rng: Random source.

    Returns:
        ``count`` increasing times.
    """
    times: list[datetime] = []
    at = start
    in_batch = 0
    for _ in range(count):
        at += timedelta(seconds=draw_delay(config, rng))
        times.append(at)
        in_batch += 1
        if in_batch >= config.batch_size:
            at += timedelta(seconds=float(config.batch_cooldown_s))
            in_batch = 0
    return times


@dataclass(frozen=True)
class Throttle:
    """The policy bound to its limits and a clock: ``Throttle(config, clock=fake_now)``.

    Attributes:
        config: The limits.
        clock: Returns the current aware time (injected in tests).
    """

    config: RateConfig
    clock: Callable[[], datetime] = _utc_now

    def next_allowed(self, state: PacingState, now: datetime | None = None) -> datetime | None:
        """See :func:`next_allowed`; ``now`` defaults to the injected clock."""
        return next_allowed(state, now or self.clock(), self.config)

    def may_send(self, state: PacingState, now: datetime | None = None) -> bool:
        """See :func:`may_send`."""
        return may_send(state, now or self.clock(), self.config)

    def after_send(self, state: PacingState, now: datetime | None = None,
                   rng: random.Random | None = None) -> PacingState:
        """See :func:`after_send`."""
        return after_send(state, now or self.clock(), self.config, rng or random.Random())

    def stagger(self, start: datetime, count: int,
                rng: random.Random | None = None) -> list[datetime]:
        """See :func:`stagger`."""
        return stagger(start, count, self.config, rng or random.Random())
