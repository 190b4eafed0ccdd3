"""shared.metrics: increments wait for the commit of the scope around them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared import metrics


class RolledBack(Exception):
    pass


def scoped(body: Callable[[], None]) -> None:
    """``body`` in a commit scope, then a rollback (the scope raises)."""
    with metrics.commit_scope():
        body()
        raise RolledBack


def test_outside_a_scope_an_increment_runs_at_once() -> None:
    seen: list[int] = []
    metrics.after_commit(seen.append, 1)
    assert seen == [1]


def test_a_scope_runs_its_increments_when_it_ends_well() -> None:
    seen: list[int] = []
    with metrics.commit_scope():
        metrics.after_commit(seen.append, 1)
        metrics.after_commit(seen.append, 2)
        assert seen == []
    assert seen == [1, 2]


def test_a_scope_that_raises_drops_its_increments() -> None:
    seen: list[int] = []
    with pytest.raises(RolledBack):
        scoped(lambda: metrics.after_commit(seen.append, 1))
    assert seen == []
    metrics.after_commit(seen.append, 2)  # and the scope is gone
    assert seen == [2]


def test_an_inner_scope_hands_its_increments_to_the_outer_one() -> None:
    seen: list[str] = []

    def inner_committed() -> None:
        with metrics.commit_scope():
            metrics.after_commit(seen.append, "inner")
        assert seen == []

    with pytest.raises(RolledBack):
        scoped(inner_committed)  # the outer transaction rolled back
    assert seen == []

    with metrics.commit_scope():
        with pytest.raises(RolledBack):  # a savepoint rolled back
            scoped(lambda: metrics.after_commit(seen.append, "savepoint"))
        metrics.after_commit(seen.append, "outer")
    assert seen == ["outer"]


async def test_counted_on_commit_scopes_a_coroutine_and_concurrent_tasks_apart() -> None:
    seen: list[str] = []

    @metrics.counted_on_commit
    async def command(name: str, fail: bool) -> str:
        metrics.after_commit(seen.append, name)
        await asyncio.sleep(0.01)
        assert name not in seen  # not before the scope ended
        if fail:
            raise ValueError(name)
        return name

    results = await asyncio.gather(
        command("a", False), command("b", True), command("c", False), return_exceptions=True
    )
    assert results[0] == "a"
    assert isinstance(results[1], ValueError)
    assert results[2] == "c"
    assert sorted(seen) == ["a", "c"]
