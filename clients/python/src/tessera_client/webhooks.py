"""Verifying Tessera's outbound webhooks (Standard Webhooks, https://www.standardwebhooks.com/)
and parsing them into typed events.

Implemented on the standard library's `hmac` rather than the `standardwebhooks` package: the
scheme is one HMAC-SHA256 and a constant-time compare, and that package brings its own
HTTP client stack and date libraries for the part a receiver does not use. The tests verify
real deliveries, which the webhooks service signs with `standardwebhooks`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping

from tessera_client.errors import InvalidWebhook
from tessera_client.events import WebhookEvent

# Standard Webhooks' tolerance: a timestamp further off than this is refused (replays).
TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


class WebhookVerifier:
    """`WebhookVerifier(secret).verify(body, headers)` → the event, or `InvalidWebhook`.

    Give several secrets during a rotation of yours; Tessera itself signs with both of its
    secrets during an endpoint's rotation overlap, so one secret is enough there."""

    def __init__(self, secret: str | Iterable[str], *, tolerance: int = TOLERANCE_SECONDS) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise ValueError("at least one signing secret")
        self._keys = [_key(s) for s in secrets]
        self.tolerance = tolerance

    def verify(
        self, body: bytes | str, headers: Mapping[str, str], *, now: float | None = None
    ) -> WebhookEvent:
        raw = body.encode() if isinstance(body, str) else body
        msg_id, timestamp, signatures = _headers(headers)
        current = time.time() if now is None else now
        if abs(current - timestamp) > self.tolerance:
            raise InvalidWebhook("timestamp outside the tolerance")
        signed = f"{msg_id}.{timestamp}.".encode() + raw
        expected = [
            base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self._keys
        ]
        # Every pair is compared in constant time; any match verifies.
        if not any(
            hmac.compare_digest(given, wanted) for given in signatures for wanted in expected
        ):
            raise InvalidWebhook("no matching signature")
        try:
            payload = json.loads(raw)
        except ValueError:
            raise InvalidWebhook("the body is not JSON") from None
        event = WebhookEvent.parse(payload)
        if event.id != msg_id:
            raise InvalidWebhook("the body's id is not the webhook-id")
        return event


MIN_KEY_BYTES = 16
TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a signing secret is whsec_ and base64") from None
    if len(key) < MIN_KEY_BYTES:
        # An empty secret (an unset variable) would make every forged signature verify.
        raise ValueError(f"a signing secret holds at least {MIN_KEY_BYTES} bytes")
    return key


def _headers(headers: Mapping[str, str]) -> tuple[str, int, list[bytes]]:
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    raw_signatures = lowered.get("webhook-signature")
    if not msg_id or not raw_timestamp or not raw_signatures:
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
    # ASCII digits only (`str.isdigit` takes "²"), and few enough for any real clock.
    if not TIMESTAMP.fullmatch(raw_timestamp):
        raise InvalidWebhook("webhook-timestamp is not a number")
    # Space-separated `v1,<base64>`; other versions (v1a: asymmetric) are not Tessera's.
    signatures = [
        part.partition(",")[2].encode() for part in raw_signatures.split() if part.startswith("v1,")
    ]
    return msg_id, int(raw_timestamp), signatures
