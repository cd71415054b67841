"""The lease cache on disk, integrity-protected and bound to the machine, with the
clock-rollback guard (docs/licensing-client.md, "The cache" and "Clock rollback").

The file holds the last lease, the signed key set that vouches for its key, the key set's
version (the floor for the next one) and two high-water marks of time. All of it is covered
by an HMAC-SHA256 whose key is derived from this machine's id (and an optional secret the
app keeps elsewhere); a record whose MAC fails is deleted, never trusted. The key set it
stores is re-verified against the pinned roots on every load, so the file can never add a
key: at worst it can hold a genuine old lease.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.licensing_client.jose import canonical_json
from tessera.licensing_client.lease import SKEW_SECONDS, Lease, LeaseError, verify_lease

FORMAT = "tessera-lease-cache-v1"
# Given the stored key set (None when lease keys are pinned directly), the JWKS it vouches
# for and the time until which it vouched; raises LeaseError when it is not trusted.
Vouch = Callable[[str | None], tuple[dict[str, Any], float]]


def default_machine_id() -> str:
    """The OS's machine id: Windows' MachineGuid, systemd's /etc/machine-id; else the MAC
    address, else the host name (never a value that changes from one run to the next)."""
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography"
            ) as key:
                return str(winreg.QueryValueEx(key, "MachineGuid")[0])
        except OSError:
            pass
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if value:
            return value
    node = uuid.getnode()
    # uuid.getnode() makes up a random number (multicast bit set) when it finds no MAC.
    return f"node-{node:012x}" if not (node >> 40) & 1 else f"host-{socket.gethostname()}"


def cache_key(machine_id: str, app_secret: bytes = b"") -> bytes:
    """HMAC key of the cache record: HMAC-SHA256(key = app secret or the format name,
    message = format name LF machine id)."""
    return hmac.new(
        app_secret or FORMAT.encode(), f"{FORMAT}\n{machine_id}".encode(), hashlib.sha256
    ).digest()


def seal_record(record: dict[str, Any], key: bytes) -> dict[str, Any]:
    body = {k: v for k, v in record.items() if k != "mac"}
    mac = hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()
    return {**body, "mac": mac}


def record_intact(record: dict[str, Any], key: bytes) -> bool:
    mac = record.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(seal_record(record, key)["mac"], mac)


def _time(record: dict[str, Any], name: str) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise LeaseError("CACHE_TAMPERED", f"{name} missing or not a positive time")
    return value


@dataclass(frozen=True)
class Cached:
    lease: str
    key_set: str | None
    key_set_version: int
    signed_high_water: int
    local_high_water: int


class LeaseStore:
    """`LeaseStore(path)`; `machine_id` defaults to the OS's; `app_secret` (optional) is a
    secret the app keeps outside this file (e.g. DPAPI-protected), so the MAC key is not
    derivable from the machine id alone."""

    def __init__(
        self, path: Path, *, machine_id: str | None = None, app_secret: bytes = b""
    ) -> None:
        self.path = path
        self._key = cache_key(machine_id or default_machine_id(), app_secret)

    def _discard(self, why: str) -> LeaseError:
        self.path.unlink(missing_ok=True)
        return LeaseError("CACHE_TAMPERED", why)

    def load(self) -> Cached | None:
        """The record, None when there is none; LeaseError CACHE_TAMPERED (and the file is
        deleted) when it is unreadable, fails its MAC or holds impossible values."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._discard(f"unreadable: {error.strerror}") from None
        try:
            record = json.loads(text)
        except ValueError:
            raise self._discard("not JSON") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise self._discard("not a lease cache")
        if not record_intact(record, self._key):
            raise self._discard("integrity check failed (edited, or from another machine)")
        try:
            cached = Cached(
                lease=str(record["lease"]),
                key_set=None if record.get("key_set") is None else str(record["key_set"]),
                key_set_version=int(record.get("key_set_version", 0)),
                signed_high_water=_time(record, "signed_high_water"),
                local_high_water=_time(record, "local_high_water"),
            )
        except LeaseError as error:
            raise self._discard(str(error)) from None
        except (KeyError, TypeError, ValueError):
            raise self._discard("missing or mistyped field") from None
        return cached

    def accepted_version(self) -> int:
        """The highest key-set version this machine has accepted (0 if none or discarded)."""
        try:
            cached = self.load()
        except LeaseError:
            return 0
        return cached.key_set_version if cached else 0

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic replace: a crash mid-write must not leave a torn cache.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".lease-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(seal_record(record, self._key), out)
        os.replace(tmp, self.path)

    def save(
        self, lease: Lease, key_set: str | None, key_set_version: int, signed_time: int
    ) -> None:
        """Keep a lease just verified online. `signed_time`: the server's signed `created`
        of the answer that carried it. The signed mark only grows; the local one restarts
        from it (the server's time is the authority: a clock once set too far ahead must
        not lock the app out of offline use for good)."""
        try:
            old = self.load()
        except LeaseError:
            old = None
        signed = max(signed_time, lease.issued_at, old.signed_high_water if old else 0)
        self._write(
            {
                "format": FORMAT,
                "lease": lease.token,
                "key_set": key_set,
                "key_set_version": max(key_set_version, old.key_set_version if old else 0),
                "signed_high_water": signed,
                "local_high_water": signed,
            }
        )

    def check(self, fingerprint: str, now: float, vouch: Vouch, skew: int = SKEW_SECONDS) -> Lease:
        """The cached lease if it holds offline on this machine at `now`; LeaseError
        otherwise (CACHE_TAMPERED deletes the file)."""
        cached = self.load()
        if cached is None:
            raise LeaseError("NO_LEASE", "no cached lease: call home")
        try:
            jwks, vouched_until = vouch(cached.key_set)
        except LeaseError as error:
            raise self._discard(f"key set: {error}") from None
        lease = verify_lease(cached.lease, jwks, fingerprint=fingerprint, now=now, skew=skew)
        if lease.issued_at >= vouched_until:
            raise self._discard("the lease was issued after its key set expired")
        if cached.signed_high_water < lease.issued_at:
            raise self._discard("high-water mark below the lease's own signed time")
        floor = max(cached.signed_high_water, cached.local_high_water, lease.issued_at)
        if now < floor - skew:
            raise LeaseError("CLOCK_ROLLED_BACK", "this machine's clock went backwards")
        if int(now) > cached.local_high_water:
            self._write(
                {
                    "format": FORMAT,
                    "lease": cached.lease,
                    "key_set": cached.key_set,
                    "key_set_version": cached.key_set_version,
                    "signed_high_water": cached.signed_high_water,
                    "local_high_water": int(now),
                }
            )
        return lease

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
