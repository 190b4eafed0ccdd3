"""What the lag exporter asks the broker (shared/lag_exporter.py): a group's state,
members and subscribed topics, and the timestamps of the records at given offsets."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.group import ProtocolMetadata

from shared.lag import TP, GroupInfo


def _subscribed(member_metadata: bytes) -> list[str]:
    """The topics a member subscribes to (the consumer protocol's metadata)."""
    try:
        return list(ProtocolMetadata.decode(member_metadata).subscription)
    except Exception:  # not the consumer protocol: only its commits tell its topics
        return []


async def describe_group(admin: AIOKafkaAdminClient, group: str) -> tuple[GroupInfo, set[str]]:
    """The group's state, member count and the topics its members subscribe to.

    One group per request: aiokafka 0.14 misreads a DescribeGroups answer for several.
    """
    [response] = await admin.describe_consumer_groups([group])
    [described] = response.to_object()["groups"]
    if described["error_code"]:
        raise RuntimeError(f"describe group {group}: error {described['error_code']}")
    members = described["members"]
    topics = {t for m in members for t in _subscribed(m["member_metadata"])}
    return GroupInfo(group, described["state"] or "Dead", len(members)), topics


async def record_timestamps(
    servers: list[str], wanted: set[tuple[TP, int]], timeout: float
) -> dict[tuple[TP, int], int]:
    """The Kafka timestamp of the record at each (partition, offset), read by a consumer
    of no group (assigned, never committing), gone when done. Groups at different
    offsets of one partition are read in turn, lowest first (a seek each, never reading
    the records between); what is not read within ``timeout`` is left out."""
    if not wanted:
        return {}
    pending: dict[TopicPartition, list[int]] = {}
    for tp, offset in sorted(wanted):
        pending.setdefault(TopicPartition(*tp), []).append(offset)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        client_id="interval-lag-exporter-reader",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    found: dict[tuple[TP, int], int] = {}
    try:
        consumer.assign(list(pending))
        for tp, first_offsets in pending.items():
            consumer.seek(tp, first_offsets[0])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for tp, records in batch.items():
                if tp not in pending:
                    continue
                offsets = pending[tp]
                # the first record at or after each offset (an offset may be a gap)
                while offsets and records and records[-1].offset >= offsets[0]:
                    first = next(r for r in records if r.offset >= offsets[0])
                    found[(tp.topic, tp.partition), offsets.pop(0)] = first.timestamp
                if not offsets:
                    del pending[tp]
                    consumer.pause(tp)
                elif records and records[-1].offset < offsets[0] - 1:
                    consumer.seek(tp, offsets[0])  # skip what lies between
    finally:
        await consumer.stop()
    return found
