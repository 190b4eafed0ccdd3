"""Kafka adapters: the idempotent producer and sending a round in order, topic creation
and a readiness round trip."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import struct
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

HEALTH_TOPIC = "_interval.health"


def idempotent_producer(
    servers: list[str],
    client_id: str,
    request_timeout_ms: int = 15000,
    max_batch_bytes: int = 16384,
) -> AIOKafkaProducer:
    """acks=all + idempotence: a retried send is never written twice to a partition.
    ``max_batch_bytes``: the most one partition's batch of a produce request carries
    (aiokafka's default is 16 KiB)."""
    return AIOKafkaProducer(
        bootstrap_servers=servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        max_batch_size=max_batch_bytes,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=100,
    )


_M, _U32 = 0x5BD1E995, 0xFFFFFFFF


@functools.lru_cache(maxsize=256)
def _words(n: int) -> Any:
    return struct.Struct(f"<{n}I").unpack_from


def murmur2(data: bytes) -> int:
    """The Java client's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as
    aiokafka's ``aiokafka.partitioner.murmur2`` computes it, the same value, in half its
    time (2.6 against 4.9 us for a 24-byte key): the key's 4-byte words read in one
    ``struct`` call rather than byte by byte, and fewer masks (every product is masked
    to 32 bits at once). tests/unit/shared/test_partitioner.py holds the two equal."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in _words(length >> 2)(data):
        k = (k * _M) & _U32
        k = ((k ^ (k >> 24)) * _M) & _U32
        h = ((h * _M) & _U32) ^ k
    rest = length & 3
    if rest:
        tail = length & ~3
        if rest >= 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _U32
    h ^= h >> 13
    h = (h * _M) & _U32
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the producer's default partitioner gives ``key`` among the topic's
    ``partitions`` (sorted): murmur2 of the key, positive, modulo their number."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


async def send_in_order(
    producer: AIOKafkaProducer,
    messages: Sequence[tuple[str, bytes, bytes]],
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Send (topic, key, value) ``messages`` with ``headers`` and return once the broker
    has acknowledged every one; raises as ``send`` would if one fails. Each key's
    messages are written in the order given.

    One record batch per partition (several if one would pass the producer's batch
    size) through ``send_batch``, rather than ``send`` per message: aiokafka's
    per-message path (a future, a metadata lookup and partitioning per message, a result
    set per message) cost the relay 21 us of CPU a message against 8 this way
    (docs/performance.md). A key's partition is the one ``send`` would pick, aiokafka's
    default partitioner over the topic's partitions in order (murmur2 of the key, as the
    Java client's), so no key moves. Batches of one partition are queued in turn; with
    idempotence aiokafka keeps one in flight per partition, so their order holds."""
    per_partition: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    partitions: dict[str, list[int]] = {}
    for topic, key, value in messages:
        known = partitions.get(topic)
        if known is None:
            known = partitions[topic] = sorted(await producer.partitions_for(topic))
        target = (topic, partition_of(key, known))
        per_partition.setdefault(target, []).append((key, value))
    queues: list[list[tuple[str, int, Any]]] = []  # each partition's batches, in order
    for (topic, partition), records in per_partition.items():
        batches = [producer.create_batch()]
        for key, value in records:
            if batches[-1].append(timestamp=None, key=key, value=value, headers=headers) is None:
                # full: a new batch takes it (an empty batch takes its first record
                # whatever its size; the broker refuses one over its own limit)
                batches.append(producer.create_batch())
                batches[-1].append(timestamp=None, key=key, value=value, headers=headers)
        queues.append([(topic, partition, batch) for batch in batches])
    # the first batch of every partition is queued before any second one (queueing a
    # second waits until the first has gone to the broker)
    futures = [
        await producer.send_batch(batch, topic, partition=partition)
        for wave in itertools.zip_longest(*queues)
        for topic, partition, batch in filter(None, wave)
    ]
    await asyncio.gather(*futures)


async def ensure_topics(
    servers: list[str], topics: Iterable[str], *, partitions: int = 6, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id="interval-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            # another process may create one meanwhile
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=partitions, replication_factor=replication)
                        for t in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def metadata_ok(servers: list[str], timeout: float) -> bool:
    """Cheap liveness of the broker connection: a metadata request answered in time."""
    client = AIOKafkaClient(
        bootstrap_servers=servers,
        client_id="interval-readyz",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return True
    except Exception:
        return False
    finally:
        await client.close()


async def wait_brokers(servers: list[str], brokers: int, timeout: float) -> None:
    """Until the cluster's metadata lists at least ``brokers`` brokers (a cluster's
    nodes register with its controller one by one)."""
    deadline = time.monotonic() + timeout
    client = AIOKafkaClient(bootstrap_servers=servers, client_id="interval-admin")
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        while len(client.cluster.brokers()) < brokers:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(client.cluster.brokers())} of {brokers} brokers in the metadata"
                )
            await asyncio.sleep(0.2)
            await client.force_metadata_update()
    finally:
        await client.close()


async def round_trip(servers: list[str], timeout: float, *, replication: int = 1) -> None:
    """A real round trip: metadata, produce with acks=all, consume it in a group.

    This is what "the broker is ready" means: an open port is not enough (a KRaft
    node accepts connections before it can serve a consumer group). The health topic
    is created with ``replication`` replicas (a cluster's: deploy/bin/kafka-cluster.sh).
    """
    deadline = time.monotonic() + timeout
    await ensure_topics(servers, [HEALTH_TOPIC], partitions=1, replication=replication)
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    consumer = AIOKafkaConsumer(
        HEALTH_TOPIC,
        bootstrap_servers=servers,
        group_id="interval-health",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    try:
        # The group must own the partition before we produce, or "latest" skips our marker.
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("consumer group never got its partition")
            await asyncio.sleep(0.05)
        await consumer.seek_to_end()
        await producer.send_and_wait(HEALTH_TOPIC, marker)
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            if any(m.value == marker for msgs in batch.values() for m in msgs):
                await consumer.commit()
                return
        raise TimeoutError("produced a marker but never consumed it")
    finally:
        await consumer.stop()
        await producer.stop()
