"""A faust worker built from shared.consumer that records what it applied.

Run as ``python -m tests.support.probe_worker`` with PROBE_TOPIC, PROBE_TYPE,
PROBE_GROUP and DATABASE_URL set; it is the consumer the integration tests kill
and restart. An event whose subject starts with ``reject-`` is refused, one whose subject
starts with ``crash-`` meets a bug in the handler (both dead-lettered);
one whose subject starts with ``stall-`` fails transiently (is retried) while that
subject has a row in ``probe.gate``. Events share a transaction with their partition's
neighbours under load (shared/processing.py Route.batch), but for those whose subject
starts with ``alone-``. Those whose subject starts with ``skip-`` are ignored
(Route.ignore: counted, never handled, nothing written); for ``oops-`` ones the ignore
predicate itself raises.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.consumer import build_faust_app, run_worker
from shared.db import Conn
from shared.events import CloudEvent
from shared.logging import configure_logging
from shared.processing import EventProcessor, PermanentError, Route
from shared.settings import CommonSettings

SCHEMA = "probe"
MIGRATIONS = Path(__file__).parent / "probe_migrations"


async def record(conn: Conn, event: CloudEvent, _: Any) -> None:
    if event.subject.startswith("reject-"):
        raise PermanentError("this patient id is refused by the probe")
    if event.subject.startswith("crash-"):
        raise RuntimeError("the probe's handler has a bug for this subject")
    if event.subject.startswith("stall-") and await conn.fetchval(
        "SELECT 1 FROM gate WHERE subject = $1", event.subject
    ):
        raise TimeoutError("the probe's gate is closed for this subject")  # transient
    await conn.execute(
        "INSERT INTO applied (event_id, topic, subject) VALUES ($1, $2, $3)",
        event.id,
        event.type,
        event.subject,
    )


def batchable(payload: Any) -> bool:
    return not str(getattr(payload, "patient_id", "")).startswith("alone-")


def ignored(payload: Any) -> bool:
    subject = str(getattr(payload, "patient_id", ""))
    if subject.startswith("oops-"):
        raise ValueError("the probe's ignore predicate has a bug for this subject")
    return subject.startswith("skip-")


def processor(settings: CommonSettings, topic: str, event_type: str, group: str) -> EventProcessor:
    return EventProcessor(
        settings=settings,
        schema=SCHEMA,
        group=group,
        routes=[
            Route(
                topic=topic,
                handler=record,
                event_type=event_type,
                batch=batchable,
                ignore=ignored,
            )
        ],
    )


def main() -> None:
    settings = CommonSettings()
    configure_logging("probe-worker", "INFO")
    proc = processor(
        settings, os.environ["PROBE_TOPIC"], os.environ["PROBE_TYPE"], os.environ["PROBE_GROUP"]
    )
    run_worker(
        build_faust_app(proc), "probe-worker", settings, schema=SCHEMA, migrations=MIGRATIONS
    )


if __name__ == "__main__":
    main()
