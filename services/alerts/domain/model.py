"""The alerts vocabulary: kinds, severities, statuses and a site's on-call policy.

docs/domain.md ("Kinds, severities, pages"): every kind has one severity; critical and high alerts
page the site's on-call tiers, warnings are for the dashboard only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.alerts.domain.rosters import ClinicianTarget, ScheduleTarget


class Kind(StrEnum):
    suicide_risk = "suicide_risk"
    worsening = "worsening"
    missed_checkins = "missed_checkins"
    dose_deferred = "dose_deferred"
    no_show = "no_show"
    # a stage of the event pipeline made no progress (services/alerts/watchdog.py); pages
    # the network ops on-call (PUT /v1/oncall/network), never a site's
    pipeline_stalled = "pipeline_stalled"


# The network's own "site" and "patient" of a pipeline_stalled alert: no client-chosen id
# can start with "_" (shared/validation.py ID_PATTERN), so neither is ever a real one.
NETWORK_SITE = "_network"
PIPELINE_PATIENT = "_pipeline"


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    warning = "warning"


class Status(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


SEVERITY_OF: dict[Kind, Severity] = {
    Kind.suicide_risk: Severity.critical,
    Kind.worsening: Severity.high,
    Kind.missed_checkins: Severity.high,
    Kind.dose_deferred: Severity.warning,
    Kind.no_show: Severity.warning,
    Kind.pipeline_stalled: Severity.critical,
}

RANK: dict[Severity, int] = {Severity.warning: 0, Severity.high: 1, Severity.critical: 2}

# Severities that page on-call (warnings are shown, never paged).
PAGING: frozenset[Severity] = frozenset({Severity.critical, Severity.high})


def pages(severity: Severity) -> bool:
    return severity in PAGING


@dataclass(frozen=True)
class Recipient:
    name: str
    webhook_url: str


@dataclass(frozen=True)
class Tier:
    """Static webhook recipients, and targets (schedules, clinicians) resolved to the
    clinicians on call when the tier is paged (services/alerts/domain/rosters.py)."""

    recipients: tuple[Recipient, ...]
    escalate_after_s: int
    targets: tuple[ScheduleTarget | ClinicianTarget, ...] = ()


@dataclass(frozen=True)
class OncallPolicy:
    """A site's tiers, tier 1 first; no tiers means nobody can be paged."""

    tiers: tuple[Tier, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.tiers

    def tier_of(self, name: str) -> int | None:
        """The first tier (0-based) with a recipient of this name (case and spaces ignored)."""
        wanted = " ".join(name.split()).casefold()
        for i, tier in enumerate(self.tiers):
            if any(" ".join(r.name.split()).casefold() == wanted for r in tier.recipients):
                return i
        return None
