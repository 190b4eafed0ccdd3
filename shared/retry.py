"""One way to wait before trying again: capped exponential backoff with jitter.

Every loop that waits for something outside the process (the database or the broker
coming up, a transient failure of a message's transaction, a lost connection) takes
its delays from a ``Backoff``: the first wait is ``initial_s``, each next one twice the
last up to ``max_s``, each spread by +-``jitter`` (a fraction) so that processes that
failed together do not retry in lockstep. The numbers come from settings
(shared/settings.py ``retry_*``, ``reconnect_max_s``, ``consumer_retry_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    initial_s: float
    max_s: float
    jitter: float = 0.2
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("Backoff needs 0 < initial_s <= max_s")
        if not 0 <= self.jitter < 1:
            raise ValueError("Backoff jitter is a fraction in [0, 1)")
        self._next = self.initial_s

    def delay(self) -> float:
        """The wait before the next attempt (and the one after doubles, up to max_s)."""
        base = self._next
        self._next = min(base * 2, self.max_s)
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311  # not crypto
        return min(base * spread, self.max_s)

    def reset(self) -> None:
        """After a success: the next failure waits ``initial_s`` again."""
        self._next = self.initial_s

    async def sleep(self, stop: asyncio.Event | None = None) -> float:
        """Wait the next delay, or less when ``stop`` is set meanwhile; the delay."""
        wait = self.delay()
        await pause(wait, stop)
        return wait


async def pause(seconds: float, stop: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
    else:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    on_retry: Callable[[BaseException, float], Any],
    stop: asyncio.Event | None = None,
) -> T | None:
    """``attempt()`` until it returns; every error of ``retry_on`` is reported to
    ``on_retry(error, next delay)`` (a log line) and waited out. None when ``stop`` is
    set before an attempt succeeds."""
    while stop is None or not stop.is_set():
        try:
            return await attempt()
        except retry_on as exc:
            wait = backoff.delay()
            on_retry(exc, wait)
            await pause(wait, stop)
    return None
