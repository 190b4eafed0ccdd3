"""After a rebalance a worker reads its never-committed partitions again from their
beginning (shared/uncommitted.py): faust dropped the records it had fetched, and
aiokafka's seek_to_committed leaves such a partition after them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.uncommitted import seek_uncommitted_to_start


class FakeAiokafka:
    def __init__(self) -> None:
        self.rewound: list[str] = []

    async def seek_to_beginning(self, *partitions: str) -> None:
        self.rewound.extend(partitions)


class FakeThread:
    def __init__(self) -> None:
        self.aiokafka = FakeAiokafka()

    def _ensure_consumer(self) -> FakeAiokafka:
        return self.aiokafka

    async def call_thread(self, fun: Any) -> Any:
        return await fun()


class FakeFaustConsumer:
    """faust's consumer: seek_to_committed answers the committed offset per partition
    (None: never committed), as aiokafka's does, seeking only where it is above 0."""

    def __init__(self) -> None:
        self._thread = FakeThread()

    async def seek_to_committed(self) -> Mapping[str, int | None]:
        return {"never": None, "at-zero": 0, "committed": 5}


async def test_partitions_without_a_commit_are_rewound_to_their_beginning() -> None:
    consumer = FakeFaustConsumer()
    seek_uncommitted_to_start(consumer, "earliest")
    committed = await consumer.seek_to_committed()
    assert committed == {"never": None, "at-zero": 0, "committed": 5}  # faust's view unchanged
    assert sorted(consumer._thread.aiokafka.rewound) == ["at-zero", "never"]


async def test_with_the_latest_reset_nothing_is_rewound() -> None:
    consumer = FakeFaustConsumer()
    seek_uncommitted_to_start(consumer, "latest")
    await consumer.seek_to_committed()
    assert consumer._thread.aiokafka.rewound == []
