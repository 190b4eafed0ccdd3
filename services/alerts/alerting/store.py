"""``AlertStore``: the repository calls the alerting use cases and the acknowledge/resolve
command make, as a protocol. The repository package (services/alerts/repository/) is
the one implementation in the product (mypy holds it to this); it is the default
wherever a ``store`` is taken, so production passes none. Unit tests pass an in-memory
fake (tests/unit/alerts/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from services.alerts.rows import AlertRow, ClaimedPage, NewPage, OncallRow, PageRow, PatientRow
from shared.db import Conn


class AlertStore(Protocol):
    async def lock_patient(
        self, conn: Conn, patient_id: str, site_id: str, now: datetime
    ) -> PatientRow: ...

    async def unresolved_alerts(self, conn: Conn, patient_id: str) -> list[AlertRow]: ...

    async def get_alert(self, conn: Conn, alert_id: str) -> AlertRow | None: ...

    async def lock_alert(self, conn: Conn, alert_id: str) -> AlertRow | None: ...

    async def insert_alert(self, conn: Conn, values: dict[str, Any]) -> AlertRow: ...

    async def update_alert(self, conn: Conn, alert_id: Any, values: dict[str, Any]) -> AlertRow: ...

    async def repeat_alert(
        self, conn: Conn, alert_id: str, reasons: Sequence[str], seen_at: datetime, now: datetime
    ) -> AlertRow: ...

    async def get_oncall(self, conn: Conn, site_id: str) -> OncallRow | None: ...

    async def insert_pages(
        self, conn: Conn, rows: Sequence[NewPage], lease_until: datetime | None = None
    ) -> list[ClaimedPage]: ...

    async def paged_of(self, conn: Conn, alert_id: Any) -> list[PageRow]: ...

    async def cancel_pending_pages(self, conn: Conn, alert_id: Any, now: datetime) -> None: ...

    async def wake_timers(self, conn: Conn) -> None: ...
