"""In-memory stand-ins for the alerts shell's I/O, for unit tests of its orchestration:
``FakeAlertStore`` implements exactly the repository calls of
services/alerts/alerting/store.py ``AlertStore`` over dicts, with the constraints the
schema enforces that the shell relies on (one unresolved alert per patient and kind;
a page's idempotency key is unique); ``FakeConn`` is a connection whose only SQL is
the outbox's INSERT (it keeps the enqueued events) and whose ``transaction()`` does
nothing; ``FakePool`` hands it out."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import asyncpg

from services.alerts.deps import Deps
from services.alerts.domain.model import OncallPolicy
from services.alerts.domain.monitoring import MonitoringRule
from services.alerts.rows import (
    AlertRow,
    ClaimedPage,
    NewPage,
    OncallRow,
    PageRow,
    PatientRow,
    TiersJson,
)
from shared.crypto import PhiCipher, new_key
from shared.db import Conn
from tests.support.fakes import OnePool, OutboxConn
from tests.unit.alerts.builders import T0

# the outbox-keeping connection and its pool (tests/support/fakes.py)
FakeConn = OutboxConn
FakePool = OnePool


@dataclass
class FakePage:
    alert_id: uuid.UUID
    key: str
    tier: int  # 0-based
    round: int
    reason: str
    recipient: str
    status: str = "pending"
    attempts: int = 0
    leased_until: datetime | None = None


def tiers_json(policy: OncallPolicy) -> TiersJson:
    """A domain on-call policy as the oncall table stores it."""
    return [
        {
            "recipients": [{"name": r.name, "webhook_url": r.webhook_url} for r in t.recipients],
            "escalate_after_s": t.escalate_after_s,
        }
        for t in policy.tiers
    ]


class FakeAlertStore:
    def __init__(self) -> None:
        self.patients: dict[str, PatientRow] = {}
        self.alerts: dict[uuid.UUID, AlertRow] = {}
        self.oncall: dict[str, OncallRow] = {}
        self.pages: list[FakePage] = []
        self.wakes = 0

    # --- test set-up and views ---

    def put_oncall(self, site_id: str, policy: OncallPolicy) -> None:
        self.oncall[site_id] = OncallRow(site_id, tiers_json(policy), 1, T0)

    def of_kind(self, patient_id: str, kind: str) -> list[AlertRow]:
        return [a for a in self.alerts.values() if a.patient_id == patient_id and a.kind == kind]

    def pages_of(self, alert_id: uuid.UUID, status: str | None = None) -> list[FakePage]:
        return [
            p
            for p in self.pages
            if p.alert_id == alert_id and (status is None or p.status == status)
        ]

    # --- AlertStore ---

    async def lock_patient(
        self, conn: Conn, patient_id: str, site_id: str, now: datetime
    ) -> PatientRow:
        if patient_id not in self.patients:
            self.patients[patient_id] = PatientRow(
                patient_id, site_id, None, None, None, None, 0, 0, None, None, now
            )
        return self.patients[patient_id]

    async def unresolved_alerts(self, conn: Conn, patient_id: str) -> list[AlertRow]:
        return [
            a for a in self.alerts.values() if a.patient_id == patient_id and a.status != "resolved"
        ]

    async def get_alert(self, conn: Conn, alert_id: str) -> AlertRow | None:
        return self.alerts.get(uuid.UUID(str(alert_id)))

    async def lock_alert(self, conn: Conn, alert_id: str) -> AlertRow | None:
        return await self.get_alert(conn, alert_id)

    async def insert_alert(self, conn: Conn, values: dict[str, Any]) -> AlertRow:
        unresolved = await self.unresolved_alerts(conn, values["patient_id"])
        assert all(a.kind != values["kind"] for a in unresolved), "alerts_one_open violated"
        defaults: dict[str, Any] = {
            "occurrences": 1,
            "tiers_paged": 0,
            "last_escalated_at": None,
            "repages": 0,
            "last_repaged_at": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "acknowledged_note": None,
            "acknowledged_tier": None,
            "resolved_at": None,
            "resolved_by": None,
            "resolved_note": None,
            "next_check_at": None,
        }
        row = AlertRow.of(defaults | values)
        self.alerts[row.alert_id] = row
        return row

    async def update_alert(self, conn: Conn, alert_id: Any, values: dict[str, Any]) -> AlertRow:
        key = uuid.UUID(str(alert_id))
        self.alerts[key] = dataclasses.replace(self.alerts[key], **values)
        return self.alerts[key]

    async def repeat_alert(
        self, conn: Conn, alert_id: str, reasons: Sequence[str], seen_at: datetime, now: datetime
    ) -> AlertRow:
        row = self.alerts[uuid.UUID(str(alert_id))]
        return await self.update_alert(
            conn,
            alert_id,
            {
                "occurrences": row.occurrences + 1,
                "last_seen_at": max(row.last_seen_at, seen_at),
                "reasons": sorted({*row.reasons, *reasons}),
                "updated_at": now,
            },
        )

    async def get_oncall(self, conn: Conn, site_id: str) -> OncallRow | None:
        return self.oncall.get(site_id)

    async def insert_pages(
        self, conn: Conn, rows: Sequence[NewPage], lease_until: datetime | None = None
    ) -> list[ClaimedPage]:
        keys = {p.key for p in self.pages}
        out = []
        for r in rows:
            if r.idempotency_key in keys:  # ON CONFLICT (idempotency_key) DO NOTHING
                continue
            leased = lease_until is not None and r.due <= r.created_at
            attempts = 1 if leased else 0
            self.pages.append(
                FakePage(
                    r.alert_id,
                    r.idempotency_key,
                    r.tier,
                    r.round,
                    r.reason,
                    r.recipient_name,
                    "pending",
                    attempts,
                    lease_until if leased else r.due,
                )
            )
            keys.add(r.idempotency_key)
            if lease_until is None or leased:
                out.append(
                    ClaimedPage(
                        page_id=uuid.UUID(r.page_id),
                        alert_id=r.alert_id,
                        webhook_url=r.webhook_url,
                        body=r.body,
                        attempts=attempts,
                        idempotency_key=r.idempotency_key,
                        created_at=r.created_at,
                        tier=r.tier,
                        channel=r.channel,
                        address=r.address,
                    )
                )
        return out

    async def paged_of(self, conn: Conn, alert_id: Any) -> list[PageRow]:
        return []  # notices after an acknowledgement: tests/integration covers them

    async def cancel_pending_pages(self, conn: Conn, alert_id: Any, now: datetime) -> None:
        for p in self.pages_of(uuid.UUID(str(alert_id)), "pending"):
            p.status = "cancelled"

    async def wake_timers(self, conn: Conn) -> None:
        self.wakes += 1


def fake_deps(conn: FakeConn, now: datetime = T0) -> Deps:
    """The alerts ``Deps`` on a fake pool and a fixed clock, with the product's defaults."""
    return Deps(
        pool=cast(asyncpg.Pool, FakePool(conn)),
        clock=lambda: now,
        monitoring=MonitoringRule(
            interval=timedelta(days=1), grace=timedelta(hours=12), threshold=2
        ),
        escalate_after_s=900,
        ack_repage_after=timedelta(hours=1),
        allowed_hosts=(),
        timer_idle_poll_s=30.0,
        timer_batch=500,
        cipher=PhiCipher([new_key()]),
    )
