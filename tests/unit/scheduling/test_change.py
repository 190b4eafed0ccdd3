"""What an appointment's change sets off (domain/lifecycle.py ``change``): every kind x
new status x rebook, and which changes release time (the site's waitlist is retried)."""

from __future__ import annotations

import itertools

import pytest

from services.scheduling.domain.lifecycle import Change, Status, change
from services.scheduling.domain.model import Kind

DOSES = (Kind.dosing, Kind.maintenance)
OFF = (Status.cancelled, Status.no_show)


@pytest.mark.parametrize(
    ("kind", "status", "rebook"), list(itertools.product(Kind, Status, (True, False)))
)
def test_the_change_keeps_its_status(kind: Kind, status: Status, rebook: bool) -> None:
    assert change(kind, status, rebook=rebook).status is status


@pytest.mark.parametrize(("kind", "status"), list(itertools.product(DOSES, OFF)))
def test_a_dose_off_is_released_and_rebooked(kind: Kind, status: Status) -> None:
    assert change(kind, status, rebook=True) == Change(
        status=status,
        release_dose=True,
        rebook_dose=True,
        dose_ended=False,
        rebook_integration=False,
        completed=False,
        released=True,
    )


@pytest.mark.parametrize("status", OFF)
def test_an_induction_dose_the_clinic_ends_may_end_the_induction(status: Status) -> None:
    found = change(Kind.dosing, status, rebook=False)
    assert found.release_dose
    assert not found.rebook_dose
    assert found.dose_ended
    assert found.released  # its time is free whether or not it is rebooked


@pytest.mark.parametrize("status", OFF)
def test_a_maintenance_session_ended_is_not_an_induction_dose(status: Status) -> None:
    found = change(Kind.maintenance, status, rebook=False)
    assert found.release_dose
    assert not found.rebook_dose
    assert not found.dose_ended
    assert found.released


@pytest.mark.parametrize("rebook", [True, False])
def test_a_cancelled_integration_releases_its_time(rebook: bool) -> None:
    found = change(Kind.integration, Status.cancelled, rebook=rebook)
    assert found.rebook_integration is rebook
    assert not found.release_dose
    assert found.released


@pytest.mark.parametrize("rebook", [True, False])
def test_a_missed_integration_releases_nothing(rebook: bool) -> None:
    found = change(Kind.integration, Status.no_show, rebook=rebook)
    assert found.rebook_integration is rebook
    assert not found.released


@pytest.mark.parametrize(("kind", "rebook"), list(itertools.product(Kind, (True, False))))
def test_a_confirmation_sets_off_nothing(kind: Kind, rebook: bool) -> None:
    assert change(kind, Status.confirmed, rebook=rebook) == Change(
        status=Status.confirmed,
        release_dose=False,
        rebook_dose=False,
        dose_ended=False,
        rebook_integration=False,
        completed=False,
        released=False,
    )


@pytest.mark.parametrize("kind", list(Kind))
def test_a_completed_session_may_bring_maintenance_and_releases_nothing(kind: Kind) -> None:
    found = change(kind, Status.completed, rebook=True)
    assert found.completed
    assert not found.release_dose
    assert not found.rebook_integration
    assert not found.released
