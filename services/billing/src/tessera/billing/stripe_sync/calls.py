"""The Stripe calls of the catalog sync, through the official library. Each carries an
idempotency key derived from the object and its version, so a retried call (a timeout, a
worker that died after Stripe answered) creates nothing twice, and a new version is a
new request."""

from __future__ import annotations

from typing import Any

from stripe import RequestOptions

from tessera.billing.catalog.schemas import Price, Product
from tessera.billing.stripe.accounts import StripeAccount
from tessera.shared.sellers import Tenant


def idempotency_key(
    tenant: Tenant, object_type: str, key: str, version: int, account: StripeAccount
) -> str:
    # The account is in the key: after the seller connects another account, the same
    # version is made there anew, not answered from the old account's cached response.
    on = account.account or "platform"
    return f"tessera-catalog-{tenant.seller_id}-{tenant.mode}-{on}-{object_type}-{key}-v{version}"


def _options(account: StripeAccount, key: str) -> RequestOptions:
    options: RequestOptions = {"idempotency_key": key}
    if account.account is not None:
        options["stripe_account"] = account.account
    return options


def _metadata(tenant: Tenant, **more: str | None) -> dict[str, str]:
    named = {f"tessera_{k}": v for k, v in more.items() if v is not None}
    return {"tessera_seller": str(tenant.seller_id), "tessera_mode": tenant.mode, **named}


async def put_product(account: StripeAccount, tenant: Tenant, product: Product, key: str) -> str:
    """Create the Stripe Product, or bring it in step; its Stripe id."""
    params: dict[str, Any] = {"name": product.name, "active": product.active}
    products = account.client.v1.products
    if product.stripe_product_id is None:
        if product.description:  # Stripe refuses an empty description on create
            params["description"] = product.description
        params["metadata"] = _metadata(tenant, product=product.code)
        created = await products.create_async(params, options=_options(account, key))  # type: ignore[arg-type]
        return created.id
    # An empty description clears Stripe's (an update takes "" as "unset").
    params["description"] = product.description
    await products.update_async(
        product.stripe_product_id,
        params,  # type: ignore[arg-type]
        options=_options(account, key),
    )
    return product.stripe_product_id


async def put_price(
    account: StripeAccount,
    tenant: Tenant,
    price: Price,
    stripe_product: str,
    nickname: str,
    key: str,
) -> str | None:
    """Create the Stripe Price, or follow its `active` (the only thing a price's update
    changes: its amount never does); its Stripe id. A price that is not for sale and was
    never in Stripe is not created: nothing could have used it."""
    prices = account.client.v1.prices
    if price.stripe_price_id is not None:
        await prices.update_async(
            price.stripe_price_id, {"active": price.active}, options=_options(account, key)
        )
        return price.stripe_price_id
    if not price.active:
        return None
    params: dict[str, Any] = {
        "product": stripe_product,
        "unit_amount": price.unit_amount,
        "currency": price.currency,
        "nickname": nickname[:250],
        "metadata": _metadata(tenant, price=price.id, sku=price.sku, tier=price.tier),
    }
    if price.interval is not None:
        params["recurring"] = {"interval": price.interval}
    created = await prices.create_async(params, options=_options(account, key))  # type: ignore[arg-type]
    return created.id
