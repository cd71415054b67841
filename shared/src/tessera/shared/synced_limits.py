"""Rate limits for the hot public paths, decided in memory and shared through Redis.

The kernel's `RateLimiter` asks Redis on every request: exact across replicas, but every
request suspends for a round trip, which on the desktop `validate` path and Stripe's
webhook ingress cost more than everything else they do. This limiter decides from its own
memory, with no await, and a background task pushes the hits it counted to Redis every
`sync_interval` (one pipelined round trip for all keys) and reads back the shared totals.

- Within one process the count is exact: a burst of N+k hits against a limit of N lets
  exactly N through.
- Across replicas a key's budget is shared, up to what the other replicas counted since
  their last sync: at most (replicas - 1) x their rate x `sync_interval` over the limit.
- A sliding-window counter (the previous window's total, weighted by how much of it still
  overlaps, plus the current one), like `limits`' SlidingWindowCounter, so a client cannot
  double its rate across a window boundary.
- When Redis does not answer, the hits stay counted locally and are pushed when it returns:
  each replica keeps limiting on its own, and the endpoint keeps answering.

The exact limiter stays where exactness is the point (sign-in attempts, one-time codes).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from limits import parse
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from tessera.shared.http.problems import RateLimited
from tessera.shared.redis import Decision

log = logging.getLogger("tessera.ratelimit")

ALLOWED = Decision(allowed=True, retry_after=0)  # one object: the hot path allocates none


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window: float  # seconds

    @classmethod
    def parse(cls, name: str, spec: str) -> Rule:
        """`Rule.parse("webhook", "600/minute")`, in the `limits` notation settings use."""
        item = parse(spec)
        return cls(name, item.amount, float(item.get_expiry()))


@dataclass(slots=True)
class _Counter:
    rule: Rule
    window_index: int
    shared: int = 0  # the window's total in Redis at the last sync (our flushed hits too)
    in_flight: int = 0  # hits being pushed right now
    pending: int = 0  # hits not pushed yet
    previous: int = 0  # the previous window's total, as last known
    # Syncs left that read the previous window back (other replicas' last hits in it can
    # land up to a sync interval after it ended; after that it no longer changes).
    previous_reads: int = 2

    def local_total(self) -> int:
        return self.shared + self.in_flight + self.pending


@dataclass(frozen=True, slots=True)
class _Push:
    key: str
    window_index: int
    hits: int
    expire: int
    window: float


# One call for a whole sync (a pipeline of three commands per key costs the client more
# to encode than the hot path it serves). KEYS: each push's window, then the previous window
# of each push that has not read it yet. ARGV: number of pushes, number of such reads, then
# hits and expiry per push. A window's key gets its expiry when this script creates it (the
# script is atomic, so no key lives without one). Returns each push's new total, then each
# previous window's total.
SYNC_SCRIPT = """
local pushes, reads = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 1, pushes do
  local hits = tonumber(ARGV[1 + 2 * i])
  local total = redis.call('INCRBY', KEYS[i], hits)
  if total == hits then
    redis.call('EXPIRE', KEYS[i], ARGV[2 + 2 * i])
  end
  out[i] = total
end
for j = 1, reads do
  out[pushes + j] = tonumber(redis.call('GET', KEYS[pushes + j]) or '0')
end
return out
"""


@dataclass
class SyncedLimiter:
    redis: Redis
    prefix: str
    sync_interval: float = 0.1
    clock: Callable[[], float] = time.time
    _script: AsyncScript = field(init=False)
    _counters: dict[str, _Counter] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _rolled: list[_Push] = field(default_factory=list)
    _last_sweep: float = 0.0
    _warned: bool = False

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(SYNC_SCRIPT)

    def hit(self, *hits: tuple[Rule, str]) -> Decision:
        """Count one hit per (rule, identifier) when all are within their limits. The
        decision says whether they were (`allowed`) and, when not, the seconds until the
        first exhausted window frees (`retry_after`; nothing is counted then): the same
        answer as `RateLimiter.hit`."""
        now = self.clock()
        keys = [f"{rule.name}:{ident}" for rule, ident in hits]
        counters = [
            self._counter(key, rule, now) for key, (rule, _) in zip(keys, hits, strict=True)
        ]
        refused = 0
        for counter in counters:
            if self._estimate(counter, now) + 1 > counter.rule.limit:
                refused = max(refused, self._seconds_left(counter, now))
        if refused:
            return Decision(allowed=False, retry_after=refused)
        for counter in counters:
            counter.pending += 1
        self._dirty.update(keys)
        return ALLOWED

    def undo(self, *hits: tuple[Rule, str]) -> None:
        """Take back hits counted for a request that then went elsewhere to be counted. A hit
        already pushed to Redis is taken back there by the next sync (a negative push)."""
        for rule, ident in hits:
            counter = self._counters.get(self._key(rule, ident))
            if counter is not None:
                counter.pending -= 1
                self._dirty.add(self._key(rule, ident))

    def standing(self, rule: Rule, ident: str) -> tuple[int, int]:
        """(hits left now, seconds until the current window ends) for a rule and
        identifier, as `hit` would judge them: what an answer's RateLimit fields say."""
        now = self.clock()
        counter = self._counter(self._key(rule, ident), rule, now)
        left = max(0, rule.limit - math.ceil(self._estimate(counter, now)))
        return left, self._seconds_left(counter, now)

    def enforce(self, *hits: tuple[Rule, str]) -> None:
        """Count the hits; raise `RateLimited` (429 with Retry-After) when any is over."""
        retry_after = self.hit(*hits).retry_after
        if retry_after:
            raise RateLimited(retry_after)

    async def run(self) -> None:
        """Push and refresh every `sync_interval` until cancelled."""
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # a sync bug must not end syncing for the process's life
                log.exception("ratelimit.sync.failed")

    async def sync(self) -> None:
        """One round trip: add our new hits to the shared counters, read the totals back."""
        now = self.clock()
        # Hits of windows that no longer weigh on any estimate are not worth keeping (a long
        # Redis outage would otherwise pile them up).
        rolled = [p for p in self._rolled if p.window_index >= int(now // p.window) - 1]
        pushes = self._take_pushes(now)
        self._rolled = []
        if pushes or rolled:
            await self._send(pushes, rolled)
        if now - self._last_sweep > 60:
            self._sweep(now)

    def _key(self, rule: Rule, ident: str) -> str:
        return f"{rule.name}:{ident}"

    def _redis_key(self, key: str, window_index: int) -> str:
        return f"{self.prefix}rls:{key}:{window_index}"

    def _counter(self, key: str, rule: Rule, now: float) -> _Counter:
        index = int(now // rule.window)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(rule, index)
        elif counter.window_index != index:
            self._roll(key, counter, index)
        return counter

    def _roll(self, key: str, counter: _Counter, index: int) -> None:
        if counter.pending:
            self._rolled.append(self._push(key, counter, counter.pending))
        consecutive = index == counter.window_index + 1
        counter.previous = counter.local_total() if consecutive else 0
        counter.window_index = index
        counter.shared = counter.in_flight = counter.pending = 0
        counter.previous_reads = 2

    def _estimate(self, counter: _Counter, now: float) -> float:
        elapsed = (now % counter.rule.window) / counter.rule.window
        return counter.previous * (1 - elapsed) + counter.local_total()

    def _seconds_left(self, counter: _Counter, now: float) -> int:
        window = counter.rule.window
        return max(1, math.ceil(window - now % window))

    def _expiry(self, rule: Rule) -> int:
        return math.ceil(rule.window * 2) + 1

    def _push(self, key: str, counter: _Counter, hits: int) -> _Push:
        rule = counter.rule
        return _Push(key, counter.window_index, hits, self._expiry(rule), rule.window)

    def _take_pushes(self, now: float) -> list[_Push]:
        pushes = []
        for key in self._dirty:
            counter = self._counters.get(key)
            if counter is None:
                continue
            counter.in_flight += counter.pending
            pushes.append(self._push(key, counter, counter.in_flight))
            counter.pending = 0
        self._dirty = set()
        return pushes

    async def _send(self, pushes: list[_Push], rolled: list[_Push]) -> None:
        every = [*rolled, *pushes]
        reads = [p for p in pushes if self._reads_previous(p)]
        keys = [self._redis_key(p.key, p.window_index) for p in every]
        keys += [self._redis_key(p.key, p.window_index - 1) for p in reads]
        args: list[int] = [len(every), len(reads)]
        for push in every:
            args += [push.hits, push.expire]
        try:
            results = await self._script(keys=keys, args=args, client=self.redis)
        except Exception as error:  # Redis down, or anything else: the hits wait for the next sync
            self._keep_for_later(pushes, rolled, error)
            return
        self._warned = False
        for push, total in zip(pushes, results[len(rolled) : len(every)], strict=True):
            counter = self._current(push)
            if counter is not None:
                counter.shared = int(total)
                counter.in_flight = 0
        for push, before in zip(reads, results[len(every) :], strict=True):
            counter = self._current(push)
            if counter is not None:
                counter.previous = max(counter.previous, int(before))
                counter.previous_reads -= 1

    def _current(self, push: _Push) -> _Counter | None:
        """The push's counter, unless it rolled meanwhile (the new window starts from its
        own count)."""
        counter = self._counters.get(push.key)
        if counter is None or counter.window_index != push.window_index:
            return None
        return counter

    def _reads_previous(self, push: _Push) -> bool:
        counter = self._current(push)
        return counter is not None and counter.previous_reads > 0

    def _keep_for_later(self, pushes: list[_Push], rolled: list[_Push], error: Exception) -> None:
        if not self._warned:
            log.warning("ratelimit.sync.unavailable", extra={"error": repr(error)})
            self._warned = True
        self._rolled.extend(rolled)
        for push in pushes:
            counter = self._counters.get(push.key)
            if counter is None:
                continue
            if counter.window_index == push.window_index:
                counter.pending += counter.in_flight
                counter.in_flight = 0
                self._dirty.add(push.key)
            else:
                self._rolled.append(push)

    def _sweep(self, now: float) -> None:
        """Forget keys idle for two windows (their counts no longer weigh on anything)."""
        self._last_sweep = now
        stale = [
            key
            for key, c in self._counters.items()
            if c.window_index < int(now // c.rule.window) - 1 and key not in self._dirty
        ]
        for key in stale:
            del self._counters[key]
