"""The appointment state machine: every status x action, and what needs a rebooking."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.scheduling.domain.lifecycle import (
    FINAL,
    LIVE,
    Action,
    IllegalTransition,
    Status,
    needs_integration_rebooking,
    needs_replacement,
    on_session_date,
    too_early,
    transition,
)
from services.scheduling.domain.model import Kind

P, C, X, D, N = (
    Status.proposed,
    Status.confirmed,
    Status.cancelled,
    Status.completed,
    Status.no_show,
)
ILLEGAL = None
# (status, action) -> (new status, changed), or ILLEGAL: all 5 x 4 combinations.
TABLE: dict[tuple[Status, Action], tuple[Status, bool] | None] = {
    (P, Action.confirm): (C, True),
    (P, Action.cancel): (X, True),
    (P, Action.complete): ILLEGAL,
    (P, Action.no_show): ILLEGAL,
    (C, Action.confirm): (C, False),
    (C, Action.cancel): (X, True),
    (C, Action.complete): (D, True),
    (C, Action.no_show): (N, True),
    (X, Action.confirm): ILLEGAL,
    (X, Action.cancel): (X, False),
    (X, Action.complete): ILLEGAL,
    (X, Action.no_show): ILLEGAL,
    (D, Action.confirm): ILLEGAL,
    (D, Action.cancel): ILLEGAL,
    (D, Action.complete): (D, False),
    (D, Action.no_show): ILLEGAL,
    (N, Action.confirm): ILLEGAL,
    (N, Action.cancel): ILLEGAL,
    (N, Action.complete): ILLEGAL,
    (N, Action.no_show): (N, False),
}


def test_the_table_covers_every_status_and_action() -> None:
    assert set(TABLE) == set(itertools.product(Status, Action))


@pytest.mark.parametrize(
    ("status", "action"),
    [key for key, value in TABLE.items() if value is not None],
    ids=lambda v: str(v),
)
def test_allowed_transitions_and_repeats(status: Status, action: Action) -> None:
    assert transition(status, action) == TABLE[(status, action)]


@pytest.mark.parametrize(
    ("status", "action"),
    [key for key, value in TABLE.items() if value is None],
    ids=lambda v: str(v),
)
def test_illegal_transitions_raise_with_status_and_action(status: Status, action: Action) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(status, action)
    assert (raised.value.status, raised.value.action) == (status, action)
    assert f"cannot {action.value}" in str(raised.value)
    assert status.value in str(raised.value)


@pytest.mark.parametrize("action", list(Action))
def test_repeating_the_step_that_led_here_is_a_no_op(action: Action) -> None:
    reached, changed = transition(C if action is not Action.confirm else P, action)
    assert changed
    assert transition(reached, action) == (reached, False)


def test_completing_a_cancelled_appointment_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="cannot complete an appointment that is cancelled"):
        transition(Status.cancelled, Action.complete)


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (kind, status, kind is not Kind.integration and status in (X, N))
        for kind, status in itertools.product(Kind, Status)
    ],
    ids=lambda v: str(v),
)
def test_only_a_cancelled_or_missed_dose_needs_replacement(
    kind: Kind, status: Status, expected: bool
) -> None:
    assert needs_replacement(kind, status) is expected


def test_live_and_final_statuses_partition_the_statuses() -> None:
    assert set(Status) == LIVE | FINAL
    assert not LIVE & FINAL


@pytest.mark.parametrize("status", sorted(FINAL))
def test_nothing_leaves_a_final_status(status: Status) -> None:
    for action in Action:
        if TABLE[(status, action)] is not None:
            assert transition(status, action) == (status, False)


# --- timing (docs/domain.md, "Lifecycle") --------------------------------------------

START = datetime(2026, 12, 3, 15, tzinfo=UTC)


@pytest.mark.parametrize("action", [Action.complete, Action.no_show])
def test_complete_and_no_show_are_refused_before_the_session_starts(action: Action) -> None:
    assert too_early(action, START, START - timedelta(seconds=1))
    assert not too_early(action, START, START)
    assert not too_early(action, START, START + timedelta(hours=3))


@pytest.mark.parametrize("action", [Action.confirm, Action.cancel])
def test_confirm_and_cancel_may_happen_any_time_before(action: Action) -> None:
    assert not too_early(action, START, START - timedelta(days=10))


def test_pre_dose_vitals_count_only_on_the_sessions_local_date() -> None:
    denver = ZoneInfo("America/Denver")  # START is 08:00 local on Dec 3
    assert on_session_date(START - timedelta(hours=7, minutes=59), START, denver)  # 00:01
    assert not on_session_date(START - timedelta(hours=8, minutes=1), START, denver)  # Dec 2
    assert on_session_date(START + timedelta(hours=15, minutes=59), START, denver)  # 23:59
    assert not on_session_date(START + timedelta(hours=16), START, denver)  # Dec 4 00:00


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (Kind.integration, Status.cancelled, True),
        (Kind.integration, Status.no_show, True),
        (Kind.integration, Status.completed, False),
        (Kind.dosing, Status.cancelled, False),
        (Kind.maintenance, Status.no_show, False),
    ],
)
def test_a_cancelled_or_missed_integration_is_rebooked(
    kind: Kind, status: Status, expected: bool
) -> None:
    assert needs_integration_rebooking(kind, status) is expected
