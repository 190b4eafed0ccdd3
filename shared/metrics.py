"""Prometheus helpers every process shares: count only what committed, serve /metrics.

Business counters (intakes, series, appointments, alerts) must not count a transaction
that rolled back or is retried. ``after_commit(fn)`` queues an increment in the current
*commit scope* (``commit_scope()`` around a transaction, or ``@counted_on_commit`` on a
function that owns one); the scope runs the queue when it ends without an error, i.e.
after its transaction committed, and drops it when it raises. Outside any scope the
increment runs at once. Scopes nest: an inner scope that ends well hands its queue to
the outer one, so an event handler's increments wait for the consumer's inbox
transaction. A process killed between the commit and the increment loses it: counters
are at most once, never counting what did not happen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from prometheus_client import start_http_server

P = ParamSpec("P")
R = TypeVar("R")

Pending = list[tuple[Callable[..., object], tuple[Any, ...]]]
_pending: ContextVar[Pending | None] = ContextVar("metrics_pending", default=None)


def after_commit(fn: Callable[..., object], *args: Any) -> None:
    """Run ``fn(*args)`` (an increment, an observation) when the current commit scope
    ends well; at once outside any scope."""
    pending = _pending.get()
    if pending is None:
        fn(*args)
    else:
        pending.append((fn, args))


@contextmanager
def commit_scope() -> Iterator[None]:
    """Increments queued inside run when the block ends without an error (after the
    transaction it wraps committed), and are dropped when it raises."""
    mine: Pending = []
    token = _pending.set(mine)
    try:
        yield
    finally:
        _pending.reset(token)
    for fn, args in mine:  # only reached without an exception
        after_commit(fn, *args)


def counted_on_commit(
    fn: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``commit_scope`` around a coroutine function that owns its transaction."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with commit_scope():
            return await fn(*args, **kwargs)

    return wrapper


def serve_metrics(port: int | None, host: str) -> None:
    """Serve the process's /metrics on ``host:port`` from a daemon thread (None: off)."""
    if port:
        start_http_server(port, addr=host)
