"""The pools' sizes from the environment (shared/settings.py): the minimum defaults to 2
and never above the maximum; the intake API opens its pool whole unless told otherwise;
a minimum above the maximum stops the start with both names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings
from shared.settings import CommonSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_POOL_MIN", raising=False)
    monkeypatch.delenv("DB_POOL_MAX", raising=False)


def test_a_service_keeps_two_connections_open_and_never_more_than_its_maximum() -> None:
    assert (CommonSettings().db_pool_min, CommonSettings().db_pool_max) == (2, 10)
    assert CommonSettings(db_pool_max=1).db_pool_min == 1


def test_the_intake_api_opens_its_whole_pool_unless_a_minimum_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert IntakeSettings().db_pool_min == 10
    monkeypatch.setenv("DB_POOL_MAX", "4")
    assert IntakeSettings().db_pool_min == 4
    monkeypatch.setenv("DB_POOL_MIN", "3")
    assert IntakeSettings().db_pool_min == 3


@pytest.mark.parametrize("settings", [CommonSettings, IntakeSettings])
def test_a_minimum_above_the_maximum_is_refused_by_name(
    settings: type[CommonSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOL_MIN", "6")
    monkeypatch.setenv("DB_POOL_MAX", "5")
    with pytest.raises(ValidationError, match=r"DB_POOL_MIN \(6\) is above DB_POOL_MAX \(5\)"):
        settings()
