"""shared/retry.py: the one backoff every waiting loop uses."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.retry import Backoff, until_done
from shared.settings import CommonSettings


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    b = Backoff(0.5, 5.0, jitter=0)
    assert [b.delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_reset_starts_again_from_the_first_delay() -> None:
    b = Backoff(0.5, 5.0, jitter=0)
    for _ in range(4):
        b.delay()
    b.reset()
    assert b.delay() == 0.5


def test_jitter_spreads_each_delay_within_its_fraction_and_never_past_the_cap() -> None:
    delays = [Backoff(1.0, 1.5, jitter=0.2).delay() for _ in range(500)]
    assert all(0.8 <= d <= 1.2 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # spread, not lockstep
    capped = Backoff(1.0, 1.0, jitter=0.5)
    assert all(capped.delay() <= 1.0 for _ in range(200))


@pytest.mark.parametrize(
    ("initial", "cap", "jitter"), [(0, 1, 0.1), (2, 1, 0.1), (-1, 1, 0.1), (0.1, 1, 1.0)]
)
def test_nonsense_numbers_are_refused(initial: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(initial, cap, jitter)


def test_settings_give_the_configured_numbers_and_overrides() -> None:
    s = CommonSettings(retry_initial_s=0.25, retry_max_s=4, retry_jitter=0.1)
    assert (s.backoff().initial_s, s.backoff().max_s, s.backoff().jitter) == (0.25, 4, 0.1)
    fast = s.backoff(max_s=s.reconnect_max_s)
    assert (fast.initial_s, fast.max_s) == (0.25, 1.0)
    # a first delay above the cap is the cap
    assert s.backoff(initial_s=3, max_s=2).initial_s == 2


async def test_until_done_retries_the_listed_errors_and_reports_each() -> None:
    calls: list[int] = []
    reported: list[tuple[str, float]] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    result = await until_done(
        attempt,
        retry_on=(ConnectionError,),
        backoff=Backoff(0.01, 0.02, jitter=0),
        on_retry=lambda exc, delay: reported.append((str(exc), delay)),
    )
    assert result == "up"
    assert reported == [("down", 0.01), ("down", 0.02)]


async def test_until_done_lets_other_errors_through() -> None:
    async def attempt() -> None:
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        await until_done(
            attempt, retry_on=(ConnectionError,), backoff=Backoff(0.01, 0.01), on_retry=print
        )


async def test_a_stop_ends_the_wait_at_once_and_gives_none() -> None:
    stop = asyncio.Event()

    async def attempt() -> str:
        stop.set()
        raise ConnectionError("down")

    started = time.monotonic()
    result = await until_done(
        attempt,
        retry_on=(ConnectionError,),
        backoff=Backoff(30, 30),
        on_retry=lambda *_: None,
        stop=stop,
    )
    assert result is None
    assert time.monotonic() - started < 5
