"""Age on a date, to the day, including 29 February birthdays."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake.domain.scoring import age_on


@pytest.mark.parametrize(
    ("birth_date", "on", "age"),
    [
        (date(2008, 11, 23), date(2026, 11, 22), 17),
        (date(2008, 11, 23), date(2026, 11, 23), 18),
        (date(2008, 11, 23), date(2026, 11, 24), 18),
        (date(2008, 12, 31), date(2026, 1, 1), 17),
        (date(2008, 1, 1), date(2026, 12, 31), 18),
        (date(2026, 5, 5), date(2026, 5, 5), 0),
    ],
    ids=[
        "day_before_18th_birthday_is_17",
        "on_18th_birthday_is_18",
        "day_after_18th_birthday_is_18",
        "new_year_does_not_age_anyone",
        "last_day_of_the_year_after_a_january_birthday",
        "on_the_day_of_birth_is_0",
    ],
)
def test_age_counts_completed_years_to_the_day(birth_date: date, on: date, age: int) -> None:
    assert age_on(birth_date, on) == age


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2026, 2, 28), 17),
        (date(2026, 3, 1), 18),
        (date(2028, 2, 28), 19),
        (date(2028, 2, 29), 20),
    ],
    ids=[
        "feb_28_of_non_leap_year_is_still_before_the_birthday",
        "mar_1_of_non_leap_year_is_the_birthday",
        "feb_28_of_leap_year_is_before_the_birthday",
        "feb_29_of_leap_year_is_the_birthday",
    ],
)
def test_feb_29_birthday_turns_older_on_mar_1_in_non_leap_years(on: date, age: int) -> None:
    assert age_on(date(2008, 2, 29), on) == age


def test_a_date_before_birth_raises() -> None:
    with pytest.raises(ValueError, match="before birth date"):
        age_on(date(2000, 1, 2), date(2000, 1, 1))
