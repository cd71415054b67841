"""The JetStream topology, declared in one place: streams, their owners, and every durable
consumer with its configuration.

One stream per producer, declared only by that producer. Consumers are durable pull
consumers named after the consuming service; replicas of a service share one consumer and
so share the work. A namespace (settings `TESSERA_NAMESPACE`) prefixes stream names,
subjects and consumer names, so a test run or a second stack sharing the server is isolated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import (
    AccountCreated,
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
    PurchaseCompleted,
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from tessera.shared.events.envelope import Event
from tessera.shared.events.licensing import (
    LicenseIssued,
    LicenseReinstated,
    LicenseRevoked,
    LicenseSuspended,
    UsageThresholdReached,
)
from tessera.shared.events.webhooks import EndpointDisabled


@dataclass(frozen=True)
class Stream:
    name: str
    root: str
    owner: str
    # None: kept until replaced (a record stream, where a message is a state, not a fact).
    max_age: timedelta | None = timedelta(days=30)
    # Nats-Msg-Id de-duplication window; the inbox, not this, is what makes consumers
    # idempotent (a redelivery after the window is still caught there).
    duplicate_window: timedelta = timedelta(minutes=10)
    # 1 gives KV semantics: each subject holds only its latest message (-1: no limit).
    max_msgs_per_subject: int = -1


BILLING = Stream(name="BILLING", root="billing", owner="billing")
AUTH = Stream(name="AUTH", root="auth", owner="auth")
LICENSING = Stream(name="LICENSING", root="licensing", owner="licensing")
# API key records (`ApiKeyChanged`), one subject per key, only the latest kept and none
# aged out: a key lives until revoked, and every replica of every service replays this
# stream into its `KeyBook` at start. Auth owns it; nobody has a durable consumer on it.
APIKEYS = Stream(name="APIKEYS", root="apikeys", owner="auth", max_age=None, max_msgs_per_subject=1)
# The seller directory (`SellerChanged`), one subject per seller, only the latest kept and
# none aged out: every replica of every service replays it into its `SellerBook` at start.
# Auth owns it; nobody has a durable consumer on it.
SELLERS = Stream(name="SELLERS", root="sellers", owner="auth", max_age=None, max_msgs_per_subject=1)

WEBHOOKS = Stream(name="WEBHOOKS", root="webhooks", owner="webhooks")

STREAMS: tuple[Stream, ...] = (BILLING, AUTH, LICENSING, APIKEYS, SELLERS, WEBHOOKS)


@dataclass(frozen=True)
class Subscription:
    """A durable consumer: `service` consumes `event` from its producer's stream."""

    service: str
    event: type[Event]
    stream: Stream
    max_deliver: int = 12
    ack_wait: timedelta = timedelta(seconds=30)
    max_ack_pending: int = 1000
    # Delay before each redelivery after a failed attempt (index = attempt - 1; the last
    # value repeats). A failure is retried with these delays, never a hot loop.
    retry_delays: tuple[float, ...] = field(default=(0.2, 1.0, 5.0, 15.0, 30.0, 60.0))

    @property
    def durable(self) -> str:
        return f"{self.service}__{self.event.subject.replace('.', '_')}"

    def retry_delay(self, attempt: int) -> float:
        index = min(max(attempt, 1), len(self.retry_delays)) - 1
        return self.retry_delays[index]


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(service="billing", event=PurchaseCompleted, stream=BILLING),
    Subscription(service="auth", event=AccountCreated, stream=BILLING),
    Subscription(service="licensing", event=AccountCreated, stream=BILLING),
    Subscription(service="licensing", event=OrderPaid, stream=BILLING),
    Subscription(service="licensing", event=OrderRefunded, stream=BILLING),
    Subscription(service="licensing", event=OrderDisputed, stream=BILLING),
    Subscription(service="licensing", event=OrderDisputeClosed, stream=BILLING),
    # A customer auth makes (customer API, sign-up) is known to billing's and licensing's
    # seller routes before any purchase.
    Subscription(service="billing", event=UserCreated, stream=AUTH),
    Subscription(service="licensing", event=UserCreated, stream=AUTH),
    # One durable consumer per kind; licensing orders them by the event's `sequence`.
    Subscription(service="licensing", event=SubscriptionStarted, stream=BILLING),
    Subscription(service="licensing", event=SubscriptionChanged, stream=BILLING),
    Subscription(service="licensing", event=SubscriptionRenewed, stream=BILLING),
    Subscription(service="licensing", event=SubscriptionEnded, stream=BILLING),
    # The platform plan: auth keeps each seller's plan status from the home seller's
    # subscriptions to tier `platform` (docs/sellers.md, "Platform plan").
    Subscription(service="auth", event=SubscriptionStarted, stream=BILLING),
    Subscription(service="auth", event=SubscriptionChanged, stream=BILLING),
    Subscription(service="auth", event=SubscriptionRenewed, stream=BILLING),
    Subscription(service="auth", event=SubscriptionEnded, stream=BILLING),
    # Webhooks turns these into the public events sellers' endpoints receive
    # (docs/webhooks.md): one durable consumer per kind, each event fanned out once (inbox).
    Subscription(service="webhooks", event=UserCreated, stream=AUTH),
    Subscription(service="webhooks", event=OrderPaid, stream=BILLING),
    Subscription(service="webhooks", event=OrderRefunded, stream=BILLING),
    Subscription(service="webhooks", event=OrderDisputed, stream=BILLING),
    Subscription(service="webhooks", event=OrderDisputeClosed, stream=BILLING),
    Subscription(service="webhooks", event=SubscriptionStarted, stream=BILLING),
    Subscription(service="webhooks", event=SubscriptionChanged, stream=BILLING),
    Subscription(service="webhooks", event=SubscriptionRenewed, stream=BILLING),
    Subscription(service="webhooks", event=SubscriptionEnded, stream=BILLING),
    Subscription(service="webhooks", event=LicenseIssued, stream=LICENSING),
    Subscription(service="webhooks", event=LicenseSuspended, stream=LICENSING),
    Subscription(service="webhooks", event=LicenseReinstated, stream=LICENSING),
    Subscription(service="webhooks", event=LicenseRevoked, stream=LICENSING),
    Subscription(service="webhooks", event=UsageThresholdReached, stream=LICENSING),
    # An endpoint the delivery worker disabled: auth mails the seller's owners.
    Subscription(service="auth", event=EndpointDisabled, stream=WEBHOOKS),
)


def streams_owned_by(service: str) -> tuple[Stream, ...]:
    return tuple(s for s in STREAMS if s.owner == service)


def subscriptions_of(service: str) -> tuple[Subscription, ...]:
    return tuple(s for s in SUBSCRIPTIONS if s.service == service)


def subscription(service: str, event: type[Event]) -> Subscription:
    for sub in SUBSCRIPTIONS:
        if sub.service == service and sub.event is event:
            return sub
    raise LookupError(f"{service} has no subscription to {event.subject}")


def stream_for_subject(subject: str) -> Stream:
    root = subject.split(".", 1)[0]
    for stream in STREAMS:
        if stream.root == root:
            return stream
    raise LookupError(f"no stream holds {subject}")


@dataclass(frozen=True)
class Namespace:
    """Maps topology names into one namespace (`""` in production: names unchanged)."""

    prefix: str = ""

    def stream(self, stream: Stream) -> str:
        return f"{self.prefix.upper()}_{stream.name}" if self.prefix else stream.name

    def subject(self, subject: str) -> str:
        return f"{self.prefix}.{subject}" if self.prefix else subject

    def durable(self, sub: Subscription) -> str:
        return f"{self.prefix}__{sub.durable}" if self.prefix else sub.durable
