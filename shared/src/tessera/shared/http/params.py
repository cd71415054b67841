"""Query parameters that mean what the OpenAPI says.

Pydantic's lax mode reads a number as a Unix time, so `?end=0` became 1970-01-01 and
`?before=0.5` half a second after the epoch. These types take only the ISO 8601 text the
schema documents (`format: date` or `format: date-time`); anything else is the usual 422
problem+json. A date-time without a UTC offset is refused too: it would be read as UTC
silently.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

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


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATETIME.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-01-31T12:00:00Z")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
