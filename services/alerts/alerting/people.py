"""The people an on-call policy names, loaded once per decision: the schedules its tiers
target (with their overrides) and every clinician they can resolve to; and who of them a
page reaches now (services/alerts/domain/rosters.py says how)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.alerts import repository as repo
from services.alerts.domain import rosters
from services.alerts.domain.model import OncallPolicy, Tier
from services.alerts.rows import ClinicianRow
from shared.db import Conn


@dataclass(frozen=True)
class Roster:
    schedules: Mapping[str, rosters.Schedule] = field(default_factory=dict)
    rows: Mapping[str, ClinicianRow] = field(default_factory=dict)

    @property
    def clinicians(self) -> dict[str, rosters.Clinician]:
        return {cid: row.clinician() for cid, row in self.rows.items()}

    def on_call(self, tier: Tier, at: datetime) -> tuple[str, ...]:
        """The clinicians the tier's targets name at ``at`` (known ones only)."""
        ids = rosters.resolve_targets(tier.targets, self.schedules, at)
        return tuple(i for i in ids if i in self.rows)

    def deliveries(self, tier: Tier, severity: str, at: datetime) -> list[rosters.Delivery]:
        """One per notification rule of each clinician on call whom the page reaches."""
        return rosters.deliveries(self.on_call(tier, at), self.clinicians, severity, at)

    def unreachable_tiers(self, policy: OncallPolicy, severity: str, at: datetime) -> set[int]:
        """Tiers (0-based) a page of this severity would reach nobody in at ``at``: no
        static recipient, and nobody on call reachable (off shift, no rule, or in quiet
        hours for a page that is not critical). The escalation skips them at once."""
        return {
            i
            for i, tier in enumerate(policy.tiers)
            if not tier.recipients and not self.deliveries(tier, severity, at)
        }


EMPTY = Roster()


def targets_of(policy: OncallPolicy) -> tuple[set[str], set[str]]:
    """The schedule ids and the clinician ids the policy's tiers target."""
    schedules: set[str] = set()
    clinicians: set[str] = set()
    for tier in policy.tiers:
        for t in tier.targets:
            if isinstance(t, rosters.ScheduleTarget):
                schedules.add(t.schedule_id)
            else:
                clinicians.add(t.clinician_id)
    return schedules, clinicians


async def load_roster(conn: Conn, policy: OncallPolicy, since: datetime) -> Roster:
    """Everyone the policy can page from ``since`` on (overrides over by then left out).
    A policy of static recipients only costs no query."""
    schedule_ids, clinician_ids = targets_of(policy)
    if not schedule_ids and not clinician_ids:
        return EMPTY
    schedules: dict[str, rosters.Schedule] = {}
    if schedule_ids:
        rows = await repo.schedules_by_id(conn, schedule_ids)
        overrides = await repo.overrides_of(conn, list(rows), since)
        for sid, row in rows.items():
            schedules[sid] = row.schedule(overrides.get(sid, ()))
            for rotation in schedules[sid].rotations:
                clinician_ids.update(rotation.participants)
            clinician_ids.update(o.clinician_id for o in schedules[sid].overrides)
    return Roster(schedules, await repo.clinicians_by_id(conn, clinician_ids))
