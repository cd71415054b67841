"""Products and Prices: `/v1/products`, `/v1/prices`."""

from __future__ import annotations

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.store import snapshot
from tessera.devstack.stripe_standin.wire import (
    Obj,
    Params,
    StripeApiError,
    invalid,
    new_id,
    page,
)

INTERVALS = ("day", "week", "month", "year")
PRODUCT_FIELDS = (
    "name", "active", "description", "metadata", "images", "url", "unit_label",
    "statement_descriptor", "tax_code", "shippable", "marketing_features",
)  # fmt: skip
PRICE_UPDATABLE = (
    "active",
    "lookup_key",
    "transfer_lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
)


def _product_fields(params: Params, product: Obj) -> None:
    for key in ("name", "description", "url", "unit_label", "statement_descriptor", "tax_code"):
        if params.has(key):
            value = params.text(key)
            product[key] = value or None
    if product.get("name") is None:
        raise invalid("name", "Missing required param: name.", "parameter_missing")
    for key in ("active", "shippable"):
        flag = params.boolean(key)
        if flag is not None:
            product[key] = flag
    if params.has("images"):
        product["images"] = params.strings("images")
    if params.has("marketing_features"):
        product["marketing_features"] = [
            {"name": f.required("name")} for f in params.items("marketing_features")
        ]
    product["metadata"] = params.metadata(product["metadata"])


def create_product(call: Call) -> Obj:
    return new_product(call, call.params)


def new_product(call: Call, params: Params) -> Obj:
    product_id = params.text("id") or new_id("prod_", 14)
    if call.store.find(call.account, product_id) is not None:
        raise StripeApiError(
            400, f"Product already exists with id '{product_id}'.", code="resource_already_exists"
        )
    now = call.now()
    product: Obj = {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": None,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    _product_fields(params, product)
    call.store.add(call.account, product)
    call.store.emit(call.account, "product.created", product)
    default = params.sub("default_price_data")
    if default is not None:
        price = new_price(call, default, product["id"])
        product["default_price"] = price["id"]
    return product


def retrieve_product(call: Call) -> Obj:
    return call.store.get(call.account, "product", call.path["id"])


def update_product(call: Call) -> Obj:
    product = retrieve_product(call)
    before = snapshot(product)
    params = call.params
    _product_fields(params, product)
    if params.has("default_price"):
        price_id = params.text("default_price") or None
        if price_id is not None:
            price = call.store.get(call.account, "price", price_id, "default_price")
            if price["product"] != product["id"]:
                raise invalid("default_price", "The default price must belong to this product.")
        product["default_price"] = price_id
    if product != before:
        product["updated"] = call.now()
        call.store.emit_update(call.account, "product.updated", product, before)
    return product


def delete_product(call: Call) -> Obj:
    product = retrieve_product(call)
    if any(p["product"] == product["id"] for p in call.store.all(call.account, "price")):
        raise StripeApiError(
            400,
            "This product cannot be deleted because it has one or more user-created prices.",
            code="product_has_prices",
        )
    call.store.remove(product["id"])
    call.store.emit(call.account, "product.deleted", product)
    return {"id": product["id"], "object": "product", "deleted": True}


def list_products(call: Call) -> Obj:
    params = call.params
    active = params.boolean("active")
    ids = set(params.strings("ids"))
    shippable = params.boolean("shippable")
    return page(
        call.store.all(call.account, "product"),
        params,
        "/v1/products",
        filtered=lambda p: (
            (active is None or p["active"] == active)
            and (not ids or p["id"] in ids)
            and (shippable is None or p["shippable"] == shippable)
        ),
    )


def _recurring(params: Params) -> Obj | None:
    recurring = params.sub("recurring")
    if recurring is None:
        return None
    interval = recurring.choice("interval", INTERVALS, required=True)
    count = recurring.integer("interval_count", minimum=1) or 1
    usage = recurring.choice("usage_type", ("licensed", "metered")) or "licensed"
    return {
        "interval": interval,
        "interval_count": count,
        "meter": recurring.text("meter"),
        "trial_period_days": recurring.integer("trial_period_days"),
        "usage_type": usage,
    }


def _lookup_key(call: Call, params: Params, price_id: str) -> str | None:
    """A lookup key names one price: taking one in use needs `transfer_lookup_key`."""
    key = params.text("lookup_key") or None
    if key is None:
        return None
    holder = next(
        (
            p
            for p in call.store.all(call.account, "price")
            if p["lookup_key"] == key and p["id"] != price_id
        ),
        None,
    )
    if holder is not None:
        if not params.boolean("transfer_lookup_key"):
            raise invalid(
                "lookup_key",
                f"A price (`{holder['id']}`) already uses that lookup key.",
                "parameter_invalid_string",
            )
        before = snapshot(holder)
        holder["lookup_key"] = None
        call.store.emit_update(call.account, "price.updated", holder, before)
    return key


def _product_of_price(call: Call, params: Params) -> str:
    data = params.sub("product_data")
    product_id = params.text("product")
    if product_id is not None and data is not None:
        raise invalid(
            "product_data", "You may only specify one of these parameters: product, product_data."
        )
    if data is not None:
        product = create_product(Call(call.store, call.settings, call.account, data, {}, call.url))
        product_id = product["id"]
    if product_id is None:
        raise invalid("product", "Missing required param: product.", "parameter_missing")
    call.store.get(call.account, "product", product_id, "product")
    return product_id


def new_price(call: Call, params: Params, product_id: str, *, active: bool = True) -> Obj:
    currency = params.required("currency").lower()
    amount = params.integer("unit_amount")
    decimal = params.text("unit_amount_decimal")
    if amount is None and decimal is not None:
        try:
            amount = int(float(decimal))
        except ValueError as error:
            raise invalid("unit_amount_decimal", f"Invalid decimal: {decimal}") from error
    if amount is None:
        raise invalid("unit_amount", "Missing required param: unit_amount.", "parameter_missing")
    recurring = _recurring(params)
    price: Obj = {
        "id": new_id("price_1"),
        "object": "price",
        "active": active and params.boolean("active") is not False,
        "billing_scheme": params.choice("billing_scheme", ("per_unit",)) or "per_unit",
        "created": call.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": params.metadata(),
        "nickname": params.text("nickname"),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": params.choice("tax_behavior", ("exclusive", "inclusive", "unspecified"))
        or "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
    price["lookup_key"] = _lookup_key(call, params, price["id"])
    call.store.add(call.account, price)
    call.store.emit(call.account, "price.created", price)
    return price


def create_price(call: Call) -> Obj:
    return new_price(call, call.params, _product_of_price(call, call.params))


def retrieve_price(call: Call) -> Obj:
    return call.store.get(call.account, "price", call.path["id"])


def update_price(call: Call) -> Obj:
    price = retrieve_price(call)
    before = snapshot(price)
    params = call.params
    active = params.boolean("active")
    if active is not None:
        price["active"] = active
    if params.has("lookup_key"):
        price["lookup_key"] = _lookup_key(call, params, price["id"])
    if params.has("nickname"):
        price["nickname"] = params.text("nickname") or None
    behavior = params.choice("tax_behavior", ("exclusive", "inclusive", "unspecified"))
    if behavior is not None:
        price["tax_behavior"] = behavior
    price["metadata"] = params.metadata(price["metadata"])
    call.store.emit_update(call.account, "price.updated", price, before)
    return price


def list_prices(call: Call) -> Obj:
    params = call.params
    active = params.boolean("active")
    product = params.text("product")
    currency = params.text("currency")
    kind = params.choice("type", ("one_time", "recurring"))
    keys = set(params.strings("lookup_keys"))
    recurring = params.sub("recurring")
    interval = recurring.choice("interval", INTERVALS) if recurring else None

    def wanted(price: Obj) -> bool:
        return (
            (active is None or price["active"] == active)
            and (product is None or price["product"] == product)
            and (currency is None or price["currency"] == currency.lower())
            and (kind is None or price["type"] == kind)
            and (not keys or price["lookup_key"] in keys)
            and (interval is None or (price["recurring"] or {}).get("interval") == interval)
        )

    return page(call.store.all(call.account, "price"), params, "/v1/prices", filtered=wanted)


PRICE_FIELDS = (
    "currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "recurring",
    "lookup_key", "transfer_lookup_key", "active", "nickname", "metadata", "tax_behavior",
    "billing_scheme",
)  # fmt: skip

ENDPOINTS = [
    Endpoint("POST", "/v1/products", create_product, (*PRODUCT_FIELDS, "id", "default_price_data")),
    Endpoint(
        "GET", "/v1/products", list_products, ("active", "ids", "shippable", "created", "url")
    ),
    Endpoint("GET", "/v1/products/{id}", retrieve_product),
    Endpoint("POST", "/v1/products/{id}", update_product, (*PRODUCT_FIELDS, "default_price")),
    Endpoint("DELETE", "/v1/products/{id}", delete_product),
    Endpoint("POST", "/v1/prices", create_price, PRICE_FIELDS),
    Endpoint(
        "GET",
        "/v1/prices",
        list_prices,
        ("active", "product", "currency", "type", "lookup_keys", "recurring", "created"),
    ),
    Endpoint("GET", "/v1/prices/{id}", retrieve_price),
    Endpoint("POST", "/v1/prices/{id}", update_price, PRICE_UPDATABLE),
]
