"""The scheduling shell's orchestration of an appointment's change and what it sets off
(services/scheduling/commands.py ``change_appointment``, services/scheduling/planner/)
against an in-memory repository, calendar and outbox (tests/unit/scheduling/fakes.py):
the replacement a cancelled or missed dose gets, the integration rebooked in its window,
the waitlist tried when time is freed, and a booking that loses its race to another
worker."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.scheduling.commands import change_appointment
from services.scheduling.domain.lifecycle import Action
from services.scheduling.domain.model import STANDARD
from services.scheduling.planner.booking import Booked, Proposal, Waitlisted
from services.scheduling.planner.proposals import propose_series
from services.scheduling.rows import AppointmentRow, Place
from services.scheduling.schemas import ActionIn
from tests.unit.scheduling.fakes import Clock, FakeScheduling, fake_deps

SITE = "site-a"
ZONE = ZoneInfo("America/New_York")  # the site's
# Monday 3 March 2025, 08:00 in New York
NOW = datetime(2025, 3, 3, 13, 0, tzinfo=UTC)


class Shell:
    """A site with two rooms and two therapists, weekdays 08-18, and the shell over it."""

    def __init__(self, *, replan_attempts: int = 10) -> None:
        self.db = FakeScheduling()
        self.db.add_site(SITE)
        self.clock = Clock(NOW)
        self.deps, self.conn, self.calendars = fake_deps(
            self.db, self.clock, replan_attempts=replan_attempts
        )
        self.store = self.db.store()

    async def induction(self, patient_id: str = "p-1") -> Booked | Waitlisted:
        """The patient's induction series, proposed as the worker does for a cleared intake."""
        self.db.add_patient(patient_id, SITE)
        outcome = await propose_series(
            self.conn.as_conn(),
            self.deps,
            Proposal(patient_id, SITE, None, "induction", self.clock()),
            intake_id=f"intake-{patient_id}",
            store=self.store,
        )
        assert isinstance(outcome, Booked | Waitlisted)
        return outcome

    async def act(self, row: AppointmentRow, action: Action, body: ActionIn | None = None) -> None:
        await change_appointment(self.deps, row.appointment_id, action, body, store=self.store)

    def session(self, patient_id: str, kind: str, sequence: int) -> AppointmentRow:
        """The patient's latest session of that kind and sequence."""
        found = [a for a in self.db.of(patient_id, kind) if a.sequence == sequence]
        return found[-1]

    def with_therapist(self, row: AppointmentRow, therapist: str) -> AppointmentRow:
        """The integration session as if booked with ``therapist`` (not the one the
        search picks first when every therapist is free)."""
        moved = dataclasses.replace(row, resource=therapist)
        self.db.appointments[row.appointment_id] = moved
        return moved

    def row(self, row: AppointmentRow) -> AppointmentRow:
        return self.db.appointments[row.appointment_id]

    def proposed_since(self, n_events: int) -> list[dict[str, object]]:
        return [e.data for e in self.db.outbox[n_events:] if e.type == "appointment.proposed"]


async def test_a_cancelled_dose_loses_its_integration_and_gets_a_replacement_pair() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 2)
    integration = shell.with_therapist(shell.session("p-1", "integration", 2), "therapist-2")
    before = len(shell.db.outbox)

    await shell.act(dose, Action.cancel)

    assert shell.row(dose).status == "cancelled"
    assert shell.row(integration).status == "cancelled"
    new_dose = shell.session("p-1", "dosing", 2)
    new_integration = shell.session("p-1", "integration", 2)
    assert new_dose.appointment_id != dose.appointment_id
    assert (new_dose.status, new_dose.reason, new_dose.series_id) == (
        "proposed",
        "rebooked",
        dose.series_id,
    )
    assert new_dose.replaces == dose.appointment_id
    assert (new_integration.status, new_integration.reason) == ("proposed", "rebooked")
    assert new_integration.resource == integration.resource  # the same therapist, free
    # in the rebooking window: from now to the later of a third of the protocol's window
    # after the original start and a week from now
    latest = max(dose.start + STANDARD.window / 3, NOW + timedelta(days=7))
    assert NOW < new_dose.start <= latest
    proposed = shell.proposed_since(before)
    assert [(e["kind"], e["sequence"], e["reason"]) for e in proposed] == [
        ("dosing", 2, "rebooked"),
        ("integration", 2, "rebooked"),
    ]
    changed = shell.db.events("appointment.changed")
    assert {(e["appointment_id"], e["status"]) for e in changed} == {
        (dose.appointment_id, "cancelled"),
        (integration.appointment_id, "cancelled"),
    }


async def test_a_missed_last_dose_gets_a_replacement_pair_too() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", STANDARD.doses)
    integration = shell.session("p-1", "integration", STANDARD.doses)
    await shell.act(dose, Action.confirm)
    shell.clock.now = dose.start + timedelta(minutes=30)

    await shell.act(dose, Action.no_show)

    assert shell.row(dose).status == "no_show"
    assert shell.row(dose).cause is None
    assert shell.row(integration).status == "cancelled"
    replacement = shell.session("p-1", "dosing", STANDARD.doses)
    assert (replacement.reason, replacement.replaces) == ("rebooked", dose.appointment_id)
    assert replacement.start > shell.clock.now
    assert shell.session("p-1", "integration", STANDARD.doses).status == "proposed"


async def test_a_missed_dose_with_no_room_in_its_window_waits_at_its_place() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 1)
    await shell.act(dose, Action.confirm)
    shell.clock.now = dose.start + timedelta(minutes=30)
    before = len(shell.db.outbox)

    await shell.act(dose, Action.no_show)

    # the series' later doses leave no spacing-legal slot before the window closes
    assert shell.proposed_since(before) == []
    (entry,) = shell.db.entries
    assert (entry.purpose, entry.reason) == ("rebooked", "no_capacity_within_window")
    assert entry.place == Place(dose.series_id, 1, "dosing")
    (event,) = shell.db.events("series.waitlisted")
    assert (event["purpose"], event["reason"]) == ("rebooked", "no_capacity_within_window")


async def test_cancelling_a_dose_without_rebooking_proposes_nothing() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 3)
    before = len(shell.db.outbox)

    await shell.act(dose, Action.cancel, ActionIn(rebook=False, reason="patient_request"))

    assert shell.row(dose).status == "cancelled"
    assert shell.row(dose).cause == "patient_request"
    assert shell.session("p-1", "integration", 3).status == "cancelled"
    assert shell.session("p-1", "dosing", 3) == shell.row(dose)  # no replacement
    assert shell.proposed_since(before) == []


async def test_a_cancelled_integration_is_rebooked_in_its_window_with_its_therapist() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 4)
    integration = shell.with_therapist(shell.session("p-1", "integration", 4), "therapist-2")

    await shell.act(integration, Action.cancel)

    assert shell.row(integration).status == "cancelled"
    assert shell.row(dose).status == "proposed"  # the dose keeps its time
    again = shell.session("p-1", "integration", 4)
    assert again.appointment_id != integration.appointment_id
    assert (again.status, again.reason, again.replaces) == (
        "proposed",
        "rebooked",
        integration.appointment_id,
    )
    assert again.resource == integration.resource
    # 1 to 3 local days after its dose (never the dose's day)
    days_after = (again.start.astimezone(ZONE).date() - dose.start.astimezone(ZONE).date()).days
    assert STANDARD.integration_min_days <= days_after <= STANDARD.integration_max_days


async def test_a_held_patients_replacement_waits_on_the_waitlist() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 2)
    shell.db.held.add("p-1")
    before = len(shell.db.outbox)

    await shell.act(dose, Action.cancel)

    assert shell.session("p-1", "dosing", 2) == shell.row(dose)  # nothing proposed
    assert shell.proposed_since(before) == []
    (entry,) = shell.db.entries
    assert (entry.purpose, entry.reason) == ("rebooked", "on_hold")
    assert entry.place == Place(dose.series_id, 2, "dosing")


async def test_time_freed_by_a_cancellation_is_offered_to_the_waitlist() -> None:
    shell = Shell()
    await shell.induction("p-1")
    shell.db.add_patient("p-2", SITE)
    shell.db.wait("p-2", SITE)  # no room when p-2 was first planned
    dose = shell.session("p-1", "dosing", 5)

    await shell.act(dose, Action.cancel, ActionIn(rebook=False))

    assert shell.db.entries == []  # p-2 no longer waits
    doses = shell.db.of("p-2", "dosing")
    assert len(doses) == STANDARD.doses
    assert {d.reason for d in doses} == {"induction"}


async def test_a_change_that_frees_no_time_leaves_the_waitlist_alone() -> None:
    shell = Shell()
    await shell.induction("p-1")
    shell.db.add_patient("p-2", SITE)
    shell.db.wait("p-2", SITE)

    await shell.act(shell.session("p-1", "dosing", 1), Action.confirm)

    assert [e.patient_id for e in shell.db.entries] == ["p-2"]
    assert shell.db.of("p-2") == []


async def test_a_booking_that_loses_its_race_is_planned_again_on_a_fresh_calendar() -> None:
    shell = Shell()
    shell.db.lose_races = 1  # another worker booked an overlapping slot first

    outcome = await shell.induction()

    assert isinstance(outcome, Booked)
    assert shell.db.races_lost == 1
    assert shell.calendars.invalidated == [SITE]
    assert len(shell.db.series) == 1
    assert len(shell.db.of("p-1", "dosing")) == STANDARD.doses
    assert shell.db.entries == []


async def test_a_booking_that_keeps_losing_waitlists_the_patient_for_contention() -> None:
    shell = Shell(replan_attempts=3)
    shell.db.lose_races = 99

    outcome = await shell.induction()

    assert outcome == Waitlisted("contention")
    assert shell.db.races_lost == 3  # one plan and two re-plans, then it stops
    assert shell.db.appointments == {}
    (entry,) = shell.db.entries
    assert (entry.patient_id, entry.purpose, entry.reason) == ("p-1", "induction", "contention")
    (event,) = shell.db.events("series.waitlisted")
    assert event["reason"] == "contention"


async def test_a_replacement_that_loses_its_race_is_still_booked() -> None:
    shell = Shell()
    await shell.induction()
    dose = shell.session("p-1", "dosing", 2)
    shell.db.lose_races = 1

    await shell.act(dose, Action.cancel)

    assert shell.db.races_lost == 1
    assert shell.session("p-1", "dosing", 2).replaces == dose.appointment_id
