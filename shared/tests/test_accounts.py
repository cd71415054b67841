"""Account ids: derived from the tenant and the normalised address, the same in every
service and every release, different for another seller, mode or address."""

from __future__ import annotations

from uuid import UUID

from tessera.shared.accounts import account_id_for, normalize_email
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

OTHER = UUID("00000000-0000-4000-8000-0000000000b2")


def test_an_address_s_id_is_fixed_forever() -> None:
    # Pinned: a change of the namespace or of the name's form would give every address a
    # second id, one per release, so this value must never change.
    assert account_id_for(HOME_LIVE, "ada@example.com") == UUID(
        "34cb7b0b-2944-5ff4-be79-9cfabb056df0"
    )


def test_the_address_is_normalised_first() -> None:
    assert normalize_email("  Ada@Example.COM\t") == "ada@example.com"
    assert account_id_for(HOME_LIVE, "  Ada@Example.COM ") == account_id_for(
        HOME_LIVE, "ada@example.com"
    )


def test_another_seller_mode_or_address_is_another_id() -> None:
    ids = {
        account_id_for(HOME_LIVE, "ada@example.com"),
        account_id_for(Tenant(HOME_SELLER_ID, "test"), "ada@example.com"),
        account_id_for(Tenant(OTHER, "live"), "ada@example.com"),
        account_id_for(HOME_LIVE, "bob@example.com"),
    }
    assert len(ids) == 4
    assert all(i.version == 5 for i in ids)
