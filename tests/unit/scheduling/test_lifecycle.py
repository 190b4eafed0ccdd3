"""The appointment state machine: every status x action, and what needs a rebooking."""

from __future__ import annotations

import itertools

import pytest

from services.scheduling.domain.lifecycle import (
    FINAL,
    LIVE,
    Action,
    IllegalTransition,
    Status,
    needs_replacement,
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
