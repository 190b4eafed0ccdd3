"""The pipeline watchdog's rule (docs/domain.md, "Alert policy": ``pipeline_stalled``).

A dead-man's switch: every stage of the event pipeline leaves a progress timestamp
(the newest heartbeat that made it through the safety lane, each outbox's oldest
unpublished row, each consumer group's last progress on the broker, the timers loop's
last pass, the watchdog's last answer from the database and the broker). A stage whose
timestamp is ``stall_after_s`` or more behind ``now`` has stalled: a silent system is
never taken for a quiet one. services/alerts/watchdog.py measures, this decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.alerts.domain.model import (
    NETWORK_SITE,
    PIPELINE_PATIENT,
    Kind,
    OncallPolicy,
    Severity,
    Status,
)
from services.alerts.domain.paging import idempotency_key, page_body

# The reason each stage's stall is named by on the alert ("outbox:intake" ->
# "outbox_stale:intake", "broker_lag:alerts" stays as it is).
REASONS = {
    "heartbeat": "heartbeat_stale",
    "timers": "timers_stale",
    "database": "database_unreachable",
    "broker": "broker_unreachable",
}


def reason_of(stage: str) -> str:
    if stage in REASONS:
        return REASONS[stage]
    kind, _, name = stage.partition(":")
    if kind == "outbox":
        return f"outbox_stale:{name}"
    return stage  # broker_lag:<group>


def from_database(stage: str) -> bool:
    """The stages whose progress the watchdog reads from PostgreSQL."""
    return stage in ("heartbeat", "timers") or stage.startswith("outbox:")


def judged(progress: Mapping[str, datetime], database_ok: bool) -> dict[str, datetime]:
    """The stages to judge: while the watchdog cannot read PostgreSQL, the stages it reads
    there are unknown rather than stalled (their last reading only ages), so the stall is
    named by ``database`` itself (``database_unreachable``), not blamed on the timers or
    the heartbeat."""
    return {s: at for s, at in progress.items() if database_ok or not from_database(s)}


def stalled(
    progress: Mapping[str, datetime], now: datetime, stall_after_s: float
) -> tuple[str, ...]:
    """The stages (sorted) whose last progress is ``stall_after_s`` or more before ``now``."""
    limit = timedelta(seconds=stall_after_s)
    return tuple(sorted(s for s, at in progress.items() if now - at >= limit))


def reasons(stages: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(reason_of(s) for s in stages))


@dataclass(frozen=True)
class GroupProgress:
    """A consumer group's position as of the watchdog's last look: the sum of its
    committed offsets and when that sum last moved (or the group had nothing to read)."""

    committed: int
    at: datetime


def group_progress(
    before: GroupProgress | None, committed: int, lag: int, now: datetime
) -> GroupProgress:
    """A group makes progress while it has nothing to read or its commits move; a group
    with a lag whose offsets stand still keeps its old timestamp (first seen: now)."""
    if before is None or lag == 0 or committed != before.committed:
        return GroupProgress(committed, now)
    return before


def outbox_progress(oldest_unpublished: datetime | None, now: datetime) -> datetime:
    """An outbox is as far behind as its oldest unpublished row (empty: not at all)."""
    return now if oldest_unpublished is None else min(oldest_unpublished, now)


@dataclass
class MemPage:
    """A page POSTed from memory (the database was away when the alert opened)."""

    page_id: str
    key: str
    tier: int
    recipient: int
    name: str
    url: str
    body: bytes
    created_at: datetime
    attempts: int = 0
    next_at: datetime | None = None  # None: delivered
    delivered_at: datetime | None = None
    last_error: str | None = None


@dataclass
class Stall:
    """The one open pipeline_stalled alert."""

    alert_id: uuid.UUID
    raised_at: datetime
    reasons: set[str]
    recorded: bool  # its row is in the database
    pages: list[MemPage] = field(default_factory=list)


def first_pages(
    stall: Stall, policy: OncallPolicy, now: datetime, new_id: Callable[[], str]
) -> list[MemPage]:
    """Tier 1 of ``policy``, one page per recipient, as the watchdog POSTs them from memory
    while the database is away (none when nobody is on call)."""
    if policy.empty:
        return []
    alert_id = str(stall.alert_id)
    pages = []
    for i, r in enumerate(policy.tiers[0].recipients):
        page_id = new_id()
        body = page_body(
            page_id=page_id,
            alert_id=alert_id,
            patient_id=PIPELINE_PATIENT,
            site_id=NETWORK_SITE,
            kind=Kind.pipeline_stalled.value,
            severity=Severity.critical.value,
            status=Status.open.value,
            tier=0,
            recipient=i,
            round_=0,
            reason="initial",
            raised_at=stall.raised_at,
            paged_at=now,
        )
        key = idempotency_key(alert_id, 0, i, 0)
        pages.append(MemPage(page_id, key, 0, i, r.name, r.webhook_url, body, now, next_at=now))
    return pages
