"""Auth consumes `apikeyuse.v1` (every process's batch of the keys it accepted) on a plain
NATS subscription shared by auth's workers (a queue group: each batch is applied once).

No inbox: applying a batch only moves `last_used_at` forward, so a repeated or reordered
batch changes nothing, and a lost one only leaves the time coarser until the next."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.auth.api_keys import queries
from tessera.auth.context import Auth
from tessera.shared.events.kernel import ApiKeysUsed


def register(auth: Auth, router: NatsRouter) -> None:
    @router.subscriber(auth.namespace.subject(ApiKeysUsed.subject), queue="auth-api-key-use")
    async def on_keys_used(event: ApiKeysUsed) -> None:
        """Set each key's `last_used_at` to the batch's time, if later."""
        await queries.note_used(auth.pool, [(u.key_id, u.at) for u in event.used])
