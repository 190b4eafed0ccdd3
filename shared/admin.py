"""Operator commands: ``python -m shared.admin ensure-topics | wait-kafka``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from shared.events import ALL_TOPICS
from shared.kafka import ensure_topics, round_trip, wait_brokers
from shared.settings import CommonSettings


async def _wait_kafka(
    servers: list[str], timeout: float, *, brokers: int = 1, replication: int = 1
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            left = max(1.0, min(20.0, deadline - time.monotonic()))
            await wait_brokers(servers, brokers, timeout=left)
            await round_trip(servers, timeout=left, replication=replication)
            return
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.5)
    raise SystemExit(f"Kafka at {','.join(servers)} not ready after {timeout:.0f}s: {last!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.admin")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure-topics", help="create every topic and its .dlq (idempotent)")
    wait = sub.add_parser("wait-kafka", help="wait until a produce/consume round trip works")
    wait.add_argument("--timeout", type=float, default=120.0)
    wait.add_argument(
        "--brokers", type=int, default=1, help="wait until this many brokers are in the cluster"
    )
    args = parser.parse_args(argv)
    settings = CommonSettings()
    if args.command == "ensure-topics":
        names = [settings.topic(t) for t in ALL_TOPICS]
        created = asyncio.run(
            ensure_topics(
                settings.kafka_servers,
                names,
                partitions=settings.kafka_topic_partitions,
                replication=settings.kafka_replication_factor,
            )
        )
        print(f"topics: {len(ALL_TOPICS)} present, {len(created)} created")
    elif args.command == "wait-kafka":
        start = time.monotonic()
        asyncio.run(
            _wait_kafka(
                settings.kafka_servers,
                args.timeout,
                brokers=args.brokers,
                replication=settings.kafka_replication_factor,
            )
        )
        print(f"kafka ready in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
