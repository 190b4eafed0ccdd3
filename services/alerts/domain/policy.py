"""The alert policy: which observations raise which alert (docs/domain.md "Alert policy").

Each function turns one observation (an intake screen, a check-in, a run of missed
check-ins, a deferred dose, an appointment change) into the signals it raises.
A signal is not yet an alert: ``dedup.admit`` decides whether it opens one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.alerts.domain.model import SEVERITY_OF, Kind, Severity


@dataclass(frozen=True)
class Signal:
    kind: Kind
    reasons: tuple[str, ...]
    observed_at: datetime

    @property
    def severity(self) -> Severity:
        return SEVERITY_OF[self.kind]


def from_screen(*, suicide_risk: str, phq9_item9_positive: bool, at: datetime) -> list[Signal]:
    """Intake: a high C-SSRS triage or a positive PHQ-9 item 9 is a suicide risk."""
    reasons = []
    if suicide_risk == "high":
        reasons.append("cssrs_high")
    if phq9_item9_positive:
        reasons.append("phq9_item9_positive")
    return [Signal(Kind.suicide_risk, tuple(reasons), at)] if reasons else []


def from_safety_signal(reasons: tuple[str, ...], at: datetime) -> list[Signal]:
    """The safety lane's signal (docs/domain.md, "Safety signals first"): the same critical
    suicide-risk occurrence that ``from_checkin`` or ``from_screen`` gives for it."""
    return [Signal(Kind.suicide_risk, reasons, at)] if reasons else []


def from_checkin(
    *,
    suicidal_ideation: bool,
    phq9_item9_positive: bool,
    worsening: bool,
    worsening_reasons: tuple[str, ...],
    at: datetime,
) -> list[Signal]:
    """Check-in: suicidal ideation or item 9 is critical; the worsening verdict is high."""
    signals = []
    reasons = []
    if suicidal_ideation:
        reasons.append("suicidal_ideation")
    if phq9_item9_positive:
        reasons.append("phq9_item9_positive")
    if reasons:
        signals.append(Signal(Kind.suicide_risk, tuple(reasons), at))
    if worsening:
        signals.append(Signal(Kind.worsening, worsening_reasons or ("worsening",), at))
    return signals


def from_misses(consecutive: int, threshold: int, at: datetime) -> list[Signal]:
    """Each miss at or beyond the threshold is an occurrence of ``missed_checkins``."""
    if threshold < 1 or consecutive < threshold:
        return []
    return [Signal(Kind.missed_checkins, (f"consecutive_misses_{consecutive}",), at)]


def from_deferral(reasons: tuple[str, ...], at: datetime) -> list[Signal]:
    """A dose deferred for pre-dose vitals."""
    return [Signal(Kind.dose_deferred, reasons or ("deferred_vitals",), at)]


def from_appointment_change(*, status: str, kind: str, at: datetime) -> list[Signal]:
    """A no-show, of any appointment kind."""
    if status != "no_show":
        return []
    return [Signal(Kind.no_show, (f"no_show_{kind}",), at)]


def starts_monitoring(*, status: str, kind: str) -> bool:
    """A completed dosing session (induction or maintenance) starts monitoring."""
    return status == "completed" and kind in ("dosing", "maintenance")
