"""Consumer lag as the broker sees it: the pure computation (no I/O).

``shared/lag_exporter.py`` asks the broker, for every project consumer group, what it
committed, where each partition's log starts and ends, and the Kafka timestamp of the
first record each group has not consumed yet; ``lag_rows`` turns those answers into one
row per (group, topic, partition). Nothing here depends on a worker being alive: a
stalled or absent worker's group still has its committed offsets on the broker, so its
lag keeps growing as events arrive (what ``kafka-consumer-groups --describe`` shows).

A partition the group never committed on counts from where the group would start
reading it, like the workers' ``CONSUMER_OFFSET_RESET``: ``earliest`` (the default)
from the log's start offset, so every record still on the log is lag; ``latest`` from
its end, so lag 0. (``kafka-consumer-groups`` prints ``-`` there.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

TP = tuple[str, int]  # (topic, partition); aiokafka's TopicPartition is one
Reset = Literal["earliest", "latest"]


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group as the coordinator describes it (``Dead``: not on the broker)."""

    group: str
    state: str
    members: int


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    log_start: int
    log_end: int
    position: int  # the next offset the group reads (committed, or the reset point)
    lag: int  # log_end - committed, or log_end - position without a commit
    oldest_age_s: float | None  # age of the record at ``position``; 0 with no lag


@dataclass(frozen=True)
class GroupLag:
    info: GroupInfo
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def position(committed: int | None, log_start: int, log_end: int, reset: Reset) -> int:
    """The offset of the first record the group has not consumed on a partition.

    Without a commit, where the group would start; a commit below the log's start
    (records deleted by retention) resumes at the start; one past the end (the topic
    was recreated) at the end.
    """
    if committed is None:
        return log_start if reset == "earliest" else log_end
    return min(max(committed, log_start), log_end)


def lag(committed: int | None, log_start: int, log_end: int, reset: Reset) -> int:
    """Records the group has still to read: log end minus committed offset (as
    ``kafka-consumer-groups`` computes it), from the reset point without a commit."""
    base = committed if committed is not None else position(None, log_start, log_end, reset)
    return max(log_end - base, 0)


def to_read(
    partitions: Mapping[str, Sequence[TP]],
    committed: Mapping[str, Mapping[TP, int]],
    log_start: Mapping[TP, int],
    log_end: Mapping[TP, int],
    reset: Reset,
) -> set[tuple[TP, int]]:
    """The (partition, offset) records whose timestamps ``lag_rows`` needs: each
    lagging partition's first unconsumed record (shared when groups sit on the same one)."""
    out: set[tuple[TP, int]] = set()
    for group, tps in partitions.items():
        for tp in tps:
            if tp not in log_end:
                continue
            start, end = log_start.get(tp, 0), log_end[tp]
            at = position(committed.get(group, {}).get(tp), start, end, reset)
            if at < end:
                out.add((tp, at))
    return out


def lag_rows(
    groups: Iterable[GroupInfo],
    partitions: Mapping[str, Sequence[TP]],
    committed: Mapping[str, Mapping[TP, int]],
    log_start: Mapping[TP, int],
    log_end: Mapping[TP, int],
    timestamps_ms: Mapping[tuple[TP, int], int],
    now: float,
    reset: Reset = "earliest",
) -> list[GroupLag]:
    """One row per group and partition of its topics.

    ``partitions``: each group's partitions (of the topics it subscribes to or committed
    on); ``committed``: each group's committed offsets (absent: none); ``log_start`` /
    ``log_end``: every partition's start and end offsets (a partition missing from
    ``log_end`` is skipped: its topic is gone); ``timestamps_ms``: the Kafka timestamp
    (ms since the epoch) of the record at (partition, offset), for the offsets
    ``to_read`` asked for; ``now``: seconds since the epoch. The oldest unconsumed age is
    ``now`` minus that timestamp (never negative, 0 when nothing is left to read, None
    when the record could not be read).
    """
    out: list[GroupLag] = []
    for info in sorted(groups, key=lambda g: g.group):
        mine = committed.get(info.group, {})
        rows: list[PartitionLag] = []
        for tp in sorted(set(partitions.get(info.group, ()))):
            if tp not in log_end:
                continue
            start, end = log_start.get(tp, 0), log_end[tp]
            done = mine.get(tp)
            at = position(done, start, end, reset)
            behind = lag(done, start, end, reset)
            age: float | None = 0.0
            if at < end:
                ts = timestamps_ms.get((tp, at))
                age = max(now - ts / 1000, 0.0) if ts is not None and ts >= 0 else None
            rows.append(PartitionLag(info.group, tp[0], tp[1], done, start, end, at, behind, age))
        out.append(GroupLag(info, tuple(rows)))
    return out
