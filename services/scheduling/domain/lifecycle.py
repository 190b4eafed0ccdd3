"""The life of an appointment: proposed, confirmed, then cancelled, completed or no-show.

CONTRACT.md ("Scheduling service"): a state change that is not allowed is a 409
(e.g. completing a cancelled appointment). Repeating the step that led to the
current state is a no-op, so a retried request is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from services.scheduling.domain.model import Kind


class Status(StrEnum):
    proposed = "proposed"
    confirmed = "confirmed"
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"


class Action(StrEnum):
    confirm = "confirm"
    cancel = "cancel"
    complete = "complete"
    no_show = "no_show"


# Statuses that still hold their room or therapist.
LIVE: frozenset[Status] = frozenset({Status.proposed, Status.confirmed})
# Statuses whose time is taken when planning: a live booking, or a session that took
# place. A dose completed before its slot ended (or recorded early) keeps its room, its
# therapist and its patient for that time: nothing new is planned on top of it.
OCCUPYING: frozenset[Status] = LIVE | {Status.completed}
# Statuses that nothing leaves.
FINAL: frozenset[Status] = frozenset({Status.cancelled, Status.completed, Status.no_show})

# The status each action leads to, and the statuses it may start from.
_RESULT: Mapping[Action, Status] = {
    Action.confirm: Status.confirmed,
    Action.cancel: Status.cancelled,
    Action.complete: Status.completed,
    Action.no_show: Status.no_show,
}
_FROM: Mapping[Action, frozenset[Status]] = {
    Action.confirm: frozenset({Status.proposed}),
    Action.cancel: frozenset({Status.proposed, Status.confirmed}),
    Action.complete: frozenset({Status.confirmed}),
    Action.no_show: frozenset({Status.confirmed}),
}


class IllegalTransition(Exception):
    """The action is not allowed from the appointment's status (HTTP 409)."""

    def __init__(self, status: Status, action: Action) -> None:
        self.status = status
        self.action = action
        allowed = ", ".join(sorted(_FROM[action]))
        super().__init__(
            f"cannot {action.value} an appointment that is {status.value} "
            f"(allowed only when {allowed})"
        )


def transition(status: Status, action: Action) -> tuple[Status, bool]:
    """The new status and whether it changed.

    proposed --confirm--> confirmed; proposed or confirmed --cancel--> cancelled;
    confirmed --complete--> completed; confirmed --no_show--> no_show. The action
    that led to the current status again: (status, False). Anything else raises
    ``IllegalTransition``.
    """
    result = _RESULT[action]
    if status is result:
        return status, False
    if status in _FROM[action]:
        return result, True
    raise IllegalTransition(status, action)


def needs_replacement(kind: Kind, new_status: Status) -> bool:
    """A dose (induction or maintenance) that was cancelled or missed is rebooked."""
    return kind in (Kind.dosing, Kind.maintenance) and new_status in (
        Status.cancelled,
        Status.no_show,
    )
