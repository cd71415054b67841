"""`KeyBook`: every service's in-memory verifier of API keys, fed from the `APIKEYS` stream.

The stream holds the latest `ApiKeyChanged` of each key (one subject per key, one message
per subject). Each replica of each service reads it with its own ephemeral ordered consumer
(`LAST_PER_SUBJECT`): it replays every key's latest record at start, is `ready` once that
replay is in, and then follows changes as auth publishes them, so a revocation reaches every
replica in the time a NATS message takes. The following is the kernel's one record follower
(`tessera.shared.directory.RecordFollower`), which the seller directory runs too: nats-py's
ordered consumer watches idle heartbeats and recreates itself from the next stream sequence
when they stop (a NATS restart, a lost message), so it survives outages on its own.

Why a dictionary lookup by hash needs no constant-time comparison: what a lookup's timing
could leak is how the SHA-256 of the caller's own guess compares with stored hashes. Learning
bytes of a stored key's hash does not help find the key (that needs a SHA-256 preimage of a
190-bit value), and the caller cannot steer the digest of a guess byte by byte. The key
itself is never compared with anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from nats.aio.client import Client

from tessera.shared.api_keys.format import KeyRefused, Kind, Mode, hash_key, kind_and_mode
from tessera.shared.directory.follower import RecordFollower
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.topology import APIKEYS, Namespace


class UnknownKey(KeyRefused):
    """Well-formed, but no key with this hash exists (never issued, or not yet replayed)."""

    reason = "unknown"


class RevokedKey(KeyRefused):
    reason = "revoked"


class ExpiredKey(KeyRefused):
    """A rotated key past the end of its overlap (`not_after`)."""

    reason = "expired"


@dataclass(frozen=True, slots=True)
class SellerCredential:
    """Who is calling, as a verified API key says. The seller comes only from here."""

    seller_id: UUID
    key_id: UUID
    kind: Kind
    mode: Mode
    # A member acting through a seller-session token (docs/sellers.md, "Dashboard
    # sessions") rather than a key: their home user id and role. `key_id` is then the
    # member's id too, so rate budgets and audits are per member.
    member_id: UUID | None = None
    member_role: str | None = None

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"

    @property
    def audit_fields(self) -> dict[str, str]:
        """What an audit entry's detail records of this caller: the key, or the member."""
        if self.member_id is None:
            return {"key_id": str(self.key_id)}
        return {"member_id": str(self.member_id), "member_role": str(self.member_role)}

    @property
    def actor_role(self) -> str:
        """What an audit entry calls this caller: a key, or a member of the seller."""
        return "seller_key" if self.member_id is None else f"seller_{self.member_role}"


@dataclass(frozen=True, slots=True)
class HeldKey:
    key_hash: bytes
    version: int
    revoked: bool
    not_after: float | None  # epoch seconds
    credential: SellerCredential


class KeyBook:
    """hash -> the latest record of its key. `check` is synchronous and touches no I/O."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._by_hash: dict[bytes, HeldKey] = {}
        self._by_id: dict[UUID, HeldKey] = {}
        # key id -> when this process last accepted it (epoch s), until `take_used`.
        self._used: dict[UUID, float] = {}
        self.follower = RecordFollower(APIKEYS, ApiKeyChanged, self.apply)

    @property
    def ready(self) -> bool:
        """The initial replay is in: an unknown key is really unknown."""
        return self.follower.ready

    async def wait_ready(self) -> None:
        await self.follower.wait_ready()

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, record: ApiKeyChanged) -> bool:
        """Hold `record` unless the one held for its key is as new or newer (a redelivery or
        an out-of-order record changes nothing). Returns whether it was applied."""
        held = self._by_id.get(record.key_id)
        if held is not None and held.version >= record.version:
            return False
        entry = HeldKey(
            key_hash=bytes.fromhex(record.key_hash),
            version=record.version,
            revoked=record.status == "revoked",
            not_after=record.not_after.timestamp() if record.not_after else None,
            credential=SellerCredential(
                seller_id=record.seller_id, key_id=record.key_id, kind=record.kind, mode=record.mode
            ),
        )
        if held is not None and held.key_hash != entry.key_hash:
            del self._by_hash[held.key_hash]  # a key's hash never changes; do not keep a stray
        self._by_id[record.key_id] = entry
        self._by_hash[entry.key_hash] = entry
        return True

    def check(self, text: str) -> SellerCredential:
        """The caller's credential, or a `KeyRefused`: `MalformedKey`, `UnknownKey`,
        `RevokedKey` or `ExpiredKey`."""
        kind, mode = kind_and_mode(text)
        held = self._by_hash.get(hash_key(text))
        # The prefix is inside the hash, so a record that disagrees with it is not this key's.
        if held is None or held.credential.kind != kind or held.credential.mode != mode:
            raise UnknownKey()
        if held.revoked:
            raise RevokedKey()
        now = self._clock()
        if held.not_after is not None and now >= held.not_after:
            raise ExpiredKey()
        self._used[held.credential.key_id] = now
        return held.credential

    def take_used(self) -> dict[UUID, float]:
        """The keys accepted since the last call, each with when it was last accepted."""
        used, self._used = self._used, {}
        return used

    def put_back(self, used: dict[UUID, float]) -> None:
        """Keep uses a report could not send for the next one (newer times win)."""
        for key_id, at in used.items():
            if at > self._used.get(key_id, 0.0):
                self._used[key_id] = at

    async def follow(
        self, client: Client, namespace: Namespace, *, idle_heartbeat: float = 1.0
    ) -> None:
        """Replay, then follow, the `APIKEYS` stream on `client` until cancelled (the
        kernel's one record follower, `tessera.shared.directory.RecordFollower`, which the
        seller directory runs too). `client` should reconnect forever; until auth has
        declared the stream this waits for it."""
        await self.follower.follow(client, namespace, idle_heartbeat=idle_heartbeat)
