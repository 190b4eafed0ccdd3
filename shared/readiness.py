"""A worker's readiness (its GET /readyz): computed on the worker's event loop, read by
the metrics thread; and its group's lag on the broker, for a worker with nothing
assigned (shared/consumer.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.settings import CommonSettings

# /readyz answers from the last check; older than this: 503 (the event loop is stuck)
READY_STALE_S = 10.0


@dataclass
class Readiness:
    """A worker's readiness, computed on its event loop, read by the /readyz thread."""

    ok: bool = False
    detail: dict[str, Any] | None = None
    at: float = 0.0

    def set(self, ok: bool, **detail: Any) -> None:
        self.ok, self.detail, self.at = ok, detail, time.monotonic()

    def answer(self) -> tuple[bool, dict[str, Any]]:
        ok, detail, at = self.ok, dict(self.detail or {"reason": "starting"}), self.at
        if at and time.monotonic() - at > READY_STALE_S:
            age = round(time.monotonic() - at, 1)
            return False, {"reason": f"readiness not checked for {age} s (event loop stuck?)"}
        return ok, detail


class GroupLag:
    """The group's lag on the broker, for a worker that has nothing assigned."""

    def __init__(self, settings: CommonSettings, group: str, topics: Sequence[str]) -> None:
        self.settings, self.group, self.topics = settings, group, list(topics)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def total(self) -> int:
        try:
            return await self._total()
        except BaseException:
            await self.close()
            raise

    async def _total(self) -> int:
        servers = self.settings.kafka_servers
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id="readyz")
            await self._admin.start()
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=servers, client_id="readyz", enable_auto_commit=False
            )
            await self._consumer.start()
        described = await self._admin.describe_topics(self.topics)
        tps = [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if not t.get("error_code")
            for p in t["partitions"]
        ]
        if not tps:
            return 0
        committed = await self._admin.list_consumer_group_offsets(self.group, partitions=tps)
        ends = await self._consumer.end_offsets(tps)
        starts = await self._consumer.beginning_offsets(tps)
        total = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else None
            if done is None:
                done = starts[tp] if self.settings.consumer_offset_reset == "earliest" else ends[tp]
            total += max(ends[tp] - done, 0)
        return total

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
