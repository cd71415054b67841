"""Revenue over HTTP for the seller (secret key; the tenant is the key's): a summary of a
period and the MRR series, as JSON or as CSV (`Accept: text/csv`, or the `.csv` paths)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from tessera.billing.admin.routes import csv_response
from tessera.billing.admin.service import csv_text
from tessera.billing.catalog.routes import SecretTenant
from tessera.billing.context import BillingDep
from tessera.billing.revenue import service
from tessera.billing.revenue.schemas import (
    CURRENCY,
    MRR_COLUMNS,
    SUMMARY_COLUMNS,
    Granularity,
    MrrPoint,
    RevenueReport,
    RevenueSummary,
    summary_row,
)
from tessera.shared.http.params import IsoDate
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import Tenant

router = APIRouter(prefix="/v1/revenue", tags=["seller"])

# Three years of days: the longest range a report reads (the log replay is per report).
MAX_DAYS = 3 * 366
# On top of the key's own budget: a report replays the tenant's subscription log.
REPORT_RATE = "60/minute"
From = Annotated[
    IsoDate | None, Query(alias="from", description="First day (UTC); default: `to` less 29 days")
]
To = Annotated[
    IsoDate | None, Query(alias="to", description="Last day (UTC), included; default: today")
]
Currency = Annotated[
    str | None, Query(pattern=CURRENCY, description="Only this currency (lower case, ISO 4217)")
]
CSV_ANSWER = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV when asked"}}


class InvalidRange(Problem):
    status = 422
    slug = "invalid-range"
    title = "Invalid date range"


def _range(first: date | None, last: date | None) -> tuple[date, date]:
    last = last or datetime.now(UTC).date()
    first = first or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_DAYS:
        raise InvalidRange(f"`from` must not be after `to`, and the range at most {MAX_DAYS} days.")
    return first, last


async def _limit(billing: BillingDep, tenant: Tenant) -> None:
    await billing.limiter.enforce(REPORT_RATE, "revenue", str(tenant.seller_id), tenant.mode)


def _wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "")


async def _summary(
    billing: BillingDep, tenant: Tenant, start: date | None, end: date | None, currency: str | None
) -> tuple[date, date, list[RevenueSummary]]:
    await _limit(billing, tenant)
    first, last = _range(start, end)
    blocks = await service.summary(billing.pool, tenant, first, last, currency)
    return first, last, [RevenueSummary.of(b) for b in blocks]


def _summary_csv(first: date, last: date, blocks: list[RevenueSummary]) -> Response:
    rows = (summary_row(first, last, b) for b in blocks)
    return csv_response(csv_text(SUMMARY_COLUMNS, rows), "revenue-summary.csv")


@router.get(
    "/summary",
    summary="MRR, its movements, churn, ARPU, subscribers by tier, gross and net revenue",
    response_model=RevenueReport,
    responses=CSV_ANSWER,  # type: ignore[arg-type]
)
async def summary(
    request: Request, billing: BillingDep, tenant: SecretTenant,
    start: From = None, end: To = None, currency: Currency = None,
) -> RevenueReport | Response:  # fmt: skip
    first, last, blocks = await _summary(billing, tenant, start, end, currency)
    if _wants_csv(request):
        return _summary_csv(first, last, blocks)
    return RevenueReport(start=first, end=last, currencies=blocks)


@router.get("/summary.csv", summary="The revenue summary as CSV (one row per currency)")
async def summary_csv(
    billing: BillingDep, tenant: SecretTenant,
    start: From = None, end: To = None, currency: Currency = None,
) -> Response:  # fmt: skip
    return _summary_csv(*await _summary(billing, tenant, start, end, currency))


async def _series(
    billing: BillingDep, tenant: Tenant, start: date | None, end: date | None,
    interval: Granularity, currency: str | None,
) -> list[MrrPoint]:  # fmt: skip
    await _limit(billing, tenant)
    first, last = _range(start, end)
    points = await service.series(billing.pool, tenant, first, last, interval, currency)
    return [MrrPoint.of(p) for p in points]


def _series_csv(points: list[MrrPoint]) -> Response:
    rows = ([p.start, p.end, p.currency, p.mrr, p.subscribers] for p in points)
    return csv_response(csv_text(MRR_COLUMNS, rows), "revenue-mrr.csv")


@router.get(
    "/mrr",
    summary="MRR at the end of each day or month, per currency",
    response_model=list[MrrPoint],
    responses=CSV_ANSWER,  # type: ignore[arg-type]
)
async def mrr(
    request: Request, billing: BillingDep, tenant: SecretTenant,
    start: From = None, end: To = None, interval: Granularity = "day", currency: Currency = None,
) -> list[MrrPoint] | Response:  # fmt: skip
    points = await _series(billing, tenant, start, end, interval, currency)
    return _series_csv(points) if _wants_csv(request) else points


@router.get("/mrr.csv", summary="The MRR series as CSV")
async def mrr_csv(
    billing: BillingDep, tenant: SecretTenant,
    start: From = None, end: To = None, interval: Granularity = "day", currency: Currency = None,
) -> Response:  # fmt: skip
    return _series_csv(await _series(billing, tenant, start, end, interval, currency))
