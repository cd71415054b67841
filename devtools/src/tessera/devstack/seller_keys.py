"""Test helper: API keys of any seller, published on the `APIKEYS` stream as auth would,
for a test that runs billing or licensing without auth. Real NATS, as everywhere."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from nats.js import JetStreamContext

from tessera.devstack.platform_plan import publish_paid_sellers
from tessera.shared.api_keys import KeyBook, KeyRefused, generate
from tessera.shared.api_keys.format import Kind
from tessera.shared.directory.sellers import SellerBook
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.topology import APIKEYS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import Tenant


async def publish_seller_keys(
    js: JetStreamContext,
    ns: Namespace,
    book: KeyBook,
    sellers: SellerBook,
    wanted: Iterable[tuple[Tenant, Kind]],
    timeout: float = 10,
) -> dict[tuple[Tenant, Kind], str]:
    """A new key of each (tenant, kind), by its plaintext, once `book` accepts them all.
    The non-home sellers among them pay their platform plan first (a live key works only
    while it is in force; docs/sellers.md, "Platform plan")."""
    await ensure_stream(js, stream_config(APIKEYS, ns))
    texts: dict[tuple[Tenant, Kind], str] = {}
    for tenant, kind in wanted:
        issued = generate(kind, tenant.mode)
        record = ApiKeyChanged(
            seller_id=tenant.seller_id, mode=tenant.mode, key_id=uuid.uuid4(),
            key_hash=issued.hash_hex, kind=kind, status="active", version=1,
        )  # fmt: skip
        await js.publish(
            ns.subject(record.publish_subject()), record.to_json(), stream=ns.stream(APIKEYS)
        )
        texts[(tenant, kind)] = issued.plaintext
    await asyncio.wait_for(book.wait_ready(), timeout)
    paying = {tenant.seller_id for tenant, _ in texts if not tenant.is_home}
    await publish_paid_sellers(js, ns, paying, [sellers])
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(_accepts(book, text) for text in texts.values()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the key book did not accept the keys in {timeout}s")
        await asyncio.sleep(0.01)
    return texts


def _accepts(book: KeyBook, text: str) -> bool:
    try:
        book.check(text)
    except KeyRefused:
        return False
    return True
