"""Pure rules of a point program: when points of each funding source expire."""

from __future__ import annotations

import calendar
from datetime import date

FUNDING_SOURCES = ("budget", "partner", "premium")
PLACE_KINDS = (
    "shop",
    "shopping_street",
    "large_store",
    "museum",
    "facility_fee",
    "pool",
    "hot_spring",
    "bus",
    "taxi",
    "tourist_office",
    "online",
)


def fiscal_year_end(day: date) -> date:
    """March 31 that ends the Japanese fiscal year (April–March) containing `day`."""
    return date(day.year + (1 if day.month >= 4 else 0), 3, 31)


def fiscal_year_of(day: date) -> int:
    """The fiscal year (April–March) by the calendar year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def expires_on(validity: dict[str, int | None], funding: str, granted_on: date) -> date:
    """The last day points of `funding` granted on `granted_on` may be used.

    `validity[funding]` is a number of months (valid until the day before the same date that
    many months later), or None for "until the end of the fiscal year" (March 31).
    """
    months = validity.get(funding)
    if months is None:
        return fiscal_year_end(granted_on)
    return date.fromordinal(add_months(granted_on, months).toordinal() - 1)
