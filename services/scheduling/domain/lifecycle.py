"""The life of an appointment: proposed, confirmed, then cancelled, completed or no-show.

docs/domain.md ("Lifecycle"): a state change that is not allowed is a 409 (e.g.
completing a cancelled appointment), and so is completing or marking a no-show
before the session's start. Repeating the step that led to the
current state is a no-op, so a retried request is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

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


def needs_integration_rebooking(kind: Kind, new_status: Status) -> bool:
    """A cancelled or missed integration session is rebooked inside its window
    (1..3 days after its dose) when a therapist is free (docs/domain.md, "Lifecycle")."""
    return kind is Kind.integration and new_status in (Status.cancelled, Status.no_show)


@dataclass(frozen=True, slots=True)
class Change:
    """An appointment's new status and what it sets off (docs/domain.md, "Lifecycle")."""

    status: Status
    # a dose cancelled or missed: its integration session is cancelled, and a
    # replacement pair proposed in its window when ``rebook_dose``
    release_dose: bool
    rebook_dose: bool
    # a dose the clinic ended (not rebooked): the induction may be complete without it
    dose_ended: bool
    # an integration session cancelled or missed, rebooked inside its window
    rebook_integration: bool
    # the session took place: the next maintenance session may follow
    completed: bool
    # its time is free again: the site's waitlist is tried again
    released: bool


def change(kind: Kind, status: Status, *, rebook: bool) -> Change:
    """What moving an appointment of ``kind`` to ``status`` sets off; ``rebook`` false
    (the clinic's choice on cancel or no-show) ends a dose or an integration session
    without a replacement. A dose that is off releases its time whether or not it is
    rebooked; an integration session releases it only when cancelled."""
    dose_off = needs_replacement(kind, status)
    integration_off = needs_integration_rebooking(kind, status)
    return Change(
        status=status,
        release_dose=dose_off,
        rebook_dose=dose_off and rebook,
        dose_ended=dose_off and not rebook and kind is Kind.dosing,
        rebook_integration=integration_off and rebook,
        completed=status is Status.completed,
        released=dose_off or status is Status.cancelled,
    )


# Actions that record what happened at a session: refused before it starts.
_AFTER_START: frozenset[Action] = frozenset({Action.complete, Action.no_show})


def too_early(action: Action, start: datetime, now: datetime) -> bool:
    """``complete`` and ``no-show`` before the session's start are refused (409
    ``not_started``): a session in the future has neither taken place nor been missed."""
    return action in _AFTER_START and now < start


def on_session_date(taken_at: datetime, start: datetime, zone: ZoneInfo) -> bool:
    """Pre-dose vitals count only when taken on the session's local date (site zone)."""
    return taken_at.astimezone(zone).date() == start.astimezone(zone).date()
