"""How long the event loop stood still while a handler ran."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

TICK = 0.02


async def longest_pause(work: Awaitable[Any]) -> tuple[Any, float, float]:
    """Run ``work`` beside a 20 ms ticker: its result, its duration, the loop's longest stall.

    A handler that calls blocking code directly stalls the loop (every other tab
    and request) for as long as that code runs; one that hands it to a thread
    keeps the ticker going.
    """
    pauses: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.monotonic()
        while running:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            pauses.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK)
    started = time.monotonic()
    try:
        result = await work
    finally:
        took = time.monotonic() - started
        running = False
        await ticking
    return result, took, max(pauses)
