"""Rate-limit helpers beyond the kernel's `enforce`."""

from __future__ import annotations

from tessera.shared.http.problems import RateLimited
from tessera.shared.redis import RateLimiter


async def refuse_if_exhausted(limiter: RateLimiter, rule: str, *identifiers: str) -> None:
    """429 when the window is already full, without counting a hit (for budgets that only
    failures spend, e.g. wrong user codes)."""
    decision = await limiter.peek(rule, *identifiers)
    if not decision.allowed:
        raise RateLimited(decision.retry_after, "Too many wrong entries; try again later.")
