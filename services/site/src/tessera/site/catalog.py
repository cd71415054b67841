"""The price shown beside Buy, read from billing's catalog seed (the file billing loads), so
the site cannot advertise a price billing does not charge. Absent file or SKU: no price."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# ISO 4217 currencies with no minor unit among those Stripe supports commonly.
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "jpy": "¥"}


class _Item(BaseModel):
    # Only what the site shows; billing owns the full schema and may add fields.
    model_config = ConfigDict(extra="ignore")

    sku: str
    name: str = ""
    unit_amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    active: bool = True


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")

    active: bool = True
    one_time_prices: list[_Item] = []


class _Catalog(BaseModel):
    model_config = ConfigDict(extra="ignore")

    products: list[_Product]


@dataclass(frozen=True)
class Price:
    amount: str  # "$149", "€99.50"
    currency: str  # "USD"


def format_amount(unit_amount: int, currency: str) -> str:
    code = currency.lower()
    value = Decimal(unit_amount) if code in ZERO_DECIMAL else Decimal(unit_amount) / 100
    number = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    symbol = SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number} {code.upper()}"


def find_price(catalog_file: Path, sku: str) -> Price | None:
    try:
        catalog = _Catalog.model_validate(json.loads(catalog_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None  # a site without a price still sells: Buy shows the price at checkout
    for product in catalog.products:
        for item in product.one_time_prices:
            if item.sku == sku and item.active and product.active:
                return Price(format_amount(item.unit_amount, item.currency), item.currency.upper())
    return None
