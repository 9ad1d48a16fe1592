"""When points expire, by funding source (pure rules)."""

from __future__ import annotations

from datetime import date

from mykey.points.programs import add_months, expires_on, fiscal_year_end, fiscal_year_of


def test_the_fiscal_year_ends_on_march_31() -> None:
    assert fiscal_year_end(date(2026, 11, 25)) == date(2027, 3, 31)
    assert fiscal_year_end(date(2027, 3, 31)) == date(2027, 3, 31)
    assert fiscal_year_end(date(2027, 4, 1)) == date(2028, 3, 31)
    assert fiscal_year_of(date(2027, 3, 31)) == 2026
    assert fiscal_year_of(date(2027, 4, 1)) == 2027


def test_n_months_after_the_grant_last_until_the_day_before() -> None:
    validity = {"budget": None, "partner": 6}
    assert expires_on(validity, "budget", date(2026, 11, 25)) == date(2027, 3, 31)
    assert expires_on(validity, "partner", date(2026, 11, 25)) == date(2027, 5, 24)
    assert expires_on(validity, "premium", date(2026, 4, 1)) == date(2027, 3, 31)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)  # no February 31
