"""The address a checkout's success page may show to whoever holds its URL: masked."""

from __future__ import annotations

import pytest

from tessera.billing.checkout.service import mask_email


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("jane.doe@example.com", "j•••@e•••.com"),
        ("j@mail.example.co.uk", "j•••@m•••.uk"),
        ("x@localhost", "x•••@l•••"),
    ],
)
def test_an_address_is_shown_masked(address: str, shown: str) -> None:
    assert mask_email(address) == shown
    local, domain = address.split("@")
    assert local not in shown or len(local) == 1
    assert domain.split(".")[0] not in shown
