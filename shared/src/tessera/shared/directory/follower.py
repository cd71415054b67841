"""`RecordFollower`: the latest record per subject of a record stream, applied in memory.

A record stream (`Stream.max_msgs_per_subject == 1`) holds one message per entity, the
entity's whole current state. Every replica reads it with its own ephemeral ordered
consumer (`LAST_PER_SUBJECT`): it replays each subject's latest record at start, is `ready`
once the records that were in the stream when it looked have arrived, and then follows new
ones as they are published. nats-py's ordered consumer watches idle heartbeats and recreates
itself from the next stream sequence when they stop (a NATS restart, a lost message), so the
follower survives outages on its own.

What a record means is the caller's: the follower decodes each message as `event` and hands
it to `apply`, which keeps it or not (by its version). The seller directory (`SellerBook`)
and the API-key book are two appliers of the same follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import Namespace, Stream

log = logging.getLogger("tessera.directory")

E = TypeVar("E", bound=Event)


class RecordFollower(Generic[E]):
    """Replays, then follows, one record stream into `apply`."""

    def __init__(self, stream: Stream, event: type[E], apply: Callable[[E], object]) -> None:
        if stream.max_msgs_per_subject != 1:
            raise ValueError(f"{stream.name} is not a record stream")
        self.stream = stream
        self.event = event
        self.apply = apply
        self._ready = asyncio.Event()
        self.ready_at: float | None = None  # monotonic; when the replay was in

    @property
    def ready(self) -> bool:
        """The initial replay is in: a record not held now does not exist (yet)."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def _set_ready(self) -> None:
        if not self._ready.is_set():
            self.ready_at = time.monotonic()
            self._ready.set()

    async def follow(
        self, client: Client, namespace: Namespace, *, idle_heartbeat: float = 1.0
    ) -> None:
        """Replay, then follow, the stream on `client` until cancelled.

        `client` should reconnect forever (`max_reconnect_attempts=-1`). Until the stream's
        owner has declared it this waits for it, retrying (50 ms doubling to 1 s); `idle_heartbeat` is
        how soon (twice it) a consumer lost to a NATS restart is noticed and recreated.
        """
        js = client.jetstream()
        stream = namespace.stream(self.stream)
        waited, delay = False, 0.05
        while True:
            try:
                subscription = await self._subscribe(js, stream, namespace, idle_heartbeat)
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:  # no stream yet, or NATS away: wait and retry
                # Once at warning level: a service started before the stream's owner waits
                # quietly after that.
                (log.debug if waited else log.warning)(
                    "directory.follow.waiting", extra={"stream": stream, "error": repr(error)}
                )
                waited = True
                # Soon at first: a process started beside the stream's owner has the
                # directory a moment after it; then no faster than once a second.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            await asyncio.Event().wait()  # the subscription's callback does the work
        finally:
            with contextlib.suppress(Exception):  # the connection may already be closed
                await subscription.unsubscribe()

    async def _subscribe(
        self, js: JetStreamContext, stream: str, namespace: Namespace, idle_heartbeat: float
    ) -> JetStreamContext.PushSubscription:
        info = await js.stream_info(stream)
        # Ordered delivery by stream sequence: once the record that was last when we looked
        # has arrived, everything before it has too (the last message of a stream is always
        # the latest of its subject, so LAST_PER_SUBJECT delivers it).
        replay_to = info.state.last_seq if info.state.messages else 0

        async def on_message(msg: Msg) -> None:
            try:
                self.apply(self.event.model_validate_json(msg.data))
            except ValueError as error:  # pydantic's ValidationError is one
                # Not retried: a record that does not decode never will; the next one for
                # its subject replaces it in the stream.
                log.error(
                    "directory.record.undecodable", extra={"stream": stream, "error": repr(error)}
                )
            if not self._ready.is_set():
                meta = msg.metadata
                if meta.sequence.stream >= replay_to or meta.num_pending == 0:
                    self._set_ready()
                    log.info("directory.replayed", extra={"stream": stream})

        subscription = await js.subscribe(
            namespace.subject(f"{self.stream.root}.>"),
            stream=stream,
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            idle_heartbeat=idle_heartbeat,
        )
        # Ready on an empty stream only once subscribed: a caller that stops the follower
        # as soon as it is ready must not cancel it inside nats-py's subscribe, which does
        # not always let a cancellation through.
        if replay_to == 0:
            self._set_ready()
        return subscription


async def follow_with_own_connection(
    follower: RecordFollower[Any] | Sequence[RecordFollower[Any]],
    nats_url: str,
    namespace: Namespace,
    name: str,
    also: Callable[[Client], Awaitable[object]] | None = None,
) -> None:
    """Run `follower` (or several, side by side, and `also` if given: e.g. the key-use
    report, which publishes on the same connection) on a NATS connection of its own, which
    reconnects forever: a process that has no broker (the portal, an HTTP-only replica)
    follows the directory and the key book too, and one that has a broker keeps its record
    following apart from its consumers' flow control."""
    followers = [follower] if isinstance(follower, RecordFollower) else list(follower)
    delay = 0.2
    while True:
        try:
            client = await nats.connect(
                nats_url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=1,
                connect_timeout=2,
            )  # fmt: skip
            break
        except asyncio.CancelledError:
            raise
        except Exception as error:  # NATS away at start: keep trying, as the broker does
            log.debug("directory.connect.failed", extra={"error": repr(error)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        jobs = [f.follow(client, namespace) for f in followers]
        await asyncio.gather(*jobs, *([also(client)] if also is not None else []))
    finally:
        with contextlib.suppress(Exception):
            await client.close()
