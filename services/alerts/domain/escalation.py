"""Escalation: whom to page now, and when to look at the alert again.

``decide(alert, policy, now)`` is the whole rule (docs/domain.md "On-call tiers and escalation"):

- an open alert pages tier 1 at once; if nobody acknowledges within a tier's
  ``escalate_after_s`` the next tier is paged too, and so on. Exactly at
  ``escalate_after_s`` counts as elapsed. After downtime, every tier whose time has
  come is paged at once (the schedule is kept from the first page, not from ``now``);
- once the last tier is paged and its ``escalate_after_s`` passes unacknowledged, the
  last tier is paged again, every ``escalate_after_s``, until someone acknowledges;
- an acknowledged alert pages nobody more, except a critical one that stays unresolved
  for ``ack_repage_after``: the acknowledger's tier is paged again, and again after
  each further ``ack_repage_after`` (acknowledge-and-forget is not an option);
- a resolved, inhibited or warning alert, or one with nobody on call, pages nobody;
- a tier that would reach nobody now (``unreachable``: nobody on shift, or everyone in
  quiet hours for a page that is not critical; services/alerts/alerting/people.py) is
  skipped at once: the next tier is paged in the same decision, never after the
  skipped tier's ``escalate_after_s``.

``stand_in(...)``: when every tier a decision pages for a critical alert reaches nobody,
the network ops on-call's tier 1 is paged in their place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from services.alerts.domain.model import OncallPolicy, Severity, Status, pages

PageReason = Literal["initial", "escalation", "repeat", "ack_timeout"]


@dataclass(frozen=True)
class EscalationState:
    severity: Severity
    status: Status
    inhibited: bool = False
    tiers_paged: int = 0  # tiers paged so far (tier 1 .. tier tiers_paged)
    last_escalated_at: datetime | None = None  # when the latest tier was due
    acknowledged_at: datetime | None = None
    acknowledged_tier: int | None = None  # 0-based tier of the acknowledger
    repages: int = 0  # pages after the first round (repeat, ack timeout)
    last_repaged_at: datetime | None = None  # last re-page, or a late first page of the last tier


@dataclass(frozen=True)
class PageOrder:
    tier: int  # 0-based
    round: int  # 0 for the first page of a tier, n for the n-th re-page of the alert
    reason: PageReason


@dataclass(frozen=True)
class Decision:
    state: EscalationState
    pages: tuple[PageOrder, ...] = field(default=())
    next_check_at: datetime | None = None

    @property
    def escalation_level(self) -> int:
        return escalation_level(self.state)


def escalation_level(state: EscalationState) -> int:
    """0 until tier 2 is paged, then the 0-based index of the highest tier paged."""
    return max(state.tiers_paged - 1, 0)


def _after(tier_s: int) -> timedelta:
    return timedelta(seconds=tier_s)


def decide(
    alert: EscalationState,
    policy: OncallPolicy,
    now: datetime,
    *,
    ack_repage_after: timedelta,
    unreachable: frozenset[int] | set[int] = frozenset(),
) -> Decision:
    if (
        alert.status is Status.resolved
        or alert.inhibited
        or not pages(alert.severity)
        or policy.empty
    ):
        return Decision(alert)
    if alert.status is Status.acknowledged:
        return _acknowledged(alert, policy, now, ack_repage_after)
    return _open(alert, policy, now, unreachable)


def _open(
    alert: EscalationState,
    policy: OncallPolicy,
    now: datetime,
    unreachable: frozenset[int] | set[int],
) -> Decision:
    tiers = policy.tiers
    orders: list[PageOrder] = []
    paged = min(alert.tiers_paged, len(tiers))
    last = alert.last_escalated_at
    if paged == 0 or last is None:
        orders.append(PageOrder(0, 0, "initial"))
        paged, last = 1, now
    while paged < len(tiers):
        due = last + _after(tiers[paged - 1].escalate_after_s)
        if due <= now:
            last = due
        elif paged - 1 in unreachable:
            last = now  # the tier paged last reaches nobody: the next one now
        else:
            break
        orders.append(PageOrder(paged, 0, "escalation"))
        paged += 1
    state = replace(alert, tiers_paged=paged, last_escalated_at=last)
    if paged < len(tiers):
        return Decision(state, tuple(orders), last + _after(tiers[paged - 1].escalate_after_s))
    # every tier paged: the last one is paged again each escalate_after_s until acknowledged
    every = _after(tiers[-1].escalate_after_s)
    if orders and last < now:
        # The last tier is first paged now, late (catch-up after downtime): its repeats
        # count from this page, so it is not paged twice at once (nor on a re-decision).
        state = replace(state, last_repaged_at=now)
    since = max(last, state.last_repaged_at) if state.last_repaged_at else last
    if since + every <= now:
        n = state.repages + 1
        orders.append(PageOrder(len(tiers) - 1, n, "repeat"))
        state = _repaged(state, n, now)
        since = now
    return Decision(state, tuple(orders), since + every)


def _acknowledged(
    alert: EscalationState, policy: OncallPolicy, now: datetime, after: timedelta
) -> Decision:
    if alert.severity is not Severity.critical or alert.acknowledged_at is None:
        return Decision(alert)
    since = alert.acknowledged_at
    if alert.last_repaged_at is not None and alert.last_repaged_at > since:
        since = alert.last_repaged_at
    if since + after > now:
        return Decision(alert, (), since + after)
    tier = alert.acknowledged_tier
    if tier is None or not 0 <= tier < len(policy.tiers):
        tier = min(max(alert.tiers_paged - 1, 0), len(policy.tiers) - 1)
    n = alert.repages + 1
    return Decision(_repaged(alert, n, now), (PageOrder(tier, n, "ack_timeout"),), now + after)


def taken_over(alert: EscalationState) -> EscalationState:
    """An open alert whose site's own on-call takes it over from the network's tiers (or
    from nobody): escalation starts over on the new tiers, tier 1 first."""
    return replace(alert, tiers_paged=0, last_escalated_at=None, repages=0, last_repaged_at=None)


def stand_in(
    severity: Severity, orders: tuple[PageOrder, ...], *, reached: bool, own_policy: bool
) -> PageOrder | None:
    """The network ops on-call's page when a decision's ``orders`` for a critical alert on
    its site's own policy (``own_policy``) reached nobody (``reached`` false): its tier 1,
    in the round and for the reason of the last order it stands in for (which names the
    page, ``stand_in_via``). A high alert's reaching nobody is logged and counted only."""
    if not orders or reached or not own_policy or severity is not Severity.critical:
        return None
    last = orders[-1]
    return PageOrder(0, last.round, last.reason)


def stand_in_via(network: str, orders: tuple[PageOrder, ...]) -> str:
    """What a stand-in page's idempotency key names beside its round: the network, and
    the site tier it stands in for (each tier's page of a round is decided once)."""
    return f"{network}-for-t{orders[-1].tier + 1}"


def _repaged(state: EscalationState, n: int, now: datetime) -> EscalationState:
    return replace(state, repages=n, last_repaged_at=now)
