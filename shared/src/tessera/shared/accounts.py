"""A customer's account id, the same wherever it is minted.

An account is one customer of one seller in one mode, known by its address. Two services
make accounts without asking each other: billing on a purchase, auth when a seller creates
a customer (`POST /v1/customers`) or an address signs up. Both may do it for the same
address at the same moment, so the id cannot come from a counter or a random draw: it is a
name-based UUID (version 5) of the tenant and the normalised address, and both sides
compute the same one with no coordination (docs/sellers.md, "Account ids").

An account id is not a secret: anyone who knows a seller's id and an address can compute
it. It names a customer in a seller's API calls, always behind the seller's key.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from tessera.shared.sellers import Tenant

# Fixed forever: changing it would give an address a second id. Rows made before the ids
# were derived keep the random ids they have (every service finds an account by its
# address first), so only new accounts take a derived id.
ACCOUNT_ID_NAMESPACE = UUID("6f1c3f0e-2b57-5d1a-9c1e-7e55e7a0acc0")


def normalize_email(email: str) -> str:
    """The one form of an address every service stores and compares (and derives the
    account id from). Addresses compare case-insensitively in practice; the domain is
    case-insensitive by the RFC and providers treat the local part so, too."""
    return email.strip().lower()


def account_id_for(tenant: Tenant, email: str) -> UUID:
    """The account id a new account of `email` at `tenant` gets, in every service."""
    return uuid5(ACCOUNT_ID_NAMESPACE, f"{tenant.seller_id}/{tenant.mode}/{normalize_email(email)}")
