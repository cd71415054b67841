"""What the stand-in is started with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebhookTarget:
    """An endpoint events are POSTed to, signed with its secret (`whsec_...`)."""

    url: str
    secret: str


@dataclass(frozen=True)
class StandInSettings:
    # Where the stand-in is reached: hosted pages (checkout, portal, onboarding) link here.
    public_url: str = "http://127.0.0.1:12111"
    # Accept only this secret key; None accepts any test key (sk_test_..., rk_test_...).
    api_key: str | None = None
    # Connect's OAuth client id (`ca_...`) that /oauth/token and /oauth/deauthorize expect.
    client_id: str = "ca_standin"
    # Events of the platform's own objects go here; events of connected accounts' objects
    # (with `account`) go to the Connect endpoint, as Stripe's two endpoint kinds.
    platform_webhook: WebhookTarget | None = None
    connect_webhook: WebhookTarget | None = None
    # Seconds between a failed delivery and its retries (Stripe retries for days; dev waits less).
    delivery_retries: tuple[float, ...] = (1.0, 5.0, 30.0)
    delivery_timeout: float = 10.0
    # Days after a failed renewal payment that it is retried, then what happens to the
    # subscription (Stripe's Billing settings: "cancel" or "unpaid").
    payment_retry_days: tuple[int, ...] = (3, 5, 7)
    after_retries: str = "cancel"
    # Put every customer created without a `test_clock` on a test clock of its own (at the
    # time it was made), so `./dev up`'s offline subscriptions can be advanced by hand
    # (`./dev stripe clock advance`). Stripe never does this; only the stand-in's flag does.
    clock_per_customer: bool = False
    # Where the state is kept between runs (loaded at start, written at shutdown); None:
    # memory only. `./dev up` keeps one beside its databases, whose rows name Stripe's ids.
    state_file: str | None = None
    max_body_bytes: int = 256 * 1024
    # Requests per second per key before a 429 (Stripe allows 25 in test mode).
    rate_limit: int = 100
