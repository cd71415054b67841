"""`Stripe-Signature` verification with the official library, several secrets at once
(rotation), and a distinct 400 for each way a delivery can be wrong."""

from __future__ import annotations

import time
from collections.abc import Sequence

from stripe import SignatureVerificationError, WebhookSignature

from tessera.shared.http.problems import Problem


class SignatureProblem(Problem):
    status = 400


class SignatureMissing(SignatureProblem):
    slug = "signature-missing"
    title = "Stripe-Signature header missing"


class SignatureMalformed(SignatureProblem):
    slug = "signature-malformed"
    title = "Stripe-Signature header malformed"


class SignatureMismatch(SignatureProblem):
    slug = "signature-mismatch"
    title = "Signature does not match"


class SignatureStale(SignatureProblem):
    slug = "signature-stale"
    title = "Signature timestamp outside the tolerance"


class PayloadMalformed(SignatureProblem):
    slug = "payload-malformed"
    title = "Malformed event payload"


MAX_HEADER_LENGTH = 4096


def classify(error: SignatureVerificationError) -> SignatureProblem:
    message = str(error.user_message or error)
    if message.startswith("Timestamp outside the tolerance zone"):
        return SignatureStale("The event is older than the allowed tolerance; it may be a replay.")
    if message.startswith("No signatures found matching"):
        return SignatureMismatch("No v1 signature matches this payload with any configured secret.")
    return SignatureMalformed(
        "The header must carry t=<timestamp> and at least one v1=<signature>."
    )


class SignatureFromTheFuture(SignatureStale):
    slug = "signature-future"
    title = "Signature timestamp is in the future"


def signed_at(header: str) -> int | None:
    """The header's `t=` (the time Stripe signed at), or None."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify(payload: bytes, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise a `SignatureProblem` unless one of `secrets` signed `payload` recently."""
    if not header:
        raise SignatureMissing("Stripe signs every webhook; this request carries no signature.")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureMalformed("The Stripe-Signature header is too long.")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadMalformed("The body is not UTF-8 text.") from None
    problem: SignatureProblem | None = None
    for secret in secrets:
        try:
            # Imported by name: `stripe.X` resolves through the package's lazy importer
            # on every access.
            WebhookSignature.verify_header(payload, header, secret, tolerance)
        except SignatureVerificationError as error:
            problem = classify(error)
            if not isinstance(problem, SignatureMismatch):
                # Malformed is malformed under every secret; stale means this secret matched.
                raise problem from None
        else:
            # The library refuses only the past: a timestamp ahead of the clock by more than
            # the tolerance is a delivery signed to be replayed later.
            timestamp = signed_at(header)
            if timestamp is None or timestamp > time.time() + tolerance:
                raise SignatureFromTheFuture(
                    "The signature's timestamp is ahead of this server's clock by more than "
                    "the allowed tolerance."
                )
            return
    raise problem or SignatureMismatch("No webhook secret is configured.")
