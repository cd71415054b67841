"""Events produced by licensing (stream LICENSING). Payloads arrive with the licensing
service's features (license issued, suspended, reinstated, revoked, activations)."""

from __future__ import annotations

from typing import Literal

from tessera.shared.events.envelope import Event


class LicensingEvent(Event):
    producer: Literal["licensing"] = "licensing"
