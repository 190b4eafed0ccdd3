"""A partition's lane never lets faust skip offsets (shared/consumer.py PartitionLanes):
a message past the one after the last handed pauses the partition, seeks it back to the
first missing offset and resumes it; what arrives past that meanwhile is dropped (it
comes again); a jump that remains after the seek (records gone by retention) is
accepted. faust's consumer is a recording stand-in: the lanes only call its pause,
resume and seek, and the processor records what it was handed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from shared.consumer import PartitionLanes
from shared.processing import Message
from shared.settings import CommonSettings

PART = TP("test.lanes", 0)


@dataclass
class Consumer:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    seek_gate: asyncio.Event = field(default_factory=asyncio.Event)

    def pause_partitions(self, tps: list[TP]) -> None:
        self.calls.append(("pause", tps[0].partition))

    def resume_partitions(self, tps: list[TP]) -> None:
        self.calls.append(("resume", tps[0].partition))

    async def seek(self, tp: TP, offset: int) -> None:
        await self.seek_gate.wait()
        self.calls.append(("seek", offset))

    def highwater(self, tp: TP) -> int:
        raise KeyError(tp)


@dataclass
class App:
    consumer: Consumer


@dataclass
class Processor:
    settings: CommonSettings
    group: str = "test"
    handled: list[int] = field(default_factory=list)

    async def process_batch(self, msgs: list[Message]) -> list[str]:
        self.handled += [m.offset for m in msgs]
        return ["applied"] * len(msgs)


@dataclass
class Raw:
    tp: TP
    offset: int
    partition: int = 0
    key: bytes = b"k"
    value: bytes = b"{}"
    headers: list[Any] = field(default_factory=list)


@dataclass
class Event:
    message: Raw
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


def lanes() -> tuple[PartitionLanes, Consumer, Processor]:
    consumer = Consumer()
    processor = Processor(CommonSettings(retry_initial_s=0.01, retry_max_s=0.01))
    return PartitionLanes(App(consumer), processor), consumer, processor  # type: ignore[arg-type]


def hand(lanes: PartitionLanes, *offsets: int) -> list[Event]:
    events = [Event(Raw(PART, o)) for o in offsets]
    for e in events:
        lanes.put(e)
    return events


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_contiguous_offsets_go_straight_to_the_lane() -> None:
    lane, consumer, processor = lanes()
    events = hand(lane, 7, 8, 9)
    await settle()
    assert processor.handled == [7, 8, 9]
    assert all(e.acked for e in events)
    assert consumer.calls == []
    await lane.revoke([PART])


async def test_a_skip_is_fetched_again_from_the_first_missing_offset() -> None:
    lane, consumer, processor = lanes()
    hand(lane, 0, 1, 2)
    skipped = hand(lane, 5, 6)  # 3 and 4 never came
    await settle()
    assert processor.handled == [0, 1, 2]
    assert not any(e.acked for e in skipped)
    assert consumer.calls == [("pause", 0)]
    hand(lane, 7)  # fetched before the pause took: dropped, it comes again
    consumer.seek_gate.set()
    await settle()
    assert consumer.calls == [("pause", 0), ("seek", 3), ("resume", 0)]
    hand(lane, 3, 4, 5, 6, 7, 8)
    await settle()
    assert processor.handled == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    await lane.revoke([PART])


async def test_a_jump_that_remains_after_the_seek_is_accepted() -> None:
    lane, consumer, processor = lanes()
    consumer.seek_gate.set()
    hand(lane, 0, 1)
    hand(lane, 40)  # 2..39 deleted by retention meanwhile
    await settle()
    assert consumer.calls == [("pause", 0), ("seek", 2), ("resume", 0)]
    hand(lane, 40, 41)  # the broker's log now starts at 40
    await settle()
    assert processor.handled == [0, 1, 40, 41]
    await lane.revoke([PART])


async def test_a_message_handed_again_after_a_seek_is_not_a_skip() -> None:
    lane, consumer, processor = lanes()
    hand(lane, 0, 1, 2, 1, 2, 3)
    await settle()
    assert processor.handled == [0, 1, 2, 1, 2, 3]  # the inbox drops the repeats
    assert consumer.calls == []
    await lane.revoke([PART])


async def test_revoking_a_partition_forgets_where_it_was() -> None:
    lane, consumer, processor = lanes()
    hand(lane, 0, 1)
    await settle()
    await lane.revoke([PART])
    hand(lane, 10)  # its next owner starts at the committed offset: no skip
    await settle()
    assert processor.handled == [0, 1, 10]
    assert consumer.calls == []
    await lane.revoke([PART])
