"""Stripe's API through the official library: timeouts, retries and idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import stripe

from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.accounts import Accounts, StripeAccount, platform_accounts
from tessera.billing.stripe.return_urls import ReturnUrls
from tessera.shared.http.problems import Problem


class SoldItem(Protocol):
    """What a checkout session needs of the item sold (the catalog's `CatalogItem` is one):
    the gateway sits below the catalog, so it names only these."""

    @property
    def sku(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def unit_amount(self) -> int: ...
    @property
    def stripe_price_id(self) -> str | None: ...
    @property
    def allow_promotion_codes(self) -> bool: ...


class StripeUnavailable(Problem):
    status = 502
    slug = "stripe-unavailable"
    title = "The payment provider did not answer"


@dataclass(frozen=True)
class CheckoutLink:
    id: str
    url: str


def new_client(settings: BillingSettings, key: str) -> stripe.StripeClient:
    """The official client for one of the platform's keys: 10 s timeouts, 2 retries, the
    Connect client id (OAuth), and sync calls allowed for OAuth's (the library has those
    in sync form only; billing runs them in a thread)."""
    base = (
        {"api": settings.stripe_api_base, "connect": settings.stripe_api_base}
        if settings.stripe_api_base
        else None
    )
    return stripe.StripeClient(
        key,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=2,
        http_client=stripe.HTTPXClient(timeout=10, allow_sync_methods=True),
        client_id=settings.stripe_connect_client_id,
    )


class StripeGateway:
    def __init__(self, settings: BillingSettings) -> None:
        assert settings.stripe_secret_key is not None
        self.client = new_client(settings, settings.stripe_secret_key.get_secret_value())
        test_key = settings.stripe_test_secret_key
        # A test key beside a live one: it reaches the test-mode tenants' connected accounts.
        self.test_client = new_client(settings, test_key.get_secret_value()) if test_key else None
        self.settings = settings

    def accounts(self) -> Accounts:
        """Which account each tenant's objects go to, with these keys."""
        assert self.settings.stripe_secret_key is not None
        key = self.settings.stripe_secret_key.get_secret_value()
        return platform_accounts(self.client, key, self.test_client)

    async def create_checkout_session(
        self,
        item: SoldItem,
        quantity: int,
        email: str | None,
        idempotency_key: str,
        return_to: ReturnUrls,
        on: StripeAccount | None = None,
        application_fee: int = 0,
    ) -> CheckoutLink:
        """A Checkout Session in payment mode whose metadata alone says what was bought: on
        the platform's account, or `on` a seller's connected account with the platform's
        `application_fee` (minor units) taken from the payment; the buyer returns to
        `return_to`."""
        line_item: dict[str, object] = (
            {"price": item.stripe_price_id, "quantity": quantity}
            if item.stripe_price_id
            else {
                "price_data": {
                    "currency": item.currency,
                    "unit_amount": item.unit_amount,
                    "product_data": {"name": item.name},
                },
                "quantity": quantity,
            }
        )
        params: dict[str, object] = {
            "mode": "payment",
            "line_items": [line_item],
            "customer_creation": "always",
            "metadata": {"sku": item.sku, "quantity": str(quantity)},
            "payment_intent_data": {
                "metadata": {"sku": item.sku},
                **({"application_fee_amount": application_fee} if application_fee else {}),
            },
            "success_url": return_to.success_url,
            "cancel_url": return_to.cancel_url,
        }
        if email:
            params["customer_email"] = email
        if item.allow_promotion_codes and not application_fee:
            # Only then may the webhook's total be less a discount (docs/billing.md). Not
            # with a platform fee: the fee is a fixed amount of the undiscounted total, so a
            # discount would raise its share, or make the payment fail below it.
            params["allow_promotion_codes"] = True
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        client = self.client
        if on is not None:
            client = on.client
            if on.account is not None:
                options["stripe_account"] = on.account
        try:
            session = await client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                options=options,
            )
        except stripe.StripeError as error:
            raise StripeUnavailable("Checkout could not be started; please try again.") from error
        assert session.url is not None
        return CheckoutLink(session.id, session.url)

    async def create_portal_session(
        self, customer_id: str, return_url: str, on: StripeAccount | None = None
    ) -> str:
        """A Customer Portal session: on the platform's account, or `on` a seller's."""
        client, options = self.client, stripe.RequestOptions()
        if on is not None:
            client = on.client
            if on.account is not None:
                options["stripe_account"] = on.account
        try:
            session = await client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}, options=options
            )
        except stripe.StripeError as error:
            raise StripeUnavailable("The billing portal could not be opened.") from error
        return session.url


# ---------------------------------------------------------------- subscriptions
# Calls made in a tenant's own Stripe account (`Accounts.account_for`): a connected
# account's id goes as `Stripe-Account`. Each carries an idempotency key, so a retried
# request (the library's own retries, or the caller's) changes Stripe once.


def _options(account: StripeAccount, idempotency_key: str | None) -> dict[str, str]:
    options: dict[str, str] = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    if account.account:
        options["stripe_account"] = account.account
    return options


async def find_customer(account: StripeAccount, email: str) -> str | None:
    """The account's newest Stripe customer with this email: a returning buyer keeps one
    customer (one portal, one payment method) across subscriptions."""
    try:
        found = await account.client.v1.customers.list_async(
            {"email": email, "limit": 1},
            options=_options(account, None),  # type: ignore[arg-type]
        )
    except stripe.StripeError as error:
        raise StripeUnavailable("Checkout could not be started; please try again.") from error
    return found.data[0].id if found.data else None


async def create_subscription_checkout(
    account: StripeAccount, params: dict[str, object], idempotency_key: str
) -> CheckoutLink:
    """A Checkout Session in subscription mode (`params` as Stripe takes them)."""
    try:
        session = await account.client.v1.checkout.sessions.create_async(
            {"mode": "subscription", **params},  # type: ignore[arg-type]
            options=_options(account, idempotency_key),  # type: ignore[arg-type]
        )
    except stripe.StripeError as error:
        raise StripeUnavailable("Checkout could not be started; please try again.") from error
    assert session.url is not None
    return CheckoutLink(session.id, session.url)


async def update_subscription(
    account: StripeAccount, subscription_id: str, params: dict[str, object], idempotency_key: str
) -> None:
    try:
        await account.client.v1.subscriptions.update_async(
            subscription_id,
            params,  # type: ignore[arg-type]
            options=_options(account, idempotency_key),  # type: ignore[arg-type]
        )
    except stripe.InvalidRequestError as error:
        raise StripeRefused(error.user_message or "Stripe refused the change.") from error
    except stripe.StripeError as error:
        raise StripeUnavailable("The subscription could not be changed; try again.") from error


async def cancel_subscription(
    account: StripeAccount, subscription_id: str, idempotency_key: str
) -> None:
    """Cancel now (Stripe sends `customer.subscription.deleted`)."""
    try:
        await account.client.v1.subscriptions.cancel_async(
            subscription_id,
            options=_options(account, idempotency_key),  # type: ignore[arg-type]
        )
    except stripe.InvalidRequestError as error:
        raise StripeRefused(error.user_message or "Stripe refused the cancellation.") from error
    except stripe.StripeError as error:
        raise StripeUnavailable("The subscription could not be canceled; try again.") from error


async def create_portal(account: StripeAccount, customer_id: str, return_url: str) -> str:
    try:
        session = await account.client.v1.billing_portal.sessions.create_async(
            {"customer": customer_id, "return_url": return_url},
            options=_options(account, None),  # type: ignore[arg-type]
        )
    except stripe.StripeError as error:
        raise StripeUnavailable("The billing portal could not be opened.") from error
    return session.url


class StripeRefused(Problem):
    status = 409
    slug = "stripe-refused"
    title = "Stripe refused the request"
