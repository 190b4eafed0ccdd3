"""HTTP bodies of the alerts service (the public contract, extended)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.alerts.rows import (
    AckTimesRow,
    AlertRow,
    AttemptRow,
    CountRow,
    OncallRow,
    PageRow,
    PatientRow,
    SiteMonitoringRow,
)
from shared.validation import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    SPACE,
    NoNul,
    Text,
    WholeNumber,
)

Note = Annotated[str, StringConstraints(strict=True, max_length=5000), NoNul]
StatusName = Literal["open", "acknowledged", "resolved"]
SeverityName = Literal["critical", "high", "warning"]
KindName = Literal[
    "suicide_risk", "worsening", "missed_checkins", "dose_deferred", "no_show", "pipeline_stalled"
]


# What a webhook URL is, said once for the validator and the OpenAPI document: http(s), a
# host of letters, digits, dots and hyphens (a DNS name or IPv4 address), a port 0-65535,
# then a path, query or fragment without spaces or NUL.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
WEBHOOK_URL_PATTERN = rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?([/?#][^{SPACE}\u0000]*)?$"
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)


def _http_url(value: str) -> str:
    if not _WEBHOOK_URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    del port
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(strict=True, max_length=2048),
    NoNul,
    AfterValidator(_http_url),
    Field(
        json_schema_extra={
            "pattern": WEBHOOK_URL_PATTERN,
            "examples": ["http://127.0.0.1:9900/page"],
        }
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipientIn(Strict):
    name: Text
    webhook_url: WebhookUrl


class ScheduleTargetIn(Strict):
    schedule_id: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
    ]


class ClinicianTargetIn(Strict):
    clinician_id: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
    ]


# A tier names somebody: static recipients, targets, or both (said in the schema too).
_SOMEBODY: Any = {
    "anyOf": [
        {"required": ["recipients"], "properties": {"recipients": {"minItems": 1}}},
        {"required": ["targets"], "properties": {"targets": {"minItems": 1}}},
    ]
}


class TierIn(Strict):
    model_config = ConfigDict(json_schema_extra=_SOMEBODY)

    targets: list[ScheduleTargetIn | ClinicianTargetIn] = Field(
        default_factory=list,
        max_length=20,
        description="schedules and clinicians, resolved to whoever is on call when paged",
    )
    recipients: list[RecipientIn] = Field(
        default_factory=list,
        max_length=20,
        validate_default=True,
        description="static webhook recipients",
    )
    escalate_after_s: Annotated[int, Field(strict=True, ge=1, le=7 * 86400), WholeNumber] | None = (
        Field(
            default=None,
            description="seconds without acknowledgement before the next tier is paged too "
            "(default ESCALATE_AFTER_S)",
        )
    )

    @field_validator("recipients")
    @classmethod
    def _somebody(cls, value: list[RecipientIn], info: ValidationInfo) -> list[RecipientIn]:
        if not value and not info.data.get("targets"):
            raise ValueError("a tier needs at least one recipient or target")
        return value


_PAGED: Any = {"name": "Dr. On Call", "webhook_url": "http://127.0.0.1:9900/page"}


class OncallIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tiers": [{"recipients": [_PAGED]}]}]}
    )
    tiers: list[TierIn] = Field(min_length=1, max_length=10)

    def to_json(self, default_escalate_after_s: int) -> list[dict[str, Any]]:
        return [
            {
                "recipients": [r.model_dump() for r in t.recipients],
                "targets": [x.model_dump() for x in t.targets],
                "escalate_after_s": t.escalate_after_s or default_escalate_after_s,
            }
            for t in self.tiers
        ]


class RecipientOut(BaseModel):
    name: str
    webhook_url: str


class TierOut(BaseModel):
    recipients: list[RecipientOut]
    targets: list[dict[str, str]] = Field(
        default_factory=list, description="[{schedule_id} | {clinician_id}]"
    )
    escalate_after_s: int


class OncallOut(BaseModel):
    site_id: str
    tiers: list[TierOut]
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: OncallRow) -> OncallOut:
        return cls.model_validate(asdict(row))


class ActorIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"by": "Dr. Rivera", "note": "called the patient"}]}
    )
    by: Text
    note: Note | None = None


class AlertOut(BaseModel):
    alert_id: str
    patient_id: str
    site_id: str
    kind: KindName
    severity: SeverityName
    status: StatusName
    raised_at: datetime
    acknowledged_at: datetime | None
    escalation_level: int
    resolved_at: datetime | None
    reasons: list[str]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    inhibited_by: str | None = Field(description="the critical alert holding back its pages")
    acknowledged_by: str | None
    resolved_by: str | None
    next_check_at: datetime | None = Field(description="when escalation looks at it again")

    @classmethod
    def fields_of(cls, row: AlertRow) -> dict[str, Any]:
        return {
            "alert_id": str(row.alert_id),
            "patient_id": row.patient_id,
            "site_id": row.site_id,
            "kind": row.kind,
            "severity": row.severity,
            "status": row.status,
            "raised_at": row.raised_at,
            "acknowledged_at": row.acknowledged_at,
            "escalation_level": row.escalation_level,
            "resolved_at": row.resolved_at,
            "reasons": list(row.reasons),
            "occurrences": row.occurrences,
            "first_seen_at": row.first_seen_at,
            "last_seen_at": row.last_seen_at,
            "inhibited_by": row.held_by,
            "acknowledged_by": row.acknowledged_by,
            "resolved_by": row.resolved_by,
            "next_check_at": row.next_check_at,
        }

    @classmethod
    def from_row(cls, row: AlertRow) -> AlertOut:
        return cls.model_validate(cls.fields_of(row))


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: float
    http_status: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: AttemptRow) -> AttemptOut:
        return cls(
            attempt=row.attempt,
            started_at=row.started_at,
            duration_ms=row.duration_ms,
            http_status=row.http_status,
            error=row.error,
        )


class PageOut(BaseModel):
    page_id: str
    tier: int = Field(description="1 = first tier")
    round: int = Field(description="0 for a tier's first page, n for the n-th re-page")
    reason: str = Field(description="initial | escalation | repeat | ack_timeout | ack_notice")
    recipient_name: str
    channel: Literal["webhook", "sms", "email"]
    webhook_url: str | None = Field(description="a webhook page's URL (null for SMS, e-mail)")
    clinician_id: str | None = Field(description="the clinician paged (null: a static recipient)")
    contact_method: str | None
    idempotency_key: str
    status: Literal["pending", "delivered", "cancelled"]
    created_at: datetime
    delivered_at: datetime | None
    cancelled_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None
    attempts: list[AttemptOut]

    @classmethod
    def from_row(cls, row: PageRow, attempts: list[AttemptOut]) -> PageOut:
        return cls(
            page_id=str(row.page_id),
            tier=row.tier + 1,
            round=row.round,
            reason=row.reason,
            recipient_name=row.recipient_name,
            channel=row.channel,
            webhook_url=row.webhook_url,
            clinician_id=row.clinician_id,
            contact_method=row.contact_method,
            idempotency_key=row.idempotency_key,
            status=row.status,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            cancelled_at=row.cancelled_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            last_error=row.last_error,
            attempts=attempts,
        )


class Audit(BaseModel):
    by: str
    at: datetime
    note: str | None = Field(
        description="the note left with the step, for clinicians only: null when none was "
        "left, or when the caller is not a clinician (then note_withheld is true)"
    )
    note_withheld: bool = Field(
        description="a note was left but is not shown: only the clinician role reads notes"
    )


class AlertDetail(AlertOut):
    acknowledged: Audit | None
    resolved: Audit | None
    policy: list[TierOut] | None = Field(description="the on-call tiers snapshotted at opening")
    policy_site: str = Field(
        description="whose on-call `policy` is: the alert's `site_id`, or `_network` for a "
        "critical alert that opened while its site had nobody on call and pages the network "
        "ops on-call in its place (until the site's on-call is put in place)"
    )
    pages: list[PageOut]

    @classmethod
    def from_row(
        cls,
        row: AlertRow | Mapping[str, Any],
        pages: list[PageOut] | None = None,
        notes: Mapping[str, str | None] | None = None,
    ) -> AlertDetail:
        """``notes``: the steps' notes in clear text, by step; None withholds them. ``row``
        is the repository's, or any mapping of the alert's columns."""
        alert = row if isinstance(row, AlertRow) else AlertRow.of(row)
        steps = {
            "acknowledged": (alert.acknowledged_at, alert.acknowledged_by, alert.acknowledged_note),
            "resolved": (alert.resolved_at, alert.resolved_by, alert.resolved_note),
        }

        def audit(step: str) -> Audit | None:
            at, by, note = steps[step]
            if at is None:
                return None
            assert by is not None
            return Audit(
                by=by,
                at=at,
                note=notes.get(step) if notes is not None else None,
                note_withheld=note is not None and notes is None,
            )

        return cls.model_validate(
            {
                **AlertOut.fields_of(alert),
                "acknowledged": audit("acknowledged"),
                "resolved": audit("resolved"),
                "policy": alert.policy,
                "policy_site": alert.policy_site or alert.site_id,
                "pages": pages or [],
            }
        )


class SeverityCounts(BaseModel):
    critical: int = 0
    high: int = 0
    warning: int = 0
    total: int = 0


class SiteCounts(BaseModel):
    site_id: str
    open: SeverityCounts
    acknowledged: SeverityCounts
    resolved: SeverityCounts


class AlertCounts(BaseModel):
    sites: list[SiteCounts]

    @classmethod
    def from_rows(cls, rows: Sequence[CountRow]) -> AlertCounts:
        sites: dict[str, dict[str, dict[str, int]]] = {}
        for r in rows:
            site = sites.setdefault(
                r.site_id, {s: {"total": 0} for s in ("open", "acknowledged", "resolved")}
            )
            bucket = site[r.status]
            bucket[r.severity] = bucket.get(r.severity, 0) + r.n
            bucket["total"] += r.n
        return cls(
            sites=[
                SiteCounts.model_validate({"site_id": site_id, **by_status})
                for site_id, by_status in sites.items()
            ]
        )


class MonitoringOut(BaseModel):
    patient_id: str
    site_id: str
    monitored: bool
    started_at: datetime | None
    discharged_at: datetime | None
    next_due_at: datetime | None
    missed_after: datetime | None = Field(description="the deadline: due time + grace")
    consecutive_misses: int
    total_misses: int
    last_checkin_at: datetime | None
    last_missed_at: datetime | None

    @classmethod
    def from_row(cls, row: PatientRow, monitored: bool) -> MonitoringOut:
        return cls(
            patient_id=row.patient_id,
            site_id=row.site_id,
            monitored=monitored,
            started_at=row.started_at,
            discharged_at=row.discharged_at,
            next_due_at=row.next_due_at if monitored else None,
            missed_after=row.deadline_at,
            consecutive_misses=row.consecutive_misses,
            total_misses=row.total_misses,
            last_checkin_at=row.last_checkin_at,
            last_missed_at=row.last_missed_at,
        )


class SiteMonitoring(BaseModel):
    site_id: str
    monitored: int = Field(description="patients whose check-ins are being watched")
    missing_checkins: int = Field(description="... of whom with at least one miss in a row")

    @classmethod
    def from_row(cls, row: SiteMonitoringRow) -> SiteMonitoring:
        return cls(
            site_id=row.site_id, monitored=row.monitored, missing_checkins=row.missing_checkins
        )


class AckTimes(BaseModel):
    site_id: str | None = Field(description="null for the whole network")
    severity: str
    days: int
    raised: int
    acknowledged: int
    p50_s: float | None = Field(description="median time from raise to acknowledgement")
    p90_s: float | None

    @classmethod
    def from_row(cls, row: AckTimesRow, severity: str, days: int) -> AckTimes:
        return cls.model_validate({**asdict(row), "severity": severity, "days": days})
