"""A worker's partitions that have no committed offset yet are read again from their
start after every rebalance, as the committed ones are from their commit.

faust drops the records it had fetched but not yet handed out when a rebalance starts
(``Consumer.getmany`` stops at a new generation or a stopped flow) and counts on
seeking every partition back to its committed offset afterwards (``perform_seek``). But
aiokafka's ``seek_to_committed`` seeks only where the committed offset is above 0: a
partition never committed (a new consumer group, or a topic's first messages) keeps
its fetch position, after the dropped records. The lanes then acknowledge the later
records, faust commits them (with nothing committed it has no gap to see), and the
dropped ones were never processed: tests/faults/test_cluster.py lost an intake's
decision event so when the second worker joined the group under load.

``seek_uncommitted_to_start`` makes the worker's ``seek_to_committed`` seek those
partitions to their beginning (the ``earliest`` reset: CONSUMER_OFFSET_RESET). What was
processed already is read again, and the inbox drops the repeat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from shared.logging import get_logger

log = get_logger(__name__)


def seek_uncommitted_to_start(consumer: Any, reset: str) -> None:
    """Wrap a faust consumer's ``seek_to_committed`` (see the module docstring)."""
    if reset != "earliest":  # "latest": a partition without a commit starts at its end
        return
    original: Callable[[], Awaitable[Mapping[Any, int | None]]] = consumer.seek_to_committed

    async def seek_to_committed() -> Mapping[Any, int | None]:
        committed = await original()
        fresh = [tp for tp, offset in committed.items() if not offset]
        if fresh:
            await rewind(consumer, fresh)
        return committed

    consumer.seek_to_committed = seek_to_committed


async def rewind(consumer: Any, partitions: list[Any]) -> None:
    """Seek the partitions to their beginning, in faust's consumer thread (aiokafka's
    consumer lives there)."""
    thread = consumer._thread

    async def seek() -> None:
        await thread._ensure_consumer().seek_to_beginning(*partitions)

    try:
        await thread.call_thread(seek)
    except Exception as exc:  # e.g. the partitions revoked meanwhile: the next one's seek
        log.warning("uncommitted_seek_failed", partitions=len(partitions), error=repr(exc))
        return
    log.info("uncommitted_partitions_rewound", partitions=len(partitions))
