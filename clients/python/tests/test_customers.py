"""Customers through auth's customer API, with the client and a secret key."""

from __future__ import annotations

from uuid import uuid4

import pytest
from client_stack import Stack  # type: ignore[import-not-found]
from tessera_client import AsyncTessera, NotFound

pytestmark = pytest.mark.integration


async def test_create_get_find_and_list_customers(stack: Stack) -> None:
    async with stack.client() as tessera:
        made = await tessera.create_customer(
            "Ada@Example.com", name="Ada", metadata={"plan": "beta"}
        )
        again = await tessera.create_customer("ada@example.com")  # a retry: the same one
        got = await tessera.get_customer(made.id)
        found = await tessera.list_customers(email="ada@example.com")
        for n in range(3):
            await tessera.create_customer(f"c{n}@example.com")
        first = await tessera.list_customers(limit=2)
        second = await tessera.list_customers(limit=2, starting_after=first.next_cursor)
        with pytest.raises(NotFound) as missing:
            await tessera.get_customer(uuid4())
    assert made.email == "ada@example.com" and made.name == "Ada" and made.mode == "test"
    assert made.metadata == {"plan": "beta"}
    assert again.id == made.id and got == made
    assert [c.id for c in found.data] == [made.id]
    assert first.has_more and len(first.data) == 2
    assert len(second.data) == 2 and not second.has_more
    listed = {c.id for c in first.data + second.data}
    assert len(listed) == 4 and made.id in listed
    assert missing.value.status == 404 and missing.value.problem["status"] == 404


async def test_another_sellers_customer_is_not_found(stack: Stack) -> None:
    other = await stack.make_seller("other-shop")
    async with AsyncTessera(
        other.secret_key, **{**stack.client_args(), "seller": other.slug}
    ) as theirs:
        customer = await theirs.create_customer("theirs@example.com")
    async with stack.client() as ours:
        with pytest.raises(NotFound):
            await ours.get_customer(customer.id)
        assert (await ours.list_customers(email="theirs@example.com")).data == []


@pytest.mark.parametrize("key", ["pk_test_abc", "whsec_abc", ""])
def test_only_a_secret_key_makes_a_client(key: str) -> None:
    with pytest.raises(ValueError, match="secret key"):
        AsyncTessera(key, seller="acme")
