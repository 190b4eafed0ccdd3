"""Acknowledge and resolve: every status x step, and who may repeat a step."""

from __future__ import annotations

import itertools
from typing import Literal

import pytest

from services.alerts.domain.lifecycle import IllegalStep, Step, step
from services.alerts.domain.model import Status

ACK, RES = Step.acknowledge, Step.resolve
OPEN, ACKED, DONE = Status.open, Status.acknowledged, Status.resolved
ALICE, BOB = "Dr. Alice Smith", "Bob Jones"
Who = Literal["same", "other"]
Outcome = Literal["apply", "noop"] | str  # a str other than apply/noop: IllegalStep matching it

# (step, status, who takes the step relative to whoever took it before) -> outcome.
# Before: an acknowledged alert was acknowledged by ALICE, a resolved one acknowledged
# and resolved by ALICE; "same" is ALICE again, "other" is BOB.
TABLE: dict[tuple[Step, Status, Who], Outcome] = {
    (ACK, OPEN, "same"): "apply",
    (ACK, OPEN, "other"): "apply",
    (ACK, ACKED, "same"): "noop",
    (ACK, ACKED, "other"): f"already acknowledged by {ALICE}",
    (ACK, DONE, "same"): "the alert is resolved",
    (ACK, DONE, "other"): "the alert is resolved",
    (RES, OPEN, "same"): "apply",
    (RES, OPEN, "other"): "apply",
    (RES, ACKED, "same"): "apply",
    (RES, ACKED, "other"): "apply",
    (RES, DONE, "same"): "noop",
    (RES, DONE, "other"): f"already resolved by {ALICE}",
}


def test_the_table_covers_every_step_status_and_actor() -> None:
    assert set(TABLE) == set(itertools.product(Step, Status, ["same", "other"]))


def take(s: Step, status: Status, by: str) -> Literal["apply", "noop"]:
    return step(
        s,
        status,
        by=by,
        acknowledged_by=ALICE if status is not OPEN else None,
        resolved_by=ALICE if status is DONE else None,
    )


@pytest.mark.parametrize(("s", "status", "who"), list(TABLE), ids=str)
def test_every_step_from_every_status(s: Step, status: Status, who: Who) -> None:
    by = ALICE if who == "same" else BOB
    expected = TABLE[(s, status, who)]
    if expected in ("apply", "noop"):
        assert take(s, status, by) == expected
    else:
        with pytest.raises(IllegalStep, match=expected):
            take(s, status, by)


@pytest.mark.parametrize(
    "by", ["Dr. Alice Smith", "dr. alice smith", "DR. ALICE SMITH", "  Dr.  Alice\tSmith "]
)
@pytest.mark.parametrize(("s", "status"), [(ACK, ACKED), (RES, DONE)])
def test_the_same_actor_repeating_a_step_is_a_noop_whatever_case_and_spacing(
    s: Step, status: Status, by: str
) -> None:
    assert take(s, status, by) == "noop"


@pytest.mark.parametrize(("s", "status"), [(ACK, ACKED), (RES, DONE)])
def test_a_different_actor_repeating_a_step_is_told_who_took_it(s: Step, status: Status) -> None:
    with pytest.raises(IllegalStep) as raised:
        take(s, status, "Dr. Alice Smyth")
    assert ALICE in str(raised.value)


def test_resolving_an_alert_acknowledged_by_someone_else_is_allowed() -> None:
    assert step(RES, ACKED, by=BOB, acknowledged_by=ALICE, resolved_by=None) == "apply"


def test_resolving_again_by_whoever_acknowledged_but_did_not_resolve_is_illegal() -> None:
    with pytest.raises(IllegalStep, match=BOB):
        step(RES, DONE, by=ALICE, acknowledged_by=ALICE, resolved_by=BOB)


def test_acknowledging_a_resolved_alert_is_illegal_even_for_its_acknowledger() -> None:
    with pytest.raises(IllegalStep, match="resolved"):
        step(ACK, DONE, by=ALICE, acknowledged_by=ALICE, resolved_by=ALICE)
