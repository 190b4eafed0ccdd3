"""The one way a test waits: poll a condition until it holds, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any],
    done: Callable[[Any], object] | None = None,
    *,
    timeout: float = 30.0,
    what: str = "",
    every: float = 0.05,
) -> Any:
    """Call ``check`` (sync or async) until the condition holds; the last value.

    ``eventually(predicate)`` waits until ``predicate()`` is truthy;
    ``eventually(fetch, done)`` until ``done(fetch())`` is. Past ``timeout`` seconds it
    fails, naming ``what`` it waited for and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if done(value) if done is not None else value:
            return value
        if time.monotonic() > deadline:
            name = what or getattr(check, "__qualname__", repr(check))
            raise AssertionError(f"timed out after {timeout}s waiting for {name}: last {value!r}")
        await asyncio.sleep(every)
