"""The stand-in's memory: every object by id with the account it lives in, the events,
and the idempotency records. One lock serialises requests, so a handler sees and leaves a
consistent state (handlers never await while they hold it)."""

from __future__ import annotations

import asyncio
import copy
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.devstack.stripe_standin.wire import Obj, missing, new_id

if TYPE_CHECKING:
    from tessera.devstack.stripe_standin.webhooks import Deliverer

# Stripe's API version the shapes follow (stripe-python 16's pinned version).
API_VERSION = "2026-10-28.endive"
PLATFORM = ""  # the account of objects made without a Stripe-Account header


@dataclass
class Replay:
    """What an idempotent request answered, to answer again for the same key."""

    method: str
    path: str
    params: Obj
    status: int
    body: Obj


# What a request may change (the rest is the lock, the deliverer and the idempotency records).
_STATE = (
    "objects", "account_of", "events", "deleted", "failing_customers", "oauth_codes",
    "access_tokens", "refresh_tokens", "connected", "revoked", "links", "checkout",
    "trial_warned", "prorations",
)  # fmt: skip


@dataclass
class Store:
    objects: dict[str, Obj] = field(default_factory=dict)
    account_of: dict[str, str] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    idempotency: dict[tuple[str, str], Replay] = field(default_factory=dict)
    # Customers whose payment method declines (a control endpoint sets it).
    failing_customers: set[str] = field(default_factory=set)
    # A Checkout Session's line items and the `*_data` it applies on completion.
    checkout: dict[str, Obj] = field(default_factory=dict)
    # Proration lines waiting for a subscription's next invoice.
    prorations: dict[str, list[Obj]] = field(default_factory=dict)
    # Trialing subscriptions whose trial_will_end has been sent.
    trial_warned: set[str] = field(default_factory=set)
    # Connect OAuth: codes not yet exchanged, access and refresh tokens (each -> account),
    # the accounts connected by OAuth and those that have since deauthorized.
    oauth_codes: dict[str, str] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    connected: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    # Account links not yet followed: token -> account, return and refresh URLs.
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    # Deleted objects by id (Stripe answers `{"deleted": true}` for them).
    deleted: dict[str, Obj] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Sends each event to the webhook endpoints that want it, once its request commits.
    deliverer: Deliverer | None = None
    pending: list[Obj] = field(default_factory=list)
    # The API request being served (`id`, `idempotency_key`): its events name it.
    request: dict[str, str | None] = field(
        default_factory=lambda: {"id": None, "idempotency_key": None}
    )

    def add(self, account: str, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        self.account_of[obj["id"]] = account
        return obj

    def remove(self, object_id: str) -> None:
        self.deleted[object_id] = self.objects.pop(object_id)

    def find(self, account: str, object_id: str) -> Obj | None:
        """The object with this id in this account (None elsewhere: accounts never see
        each other's objects)."""
        if self.account_of.get(object_id) != account:
            return None
        return self.objects.get(object_id)

    def get(self, account: str, kind: str, object_id: str, param: str = "id") -> Obj:
        obj = self.find(account, object_id)
        if obj is None or obj["object"] != kind:
            raise missing(kind.rsplit(".", 1)[-1].replace("_", " "), object_id, param)
        return obj

    def locate(self, kind: str, object_id: str) -> tuple[str, Obj]:
        """An object by id in whichever account holds it (control endpoints have no
        account header: the id says it)."""
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise missing(kind.rsplit(".", 1)[-1].replace("_", " "), object_id)
        return self.account_of[object_id], obj

    def all(self, account: str, kind: str) -> list[Obj]:
        return [
            obj
            for object_id, obj in self.objects.items()
            if obj["object"] == kind and self.account_of[object_id] == account
        ]

    def now(self, account: str, customer_id: str | None = None) -> int:
        """The time as the customer sees it: its test clock's frozen time if it has one."""
        if customer_id is not None:
            customer = self.find(account, customer_id)
            clock_id = customer.get("test_clock") if customer else None
            if clock_id:
                return int(self.objects[clock_id]["frozen_time"])
        return int(time.time())

    def emit(
        self,
        account: str,
        type: str,
        obj: Obj,
        *,
        previous: Obj | None = None,
        created: int | None = None,
    ) -> Obj:
        """Record an event as Stripe shapes it, with a snapshot of the object, and hand it to
        the deliverer."""
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event: Obj = {
            "id": new_id("evt_1"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created if created is not None else int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": dict(self.request),
            "type": type,
        }
        if account != PLATFORM:
            event["account"] = account
        self.add(account, event)
        self.events.append(event)
        self.pending.append(event)
        return event

    def checkpoint(self) -> bytes:
        """The state as it is, to `restore` if the request fails: a request changes all
        it changes or nothing, as a Stripe request does. (Pickle keeps the objects that
        events and lists share shared, and is several times faster than deepcopy.)"""
        return pickle.dumps({name: getattr(self, name) for name in _STATE})

    def restore(self, saved: bytes) -> None:
        state = pickle.loads(saved)  # noqa: S301 (bytes this process made just before)
        for name in _STATE:
            setattr(self, name, state[name])
        self.pending.clear()

    def load(self, path: Path) -> None:
        """The state `save` wrote (a dev file of the stand-in's own), if there is one."""
        if path.exists():
            self.restore(path.read_bytes())

    def save(self, path: Path) -> None:
        """The state to `path`, whole or not at all (written beside it, then renamed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(self.checkpoint())
        partial.replace(path)

    def reset(self) -> None:
        """Forget every object, event and idempotency key (as a new stand-in)."""
        fresh = Store()
        for name in _STATE:
            setattr(self, name, getattr(fresh, name))
        self.idempotency.clear()

    def commit(self) -> None:
        """The request succeeded: its events go out."""
        for event in self.pending:
            if self.deliverer is not None:
                self.deliverer.enqueue(event)
        self.pending.clear()

    def emit_update(
        self, account: str, type: str, obj: Obj, before: Obj, created: int | None = None
    ) -> None:
        """An `*.updated`-style event with `previous_attributes`, if anything changed."""
        if obj != before:
            self.emit(account, type, obj, previous=changed(before, obj), created=created)


def changed(before: Obj, after: Obj) -> Obj:
    """Stripe's `previous_attributes`: the top-level fields that changed, as they were."""
    return {key: before.get(key) for key in after if before.get(key) != after[key]}


def snapshot(obj: Obj) -> Any:
    return copy.deepcopy(obj)
