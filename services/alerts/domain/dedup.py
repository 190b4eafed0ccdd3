"""One open alert per patient and kind, and inhibition under a critical suicide risk.

A signal for a (patient, kind) that already has an unresolved alert is a repeat: it
updates that alert (count, last seen) and pages nobody. Otherwise it opens a new alert.
While a critical ``suicide_risk`` alert is unresolved for a patient, the patient's
lower-severity alerts are recorded but not paged (the critical page already reaches
on-call); when that alert resolves, the ones it held back are released.

``opening`` says what a new alert does about paging: page now (the escalation rule,
services/alerts/domain/escalation.py, picks the tier), page the network ops on-call
in place of a site with nobody on call (critical only), hold its pages back as
inhibited, record that nobody is on call, or nothing (a warning never pages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.alerts.domain.model import RANK, Kind, Severity, Status, pages
from services.alerts.domain.policy import Signal


@dataclass(frozen=True)
class OpenAlert:
    """An unresolved alert of the patient, as admission needs to see it."""

    alert_id: str
    kind: Kind
    severity: Severity
    status: Status
    inhibited_by: str | None = None


@dataclass(frozen=True)
class Admission:
    action: Literal["open", "repeat"]
    # The alert a repeat updates.
    alert_id: str | None = None
    # For a new alert: the critical alert that holds back its pages, if any.
    inhibited_by: str | None = None
    # Alerts a new critical suicide_risk alert now holds back.
    inhibit: tuple[str, ...] = ()


def _suppresses(a: OpenAlert) -> bool:
    return (
        a.kind is Kind.suicide_risk
        and a.severity is Severity.critical
        and a.status is not Status.resolved
    )


def admit(signal: Signal, open_alerts: Sequence[OpenAlert]) -> Admission:
    """What a signal does, given the patient's unresolved alerts."""
    live = [a for a in open_alerts if a.status is not Status.resolved]
    for a in live:
        if a.kind is signal.kind:
            return Admission("repeat", alert_id=a.alert_id)
    suppressor = next((a for a in live if _suppresses(a)), None)
    if signal.kind is Kind.suicide_risk and signal.severity is Severity.critical:
        held = tuple(
            a.alert_id
            for a in live
            if RANK[a.severity] < RANK[Severity.critical] and a.inhibited_by is None
        )
        return Admission("open", inhibit=held)
    if suppressor is not None and RANK[signal.severity] < RANK[Severity.critical]:
        return Admission("open", inhibited_by=suppressor.alert_id)
    return Admission("open")


def released_by(resolved_id: str, open_alerts: Sequence[OpenAlert]) -> tuple[str, ...]:
    """Alerts to release (page from tier 1) when ``resolved_id`` resolves: the unresolved
    ones it held back. (One unresolved alert per kind: no other suicide_risk can hold them.)"""
    return tuple(
        a.alert_id
        for a in open_alerts
        if a.inhibited_by == resolved_id and a.status is not Status.resolved
    )


Paging = Literal["page_now", "page_network", "inhibited", "nobody_on_call", "silent"]


@dataclass(frozen=True)
class Opening:
    """What a newly opened alert does about paging (``admit`` said ``open``)."""

    paging: Paging

    @property
    def pages_on_call(self) -> bool:
        """Its pages go out now (``alert.raised``'s ``pages_on_call``)."""
        return self.paging in ("page_now", "page_network")


def falls_back_to_network(severity: Severity) -> bool:
    """A critical alert at a site with nobody on call pages the network ops on-call rather
    than nobody (a suicide-risk alert must reach someone); a high one waits for the site."""
    return severity is Severity.critical


def opening(
    severity: Severity, admission: Admission, *, oncall: bool, network_oncall: bool = False
) -> Opening:
    """A new alert of ``severity``, admitted as ``admission``, at a site with (``oncall``)
    or without an on-call policy, in a network with (``network_oncall``) or without an ops
    on-call policy."""
    if not pages(severity):
        return Opening("silent")
    if admission.inhibited_by is not None:
        return Opening("inhibited")
    if oncall:
        return Opening("page_now")
    if network_oncall and falls_back_to_network(severity):
        return Opening("page_network")
    return Opening("nobody_on_call")
