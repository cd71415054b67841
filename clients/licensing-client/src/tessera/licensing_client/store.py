"""The lease cache on disk, with the clock-rollback guard.

It keeps the last lease, the JWKS that verifies it, and the latest time this machine has
seen (from its own clock and from the server's signed answers). A clock that reads earlier
than that, by more than the skew, was set back: the cached lease is not trusted until the
app has called home.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tessera.licensing_client.lease import SKEW_SECONDS, Lease, LeaseError, verify_lease


class LeaseStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic replace: a crash mid-write must not leave a torn cache.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".lease-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)

    def save(self, lease: str, jwks: dict[str, Any], seen_at: float) -> None:
        data = self._read()
        last_seen = max(float(data.get("last_seen", 0)), seen_at)
        self._write({"lease": lease, "jwks": jwks, "last_seen": last_seen})

    def check(self, fingerprint: str, now: float, skew: int = SKEW_SECONDS) -> Lease:
        """The cached lease if it holds offline at `now`; LeaseError otherwise."""
        data = self._read()
        if "lease" not in data:
            raise LeaseError("MALFORMED", "no cached lease")
        last_seen = float(data.get("last_seen", 0))
        if now < last_seen - skew:
            raise LeaseError("CLOCK_ROLLED_BACK", "this machine's clock went backwards")
        lease = verify_lease(
            data["lease"], data.get("jwks", {}), fingerprint=fingerprint, now=now, skew=skew
        )
        if now > last_seen:
            self._write({**data, "last_seen": now})
        return lease

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
