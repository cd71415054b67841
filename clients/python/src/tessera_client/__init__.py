"""Tessera's Python server client (secret key): verify customers' access tokens locally,
meter usage, manage customers, start subscription checkouts, verify webhooks.
See clients/python/README.md."""

from tessera_client.client import AsyncTessera, Tessera
from tessera_client.errors import (
    BadRequest,
    Conflict,
    FeatureNotEntitled,
    IdempotencyKeyReused,
    InvalidToken,
    InvalidWebhook,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    ProblemError,
    RateLimited,
    ServerError,
    TesseraError,
    Unauthorized,
    UsageLimitExceeded,
    ValidationFailed,
)
from tessera_client.events import WebhookEvent
from tessera_client.models import (
    Checkout,
    Customer,
    CustomerPage,
    CustomerUsage,
    Usage,
    UsageCheck,
    UsageRecord,
    UsageRevert,
)
from tessera_client.ratelimit import Quota, RateLimit
from tessera_client.tokens import CustomerToken
from tessera_client.webhooks import WebhookVerifier

__all__ = [
    "AsyncTessera", "BadRequest", "Checkout", "Conflict", "Customer", "CustomerPage",
    "CustomerToken", "CustomerUsage", "FeatureNotEntitled", "IdempotencyKeyReused",
    "InvalidToken", "InvalidWebhook", "NotFound", "PaymentRequired", "PermissionDenied",
    "ProblemError", "Quota", "RateLimit", "RateLimited", "ServerError", "Tessera",
    "TesseraError", "Unauthorized", "Usage", "UsageCheck", "UsageLimitExceeded", "UsageRecord",
    "UsageRevert", "ValidationFailed", "WebhookEvent", "WebhookVerifier",
]  # fmt: skip
