"""Read-your-writes on this replica: every service function that changes a license forgets
it in the cache itself, after its commit (the routes call no `forget`); other replicas hear
of it from Postgres (NOTIFY)."""

from __future__ import annotations

import uuid

import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]
from test_desktop import a_license  # type: ignore[import-not-found]

from tessera.licensing.admin import service as admin
from tessera.licensing.cache import Known, LicenseCache
from tessera.licensing.desktop import queries
from tessera.licensing.desktop import service as desktop
from tessera.licensing.desktop.schemas import ActivateRequest, DeactivateRequest
from tessera.licensing.licenses import keyformat
from tessera.licensing.licenses import service as licenses

pytestmark = pytest.mark.integration


async def test_each_writing_service_function_forgets_the_license(harness: Harness) -> None:
    (key,) = await a_license(harness)
    state = harness.app.state.context
    pool = harness.app.state.context.pool
    key_hash = keyformat.lookup_hash(key)
    known = await queries.lookup(pool, key_hash)
    assert isinstance(known, Known)
    # A cache of the test's own, which no NOTIFY reaches: only the function can forget.
    cache = LicenseCache(ttl=600, max_entries=10)
    cache.live = True

    def remembered() -> bool:
        cache.put(key_hash, known, cache.epoch)
        return cache.lookup(key_hash)[0] is not None

    def forgotten() -> bool:
        return cache.lookup(key_hash)[0] is None

    fingerprint = "machine-forget-0001"
    assert remembered()
    body = await desktop.activate(
        pool,
        cache,
        state.ring.signer,
        state.sealer,
        ActivateRequest(key=key, fingerprint=fingerprint),
        None,
    )
    assert body["valid"] and forgotten()

    assert remembered()
    await licenses.remove_own_activation(
        pool,
        cache,
        known.tenant,
        account_id=known.account_id,
        user_id=uuid.uuid4(),
        license_id=known.id,
        activation_id=uuid.UUID(body["activation_id"]),
    )
    assert forgotten()

    await desktop.activate(
        pool,
        cache,
        state.ring.signer,
        state.sealer,
        ActivateRequest(key=key, fingerprint=fingerprint),
        None,
    )
    assert remembered()
    body = await desktop.deactivate(
        pool, cache, DeactivateRequest(key=key, fingerprint=fingerprint)
    )
    assert body["code"] == "DEACTIVATED" and forgotten()

    operator = admin.Actor(uuid.uuid4(), "admin")
    assert remembered()
    await admin.set_status(
        pool, known.tenant, cache, state.sealer, operator, known.id, "suspended", "test"
    )
    assert forgotten()
    assert remembered()
    await admin.reset_activations(
        pool, known.tenant, cache, state.sealer, operator, known.id, "test"
    )
    assert forgotten()
    assert remembered()
    await admin.extend(pool, known.tenant, cache, state.sealer, operator, known.id, None, "test")
    assert forgotten()
