"""Query parameters that mean what the OpenAPI says.

Pydantic's lax mode reads a number as a Unix time, so `?end=0` became 1970-01-01 and
`?before=0.5` half a second after the epoch. These types take only the ISO 8601 text the
schema documents (`format: date` or `format: date-time`); anything else is the usual 422
problem+json. A date-time without a UTC offset is refused too: it would be read as UTC
silently.

A date is also bounded to the years 2000 to 9998 (`MIN_DATE`, `MAX_DATE`): a route may
step a month or a year either side of it (revenue's default start is `end` less 29 days),
and `date.min`/`date.max` would overflow there (a 500).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 date-time: a date, `T` (or a space), a time with optional fraction, an offset.
ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+\-]\d{2}:?\d{2})$"
)


def _iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not ISO_DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(9998, 12, 31)


def _bounded_date(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be a date from {MIN_DATE} to {MAX_DATE}")
    return value


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATETIME.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-01-31T12:00:00Z")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_bounded_date)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
