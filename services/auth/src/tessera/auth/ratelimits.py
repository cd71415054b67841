"""Rate-limit helpers beyond the kernel's `enforce`."""

from __future__ import annotations

import math
import time

from limits import parse

from tessera.shared.http.problems import RateLimited
from tessera.shared.redis import RateLimiter


async def refuse_if_exhausted(limiter: RateLimiter, rule: str, *identifiers: str) -> None:
    """429 when the window is already full, without counting a hit (for budgets that only
    failures spend, e.g. wrong user codes)."""
    item = parse(rule)
    if await limiter.limiter.test(item, *identifiers):
        return
    stats = await limiter.limiter.get_window_stats(item, *identifiers)
    retry = max(1, math.ceil(stats.reset_time - time.time()))
    raise RateLimited(
        "Too many wrong entries; try again later.",
        headers={"Retry-After": str(retry)},
        retry_after=retry,
    )
