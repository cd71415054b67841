"""Revenue response bodies (docs/billing.md, "Revenue": what each figure means). Amounts
are integers in the currency's minor units; a currency is never added to another."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from tessera.billing.revenue.service import CurrencySummary, Point

Granularity = Literal["day", "month"]
# A currency code as Stripe writes it (ISO 4217, lower case).
CURRENCY = r"^[a-z]{3}$"


class MrrMovements(BaseModel):
    new: int = Field(description="MRR of subscriptions that started paying (0 → x)")
    expansion: int = Field(description="MRR added by upgrades (x → y > x)")
    contraction: int = Field(description="MRR removed by downgrades (x → y, 0 < y < x)")
    churned: int = Field(description="MRR lost by subscriptions that stopped paying (x → 0)")
    reactivation: int = Field(description="MRR of subscriptions paying again after 0")
    net: int = Field(description="new + expansion + reactivation - contraction - churned")


class RevenueSummary(BaseModel):
    currency: str
    mrr_start: int = Field(description="MRR at the start of `from` (UTC)")
    mrr_end: int = Field(description="MRR at the end of `to` (UTC)")
    movements: MrrMovements
    customers_start: int
    customers_end: int
    customers_churned: int = Field(description="Paying at the start, paying nothing at the end")
    customer_churn_rate: float | None = Field(description="customers_churned / customers_start")
    revenue_churn_rate: float | None = Field(description="(churned + contraction) / mrr_start")
    arpu: int | None = Field(description="mrr_end / customers_end")
    subscribers_by_tier: dict[str, int] = Field(description="Paying subscriptions at the end")
    gross: int = Field(description="orders_gross + invoices_gross")
    orders_gross: int = Field(description="One-time purchases paid in the period")
    invoices_gross: int = Field(description="Subscription invoices paid in the period")
    refunds: int = Field(description="order_refunds + invoice_refunds")
    order_refunds: int = Field(description="Refunded on one-time orders in the period")
    invoice_refunds: int = Field(description="Refunded on subscription invoices in the period")
    fees: int | None = Field(
        description="Stripe's fees from the balance transactions of the period's payments and"
        " refunds; null when any of them is not known (payments_without_fee)"
    )
    fees_recorded: int = Field(description="The fees known (all of them when fees is not null)")
    payments_without_fee: int = Field(
        description="Payments paid or refunded in the period whose fee is not known"
    )
    net: int = Field(description="gross - refunds - fees_recorded")
    notes: list[str]

    @classmethod
    def of(cls, block: CurrencySummary) -> RevenueSummary:
        m = block.moves
        net = m.new + m.expansion + m.reactivation - m.contraction - m.churned
        return cls(
            currency=block.currency,
            mrr_start=block.mrr_start,
            mrr_end=block.mrr_end,
            movements=MrrMovements(
                new=m.new,
                expansion=m.expansion,
                contraction=m.contraction,
                churned=m.churned,
                reactivation=m.reactivation,
                net=net,
            ),
            customers_start=block.customers_start,
            customers_end=block.customers_end,
            customers_churned=block.customers_churned,
            customer_churn_rate=block.customer_churn_rate,
            revenue_churn_rate=block.revenue_churn_rate,
            arpu=block.arpu,
            subscribers_by_tier=block.subscribers_by_tier,
            gross=block.gross,
            orders_gross=block.orders_gross,
            invoices_gross=block.invoices_gross,
            refunds=block.refunds,
            order_refunds=block.order_refunds,
            invoice_refunds=block.invoice_refunds,
            fees=block.fees,
            fees_recorded=block.fees_recorded,
            payments_without_fee=block.payments_without_fee,
            net=block.net,
            notes=block.notes,
        )


class RevenueReport(BaseModel):
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    currencies: list[RevenueSummary]

    model_config = {"populate_by_name": True}


class MrrPoint(BaseModel):
    start: date = Field(description="The day (or the month's first day in the range)")
    end: date = Field(description="The last day the point covers; MRR is at its end")
    currency: str
    mrr: int
    subscribers: int = Field(description="Paying subscriptions at that moment")

    @classmethod
    def of(cls, point: Point) -> MrrPoint:
        return cls(
            start=point.start,
            end=point.end,
            currency=point.currency,
            mrr=point.mrr,
            subscribers=point.subscribers,
        )


# The CSV exports' columns, in order (docs/billing.md, "Revenue exports").
SUMMARY_COLUMNS = (
    "from", "to", "currency", "mrr_start", "mrr_end", "new", "expansion", "contraction",
    "churned", "reactivation", "net_mrr_movement", "customers_start", "customers_end",
    "customers_churned", "customer_churn_rate", "revenue_churn_rate", "arpu", "gross",
    "orders_gross", "invoices_gross", "refunds", "fees", "net",
    # Added after the first release: at the end, so a reader by position keeps working.
    "order_refunds", "invoice_refunds", "fees_recorded", "payments_without_fee",
)  # fmt: skip
MRR_COLUMNS = ("start", "end", "currency", "mrr", "subscribers")


def summary_row(first: date, last: date, s: RevenueSummary) -> list[object]:
    """One currency's row; an unknown figure (null in JSON) is an empty cell."""
    m = s.movements
    return [
        first, last, s.currency, s.mrr_start, s.mrr_end, m.new, m.expansion, m.contraction,
        m.churned, m.reactivation, m.net, s.customers_start, s.customers_end,
        s.customers_churned, s.customer_churn_rate, s.revenue_churn_rate, s.arpu, s.gross,
        s.orders_gross, s.invoices_gross, s.refunds, s.fees, s.net, s.order_refunds,
        s.invoice_refunds, s.fees_recorded, s.payments_without_fee,
    ]  # fmt: skip
