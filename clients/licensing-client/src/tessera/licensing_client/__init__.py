"""Tessera licensing client: activate and validate a machine, cache the signed lease, and
verify it offline (signature, key id, time, fingerprint, clock rollback).

The protocol and the lease format are in docs/licensing-client.md; this package is the
reference a C# (or any) implementation can be checked against.
"""

from tessera.licensing_client.client import Answer, LicensingClient, ResponseRejected
from tessera.licensing_client.lease import Lease, LeaseError, verify_lease
from tessera.licensing_client.store import LeaseStore

__all__ = [
    "Answer",
    "Lease",
    "LeaseError",
    "LeaseStore",
    "LicensingClient",
    "ResponseRejected",
    "verify_lease",
]
