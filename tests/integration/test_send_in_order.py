"""``send_in_order`` (shared/kafka.py), the relay's way to send a round, on the real
broker: every message acknowledged and there to read, each key's in the order given even
when its partition takes several record batches, each key on the partition ``send``
picks for it (no key moved when the relay changed over), the headers on every message."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from shared.events import kafka_headers
from shared.kafka import ensure_topics, idempotent_producer, send_in_order
from tools.stack import KAFKA, delete_topics

pytestmark = pytest.mark.integration

KEYS = [f"p-{i}" for i in range(40)]
PER_KEY = 50
# (partition, key, the message's number, its headers); -1: one of the probes of ``send``
Read = tuple[int, str, int, list[tuple[str, bytes]]]


async def _read(topic: str, count: int, timeout_s: float = 30.0) -> list[Read]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=[KAFKA], auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[Read] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(got) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        assert r.key is not None
                        assert r.value is not None
                        n = int(r.value.split(b" ", 1)[0]) if r.value[:1].isdigit() else -1
                        got.append((r.partition, r.key.decode(), n, list(r.headers)))
    finally:
        await consumer.stop()
    return got


async def _send_and_read(topic: str) -> tuple[list[Read], dict[str, int], int]:
    """(what a reader finds on ``topic``, the partition ``send`` picks per key, how many
    messages ``send_in_order`` sent)."""
    # 16 KiB batches hold about 28 of these messages: each partition's ~330 take a dozen
    producer = idempotent_producer([KAFKA], "probe-send-in-order", max_batch_bytes=16384)
    await producer.start()
    try:
        padding = b" " * 540
        messages = [
            (topic, key.encode(), str(n).encode() + padding) for n in range(PER_KEY) for key in KEYS
        ]
        await send_in_order(producer, messages, kafka_headers())
        send_picks = {
            key: (await producer.send_and_wait(topic, b"send", key=key.encode())).partition
            for key in KEYS
        }
    finally:
        await producer.stop()
    return await _read(topic, len(messages) + len(KEYS)), send_picks, len(messages)


async def test_a_round_lands_whole_in_order_per_key_on_the_partitions_send_picks() -> None:
    topic = f"probe-send-in-order-{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic])
    try:
        got, send_picks, count = await _send_and_read(topic)
    finally:
        await delete_topics([topic])
    sent = [g for g in got if g[2] >= 0]
    assert len(sent) == count  # all there, none twice
    order: dict[str, list[int]] = defaultdict(list)
    for partition, key, n, headers in sent:
        assert partition == send_picks[key]
        assert headers == kafka_headers()
        order[key].append(n)
    assert order == {key: list(range(PER_KEY)) for key in KEYS}
    assert len({send_picks[k] for k in KEYS}) > 1  # the keys did spread over partitions
