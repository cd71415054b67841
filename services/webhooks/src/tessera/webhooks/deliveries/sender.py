"""One delivery attempt: resolve and check the target, sign, POST, read a bounded excerpt.

Signed per Standard Webhooks with the `standardwebhooks` package: `webhook-id` (the event's
stable id), `webhook-timestamp` (this attempt's time) and `webhook-signature`, which during
a rotation's overlap carries one signature per secret, space-separated, so a receiver
holding either secret verifies. Redirects are not followed (a 3xx is a failure), and the
whole attempt, DNS to the last byte read, is bounded by one timeout, so a receiver that
hangs or trickles holds its slot for that long at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from tessera.webhooks.targets import Resolver, TargetRefused, resolve

USER_AGENT = "Tessera-Webhooks/1 (+https://www.standardwebhooks.com/)"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(
    webhook_id: str, body: str, secrets: Sequence[str], at: datetime
) -> dict[str, str]:
    signatures = [Webhook(secret).sign(webhook_id, at, body) for secret in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # The excerpt is read raw: ask for an answer that is not compressed.
        "accept-encoding": "identity",
    }


async def read_excerpt(response: httpx.Response, limit: int) -> str:
    """At most `limit` bytes of the body as sent (raw: a compressed answer is never
    inflated), never more read, as text Postgres can store (no NUL)."""
    chunks, size = [], 0
    if limit > 0:
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    text = b"".join(chunks)[:limit].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")


@dataclass(frozen=True)
class Attempt:
    url: str
    webhook_id: str
    body: str
    secrets: Sequence[str]


async def send(
    client: httpx.AsyncClient,
    attempt: Attempt,
    *,
    resolver: Resolver,
    production: bool,
    timeout: float,
    excerpt_bytes: int,
) -> Outcome:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout):
            target = await resolve(attempt.url, resolver, production=production)
            headers = signed_headers(
                attempt.webhook_id, attempt.body, attempt.secrets, datetime.now(UTC)
            )
            headers["host"] = target.host_header
            # Connect to the checked address; TLS still names (and verifies) the host.
            extensions = {"sni_hostname": target.host} if target.url.startswith("https") else {}
            request = client.build_request(
                "POST", target.pinned_url, content=attempt.body.encode(), headers=headers,
                extensions=extensions,
            )  # fmt: skip
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                excerpt = await read_excerpt(response, excerpt_bytes)
            finally:
                await response.aclose()
    except TargetRefused as refused:
        return Outcome(None, elapsed(), "", f"refused: {refused}")
    except TimeoutError:
        return Outcome(None, elapsed(), "", f"timed out after {timeout:g}s")
    except httpx.HTTPError as error:
        return Outcome(None, elapsed(), "", f"{type(error).__name__}: {error}"[:500])
    return Outcome(response.status_code, elapsed(), excerpt, None)
