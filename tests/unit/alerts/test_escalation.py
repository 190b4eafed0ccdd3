"""Escalation (docs/domain.md, "On-call tiers and escalation"; escalation.py): whom to
page now and when to look again, on a fake clock. Policy: three tiers escalating after
900 s, 600 s, 300 s."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.alerts.domain.escalation import (
    Decision,
    EscalationState,
    PageOrder,
    decide,
    escalation_level,
    stand_in,
    stand_in_via,
    taken_over,
)
from services.alerts.domain.model import OncallPolicy, Severity, Status
from tests.unit.alerts.builders import T0, at, oncall, sec

POLICY = oncall(900, 600, 300)
ACK_REPAGE = timedelta(minutes=30)


def run(state: EscalationState, now: datetime, policy: OncallPolicy = POLICY) -> Decision:
    return decide(state, policy, now, ack_repage_after=ACK_REPAGE)


def new(severity: Severity = Severity.critical) -> EscalationState:
    return EscalationState(severity=severity, status=Status.open)


def paged_all() -> Decision:
    """The alert after tiers 1, 2 and 3 were paged on schedule (at 0, 900, 1500)."""
    d = run(new(), at(0))
    d = run(d.state, at(900))
    return run(d.state, at(1500))


def acknowledged(state: EscalationState, when: datetime, tier: int | None) -> EscalationState:
    return EscalationState(
        severity=state.severity,
        status=Status.acknowledged,
        tiers_paged=state.tiers_paged,
        last_escalated_at=state.last_escalated_at,
        acknowledged_at=when,
        acknowledged_tier=tier,
        repages=state.repages,
        last_repaged_at=state.last_repaged_at,
    )


# --- the open alert: tier by tier -----------------------------------------------------


@pytest.mark.parametrize("severity", [Severity.critical, Severity.high])
def test_a_new_open_alert_pages_tier1_at_once(severity: Severity) -> None:
    d = run(new(severity), T0)
    assert d.pages == (PageOrder(0, 0, "initial"),)
    assert d.next_check_at == at(900)
    assert d.state.tiers_paged == 1
    assert d.state.last_escalated_at == T0
    assert d.escalation_level == 0


def test_one_second_before_the_tier_time_nobody_more_is_paged() -> None:
    first = run(new(), T0)
    d = run(first.state, at(899))
    assert d.pages == ()
    assert d.next_check_at == at(900)
    assert d.state == first.state


def test_exactly_at_escalate_after_the_next_tier_is_paged() -> None:
    d = run(run(new(), T0).state, at(900))
    assert d.pages == (PageOrder(1, 0, "escalation"),)
    assert d.next_check_at == at(1500)
    assert d.state.tiers_paged == 2
    assert d.state.last_escalated_at == at(900)
    assert d.escalation_level == 1


def test_the_third_tier_follows_the_second_tiers_delay() -> None:
    d = run(run(new(), T0).state, at(900))
    assert run(d.state, at(1499)).pages == ()
    d = run(d.state, at(1500))
    assert d.pages == (PageOrder(2, 0, "escalation"),)
    assert d.state.tiers_paged == 3
    assert d.state.last_escalated_at == at(1500)
    assert d.escalation_level == 2
    assert d.next_check_at == at(1800)


def test_after_the_last_tier_it_is_paged_again_every_escalate_after() -> None:
    d = paged_all()
    assert run(d.state, at(1799)).pages == ()
    d = run(d.state, at(1800))
    assert d.pages == (PageOrder(2, 1, "repeat"),)
    assert d.next_check_at == at(2100)
    assert d.state.repages == 1
    assert d.state.last_repaged_at == at(1800)
    assert d.escalation_level == 2
    assert run(d.state, at(2099)).pages == ()
    d = run(d.state, at(2100))
    assert d.pages == (PageOrder(2, 2, "repeat"),)
    assert d.next_check_at == at(2400)
    assert d.state.repages == 2


def test_repeats_missed_during_downtime_collapse_into_one() -> None:
    d = run(paged_all().state, at(1800))
    d = run(d.state, at(5000))
    assert d.pages == (PageOrder(2, 2, "repeat"),)
    assert d.next_check_at == at(5300)


def test_catch_up_after_downtime_pages_every_due_tier_at_once_on_schedule() -> None:
    d = run(run(new(), T0).state, at(2000))
    assert d.pages == (PageOrder(1, 0, "escalation"), PageOrder(2, 0, "escalation"))
    assert d.state.tiers_paged == 3
    # the schedule is kept from the first page, not from now
    assert d.state.last_escalated_at == at(1500)
    assert d.escalation_level == 2
    # the last tier, just paged, gets its full escalate_after before a repeat
    assert d.next_check_at == at(2300)


def test_catch_up_never_pages_a_tier_twice_in_one_decision() -> None:
    for late in (1500, 1800, 2000, 10_000):
        d = run(run(new(), T0).state, at(late))
        assert len({p.tier for p in d.pages}) == len(d.pages), late


def test_after_catch_up_the_last_tier_repeats_one_full_interval_later() -> None:
    d = run(run(new(), T0).state, at(2000))
    # re-deciding before then (another event, a retry) pages nobody
    assert run(d.state, at(2000)).pages == ()
    assert run(d.state, at(2299)).pages == ()
    d = run(d.state, at(2300))
    assert d.pages == (PageOrder(2, 1, "repeat"),)
    assert d.next_check_at == at(2600)


def test_catch_up_of_only_some_tiers_keeps_the_next_on_schedule() -> None:
    d = run(run(new(), T0).state, at(1200))
    assert d.pages == (PageOrder(1, 0, "escalation"),)
    assert d.state.last_escalated_at == at(900)
    assert d.next_check_at == at(1500)


def test_an_alert_first_seen_late_starts_its_schedule_at_its_first_page() -> None:
    d = run(new(), at(5000))
    assert d.pages == (PageOrder(0, 0, "initial"),)
    assert d.next_check_at == at(5900)


def test_deciding_twice_at_the_same_instant_pages_once() -> None:
    for now in (0, 900, 1500, 1800):
        d = run(new(), T0)
        for t in (900, 1500, 1800):
            if t <= now:
                d = run(d.state, at(t))
        assert run(d.state, at(now)).pages == ()


# --- single tier -----------------------------------------------------------------------


def test_a_single_tier_policy_pages_it_then_repeats_it() -> None:
    policy = oncall(600)
    d = run(new(), T0, policy)
    assert d.pages == (PageOrder(0, 0, "initial"),)
    assert d.next_check_at == at(600)
    assert d.escalation_level == 0
    assert run(d.state, at(599), policy).pages == ()
    d = run(d.state, at(600), policy)
    assert d.pages == (PageOrder(0, 1, "repeat"),)
    assert d.next_check_at == at(1200)
    d = run(d.state, at(1200), policy)
    assert d.pages == (PageOrder(0, 2, "repeat"),)
    assert d.escalation_level == 0


# --- acknowledged -----------------------------------------------------------------------


def test_an_acknowledged_high_alert_pages_nobody_and_needs_no_check() -> None:
    state = acknowledged(run(new(Severity.high), T0).state, at(100), 0)
    for t in (100, 1000, 100_000):
        d = run(state, at(t))
        assert d.pages == ()
        assert d.next_check_at is None
        assert d.state == state


def test_an_acknowledged_critical_alert_repages_the_acknowledger_after_the_timeout() -> None:
    ack = at(100)
    state = acknowledged(run(new(), T0).state, ack, 0)
    d = run(state, ack + ACK_REPAGE - sec(1))
    assert d.pages == ()
    assert d.next_check_at == ack + ACK_REPAGE
    assert d.state == state

    now = ack + ACK_REPAGE
    d = run(state, now)
    assert d.pages == (PageOrder(0, 1, "ack_timeout"),)
    assert d.next_check_at == now + ACK_REPAGE
    assert d.state.repages == 1
    assert d.state.last_repaged_at == now
    assert d.state.status is Status.acknowledged

    assert run(d.state, now + ACK_REPAGE - sec(1)).pages == ()
    d = run(d.state, now + ACK_REPAGE)
    assert d.pages == (PageOrder(0, 2, "ack_timeout"),)
    assert d.next_check_at == now + 2 * ACK_REPAGE


def test_a_late_ack_timeout_counts_the_next_one_from_the_repage() -> None:
    ack = at(100)
    state = acknowledged(run(new(), T0).state, ack, 0)
    late = ack + ACK_REPAGE + sec(500)
    d = run(state, late)
    assert d.pages == (PageOrder(0, 1, "ack_timeout"),)
    assert d.next_check_at == late + ACK_REPAGE


def test_an_acknowledged_alert_does_not_escalate_further() -> None:
    state = acknowledged(run(new(), T0).state, at(100), 0)
    d = run(state, at(900))
    assert d.pages == ()
    assert d.state.tiers_paged == 1


@pytest.mark.parametrize("tier", [0, 1, 2])
def test_the_ack_timeout_pages_the_acknowledgers_tier(tier: int) -> None:
    state = acknowledged(paged_all().state, at(1600), tier)
    d = run(state, at(1600) + ACK_REPAGE)
    assert d.pages == (PageOrder(tier, 1, "ack_timeout"),)


def test_ack_timeout_rounds_continue_after_repeats_while_open() -> None:
    d = run(paged_all().state, at(1800))  # repeat round 1
    state = acknowledged(d.state, at(1900), 2)
    d = run(state, at(1900) + ACK_REPAGE)
    assert d.pages == (PageOrder(2, 2, "ack_timeout"),)


@pytest.mark.parametrize(
    ("tiers_paged", "ack_tier", "expected"),
    [
        (1, None, 0),
        (2, None, 1),
        (3, None, 2),
        (2, 7, 1),
        (2, -1, 1),
        (3, 3, 2),
        (0, None, 0),
        (9, None, 2),  # more tiers paged than the policy has now: its last tier
    ],
)
def test_an_unknown_acknowledger_tier_falls_back_to_the_highest_tier_paged(
    tiers_paged: int, ack_tier: int | None, expected: int
) -> None:
    state = EscalationState(
        severity=Severity.critical,
        status=Status.acknowledged,
        tiers_paged=tiers_paged,
        last_escalated_at=T0,
        acknowledged_at=T0,
        acknowledged_tier=ack_tier,
    )
    assert run(state, T0 + ACK_REPAGE).pages == (PageOrder(expected, 1, "ack_timeout"),)


def test_an_acknowledged_critical_alert_without_ack_time_pages_nobody() -> None:
    state = EscalationState(
        severity=Severity.critical, status=Status.acknowledged, tiers_paged=1, last_escalated_at=T0
    )
    d = run(state, at(100_000))
    assert d == Decision(state)


# --- nobody is paged ----------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        EscalationState(Severity.critical, Status.resolved),
        EscalationState(Severity.critical, Status.resolved, tiers_paged=2, last_escalated_at=T0),
        EscalationState(Severity.critical, Status.open, inhibited=True),
        EscalationState(Severity.high, Status.open, inhibited=True),
        EscalationState(
            Severity.critical,
            Status.acknowledged,
            inhibited=True,
            acknowledged_at=T0,
            acknowledged_tier=0,
        ),
        EscalationState(Severity.warning, Status.open),
        EscalationState(Severity.warning, Status.acknowledged, acknowledged_at=T0),
    ],
    ids=[
        "resolved",
        "resolved-after-pages",
        "inhibited-critical",
        "inhibited-high",
        "inhibited-acknowledged",
        "warning",
        "warning-acknowledged",
    ],
)
def test_resolved_inhibited_and_warning_alerts_page_nobody(state: EscalationState) -> None:
    for t in (0, 900, 100_000):
        assert run(state, at(t)) == Decision(state)


@pytest.mark.parametrize("status", [Status.open, Status.acknowledged])
def test_nobody_on_call_means_nobody_is_paged(status: Status) -> None:
    state = EscalationState(Severity.critical, status, acknowledged_at=T0, acknowledged_tier=0)
    assert run(state, at(100_000), OncallPolicy()) == Decision(state)


def test_a_decision_without_pages_carries_the_state_unchanged() -> None:
    state = EscalationState(Severity.warning, Status.open)
    d = run(state, T0)
    assert d.state is state
    assert d.pages == ()
    assert d.next_check_at is None


# --- escalation level ----------------------------------------------------------------


@pytest.mark.parametrize(("tiers_paged", "level"), [(0, 0), (1, 0), (2, 1), (3, 2), (5, 4)])
def test_escalation_level_is_zero_until_tier2_then_the_highest_tier_paged(
    tiers_paged: int, level: int
) -> None:
    state = EscalationState(Severity.critical, Status.open, tiers_paged=tiers_paged)
    assert escalation_level(state) == level
    assert Decision(state).escalation_level == level


# --- tiers that reach nobody now (docs/domain.md "On-call people") ---------------------


def test_a_tier_that_reaches_nobody_is_skipped_at_once_to_the_next() -> None:
    d = decide(new(), POLICY, T0, ack_repage_after=ACK_REPAGE, unreachable={0})
    assert d.pages == (PageOrder(0, 0, "initial"), PageOrder(1, 0, "escalation"))
    # tier 2's own escalate_after_s (600 s) counts from now, not tier 1's 900 s
    assert d.next_check_at == at(600)
    assert d.state.tiers_paged == 2


def test_every_tier_reaching_nobody_orders_them_all_now_and_then_repeats_the_last() -> None:
    d = decide(new(), POLICY, T0, ack_repage_after=ACK_REPAGE, unreachable={0, 1, 2})
    assert [o.tier for o in d.pages] == [0, 1, 2]
    assert d.next_check_at == at(300)
    again = decide(d.state, POLICY, at(300), ack_repage_after=ACK_REPAGE, unreachable={0, 1, 2})
    assert again.pages == (PageOrder(2, 1, "repeat"),)


def test_a_tier_reachable_again_waits_its_time_as_ever() -> None:
    first = decide(new(), POLICY, T0, ack_repage_after=ACK_REPAGE, unreachable={0})
    # later tier 2 reaches someone: no further skipping before its 600 s are up
    later = decide(first.state, POLICY, at(300), ack_repage_after=ACK_REPAGE)
    assert later.pages == ()
    assert later.next_check_at == at(600)


def test_a_skipped_middle_tier_does_not_hold_up_the_last() -> None:
    d = run(new(), at(0))
    d = decide(d.state, POLICY, at(900), ack_repage_after=ACK_REPAGE, unreachable={1})
    assert [o.tier for o in d.pages] == [1, 2]
    assert d.next_check_at == at(900 + 300)


# --- the network standing in for tiers that reach nobody -----------------------------------

INITIAL = (PageOrder(0, 0, "initial"), PageOrder(1, 0, "escalation"))


def test_a_critical_alert_whose_tiers_reached_nobody_pages_the_network_tier_1() -> None:
    order = stand_in(Severity.critical, INITIAL, reached=False, own_policy=True)
    # the round and reason of the last tier it stands in for
    assert order == PageOrder(0, 0, "escalation")
    repeat = (PageOrder(2, 3, "repeat"),)
    assert stand_in(Severity.critical, repeat, reached=False, own_policy=True) == PageOrder(
        0, 3, "repeat"
    )


@pytest.mark.parametrize(
    ("severity", "orders", "reached", "own_policy"),
    [
        (Severity.high, INITIAL, False, True),  # a high alert: logged and counted only
        (Severity.critical, INITIAL, True, True),  # someone was reached
        (Severity.critical, (), False, True),  # nothing was paged this time
        (Severity.critical, INITIAL, False, False),  # already on the network's tiers
    ],
)
def test_no_stand_in_otherwise(
    severity: Severity, orders: tuple[PageOrder, ...], reached: bool, own_policy: bool
) -> None:
    assert stand_in(severity, orders, reached=reached, own_policy=own_policy) is None


def test_each_stand_in_is_named_for_the_site_tier_it_stands_in_for() -> None:
    assert stand_in_via("_network", INITIAL) == "_network-for-t2"
    assert stand_in_via("_network", (PageOrder(0, 0, "initial"),)) == "_network-for-t1"


def test_an_alert_taken_over_by_its_sites_on_call_starts_over_at_tier_1() -> None:
    paged = paged_all().state
    fresh = taken_over(paged)
    assert (fresh.tiers_paged, fresh.last_escalated_at, fresh.repages) == (0, None, 0)
    assert fresh.last_repaged_at is None
    assert (fresh.severity, fresh.status) == (paged.severity, paged.status)
    d = run(fresh, T0)
    assert [(o.tier, o.reason) for o in d.pages] == [(0, "initial")]
