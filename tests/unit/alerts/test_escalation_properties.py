"""Properties of escalation over random tier policies and random decision times
(timers on time, late after downtime, or extra decisions triggered by other events)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.domain.escalation import EscalationState, PageOrder, decide
from services.alerts.domain.model import Severity, Status
from tests.unit.alerts.builders import T0, at, oncall

FAST = settings(max_examples=200, deadline=None)
ACK_REPAGE = timedelta(minutes=30)

tier_delays = st.lists(st.integers(1, 3600), min_size=1, max_size=5)
# offsets (s) of later decisions; sorted in the tests
decision_offsets = st.lists(st.integers(0, 6 * 3600), max_size=30)


def simulate(
    delays: list[int], offsets: list[int]
) -> list[tuple[datetime, tuple[PageOrder, ...], datetime | None]]:
    policy = oncall(*delays)
    state = EscalationState(Severity.critical, Status.open)
    log = []
    for t in [0, *sorted(offsets)]:
        now = at(t)
        d = decide(state, policy, now, ack_repage_after=ACK_REPAGE)
        log.append((now, d.pages, d.next_check_at))
        state = d.state
    return log


@FAST
@given(tier_delays, decision_offsets)
def test_every_tier_is_paged_once_in_order_when_its_time_has_come(
    delays: list[int], offsets: list[int]
) -> None:
    log = simulate(delays, offsets)
    first_pages = [(now, p.tier) for now, pages, _ in log for p in pages if p.round == 0]
    assert [tier for _, tier in first_pages] == list(range(len(first_pages)))
    for now, tier in first_pages:
        due = at(sum(delays[:tier]))
        assert now >= due
        # ... at the first decision at or after its due time
        earlier = [t for t, _, _ in log if due <= t < now]
        assert earlier == []
    last_decision = log[-1][0]
    assert len(first_pages) == sum(
        1 for k in range(len(delays)) if at(sum(delays[:k])) <= last_decision
    )


@FAST
@given(tier_delays, decision_offsets)
def test_no_decision_pages_a_tier_twice_and_rounds_count_up(
    delays: list[int], offsets: list[int]
) -> None:
    log = simulate(delays, offsets)
    for _, pages, _ in log:
        assert len({p.tier for p in pages}) == len(pages)
    repeats = [p for _, pages, _ in log for p in pages if p.round > 0]
    assert [p.round for p in repeats] == list(range(1, len(repeats) + 1))
    assert all(p.reason == "repeat" and p.tier == len(delays) - 1 for p in repeats)


@FAST
@given(tier_delays, decision_offsets)
def test_the_last_tier_is_repaged_only_after_a_full_interval_of_silence(
    delays: list[int], offsets: list[int]
) -> None:
    last_tier = len(delays) - 1
    every = timedelta(seconds=delays[-1])
    paged_at: datetime | None = None
    for now, pages, _ in simulate(delays, offsets):
        if any(p.tier == last_tier for p in pages):
            if paged_at is not None:
                assert now - paged_at >= every
            paged_at = now


@FAST
@given(tier_delays, decision_offsets)
def test_the_next_check_is_in_the_future_and_deciding_again_then_pages_nobody(
    delays: list[int], offsets: list[int]
) -> None:
    policy = oncall(*delays)
    state = EscalationState(Severity.critical, Status.open)
    for t in [0, *sorted(offsets)]:
        now = at(t)
        d = decide(state, policy, now, ack_repage_after=ACK_REPAGE)
        assert d.next_check_at is not None
        assert d.next_check_at > now
        again = decide(d.state, policy, now, ack_repage_after=ACK_REPAGE)
        assert again.pages == ()
        assert again.next_check_at == d.next_check_at
        just_before = decide(
            d.state, policy, d.next_check_at - timedelta(seconds=1), ack_repage_after=ACK_REPAGE
        )
        assert just_before.pages == ()
        assert decide(d.state, policy, d.next_check_at, ack_repage_after=ACK_REPAGE).pages
        state = d.state


@FAST
@given(tier_delays, st.integers(1, 40))
def test_timers_on_time_page_exactly_on_the_schedule(delays: list[int], steps: int) -> None:
    policy = oncall(*delays)
    d = decide(
        EscalationState(Severity.critical, Status.open), policy, T0, ack_repage_after=ACK_REPAGE
    )
    times = [T0]
    for _ in range(steps):
        assert d.next_check_at is not None
        d = decide(d.state, policy, d.next_check_at, ack_repage_after=ACK_REPAGE)
        assert len(d.pages) == 1
        times.append(d.state.last_repaged_at or d.state.last_escalated_at or T0)
    dues = [sum(delays[:k]) for k in range(len(delays))]
    dues += [dues[-1] + delays[-1] * r for r in range(1, steps + 2)]
    assert times == [at(s) for s in dues[: steps + 1]]
