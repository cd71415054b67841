"""Tessera licensing client: activate and validate a machine, cache the signed lease, and
verify it offline (signature, key id, time, fingerprint, clock rollback), trusting only
lease keys that a pinned root key vouched for.

The protocol and the lease format are in docs/licensing-client.md; this package is the
reference a C# (or any) implementation can be checked against.
"""

from tessera.licensing_client.client import Answer, LicensingClient, ResponseRejected
from tessera.licensing_client.lease import Lease, LeaseError, verify_lease
from tessera.licensing_client.store import LeaseStore
from tessera.licensing_client.trust import KeySet, KeySetError, Roots

__all__ = [
    "Answer",
    "KeySet",
    "KeySetError",
    "Lease",
    "LeaseError",
    "LeaseStore",
    "LicensingClient",
    "ResponseRejected",
    "Roots",
    "verify_lease",
]
