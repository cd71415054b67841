"""Licensing's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from faststream.nats import NatsRouter
from starlette.types import ASGIApp

from tessera.licensing import cache
from tessera.licensing.admin import routes as admin_routes
from tessera.licensing.context import Licensing
from tessera.licensing.customers import subscribers as customer_subscribers
from tessera.licensing.desktop import routes as desktop_routes
from tessera.licensing.desktop.fast_path import HeartbeatFastPath, ValidateFastPath
from tessera.licensing.desktop.signature import SignedResponses
from tessera.licensing.entitlements import routes as entitlement_routes
from tessera.licensing.entitlements import subscribers as entitlement_subscribers
from tessera.licensing.heartbeats import service as heartbeats
from tessera.licensing.me import routes as me_routes
from tessera.licensing.orders import subscribers as order_subscribers
from tessera.licensing.seller_api import routes as seller_routes
from tessera.licensing.settings import LicensingSettings, refuse_dev_secrets
from tessera.licensing.signing import service as signing
from tessera.licensing.usage import routes as usage_routes
from tessera.licensing.usage.fast_path import RecordFastPath
from tessera.shared import stalls
from tessera.shared.db.pool import asyncpg_dsn, roll_back_if_open
from tessera.shared.keys import Signer
from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import Environment, InfraSettings, load_settings

log = logging.getLogger("tessera.licensing")

MIGRATIONS = Path(__file__).parent / "migrations"
SIGNED_PATHS = ("/v1/licenses/", "/v1/public-keys")


def register_subscribers(licensing: Licensing, router: NatsRouter) -> None:
    customer_subscribers.register(licensing, router)
    order_subscribers.register(licensing, router)
    entitlement_subscribers.register(licensing, router)


async def open_read_pool(licensing: Licensing) -> None:
    """A pool of the read-only hot path's own, so a burst of writes cannot starve validate
    of connections."""
    settings = licensing.settings
    pool = await asyncpg.create_pool(
        asyncpg_dsn(str(settings.database_url)),
        min_size=1,
        max_size=settings.read_pool_max,
        command_timeout=5,
        max_inactive_connection_lifetime=60,
        reset=roll_back_if_open,
    )
    licensing.use_read_pool(pool)

    async def close_on_shutdown(pool: asyncpg.Pool) -> None:
        # The kernel cancels the context's tasks at shutdown; this one closes the pool then.
        try:
            await asyncio.Event().wait()
        finally:
            await pool.close()

    licensing.tasks.append(asyncio.create_task(close_on_shutdown(pool)))


async def start_cache(licensing: Licensing) -> None:
    listening = asyncio.Event()
    dsn = asyncpg_dsn(str(licensing.settings.database_url))
    licensing.tasks.append(asyncio.create_task(cache.listen(licensing.cache, dsn, listening)))
    # Without the listener the cache stays off and validate reads Postgres: slower, not wrong.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listening.wait(), 5)


def tune_gc(gen0_threshold: int) -> None:
    """Fewer gen-0 collections, and none that rescan what start-up built (gc.freeze)."""
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
    gc.freeze()


async def start(licensing: Licensing) -> None:
    settings, sealer = licensing.settings, licensing.sealer
    production = licensing.infra.env == Environment.PRODUCTION
    pool = licensing.pool
    await open_read_pool(licensing)
    await start_cache(licensing)
    await signing.ensure_key(pool, sealer)
    if settings.sealed_root:
        await signing.ensure_root(pool, sealer)
    elif production and (sealed := await signing.sealed_roots(pool)):
        # SEALED_ROOT=false only stops a new root being made here: an older sealed
        # root still signs every set until the operator retires it.
        log.warning(
            "a sealed root key is still active (%s) although TESSERA_LICENSING_SEALED_ROOT "
            "is false: whoever holds the database and the key-encryption key can sign a "
            "trusted key set; create an offline root, sign a set with it, then retire the "
            "sealed one (`tessera-licensing keys root-retire KID`)",
            ", ".join(sealed),
        )
    await signing.refresh_set(pool, sealer, settings.key_set_lifetime_seconds)
    licensing.loaded_ring = await signing.load_ring(pool, sealer)
    beats = licensing.heartbeats
    licensing.tasks.append(
        asyncio.create_task(heartbeats.keep_flushing(pool, beats, settings.heartbeat_flush_seconds))
    )
    licensing.tasks.append(
        asyncio.create_task(
            heartbeats.keep_sweeping(
                pool, settings.heartbeat_sweep_seconds, settings.heartbeat_flush_seconds
            )
        )
    )
    tune_gc(settings.gc_gen0_threshold)
    watching = stalls.watch(settings.stall_log_ms)
    if watching is not None:
        licensing.tasks.append(watching[1])
    licensing.tasks.append(
        asyncio.create_task(
            signing.keep_fresh(
                licensing,
                pool,
                sealer,
                settings.signing_key_refresh_seconds,
                settings.key_set_lifetime_seconds,
            )
        )
    )


def create_app(
    settings: LicensingSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    settings = settings or load_settings(LicensingSettings)
    infra = infra or load_settings(InfraSettings)
    refuse_dev_secrets(settings, infra)
    settings = settings.with_sealed_root_for(infra.env)
    if settings.sealed_root and infra.env == Environment.PRODUCTION:
        log.warning(
            "TESSERA_LICENSING_SEALED_ROOT=true in production: the root key is sealed in the "
            "database, so whoever holds the database and the key-encryption key can sign a key "
            "set every desktop app trusts; an offline root (false) is safer (docs/licensing.md)"
        )
    licensing = Licensing.of(settings, infra)
    hsts = infra.env == Environment.PRODUCTION
    traced = settings.trace_validate

    def fast_path(whole: ASGIApp) -> ValidateFastPath:
        # validate's, heartbeat's and the usage record's common cases go in front of the
        # whole app (desktop/fast_path.py, usage/fast_path.py).
        record = RecordFastPath(whole, licensing, hsts=hsts)
        behind = HeartbeatFastPath(record, licensing, hsts=hsts, traced=traced)
        return ValidateFastPath(behind, licensing, hsts=hsts, traced=traced)

    app = create_service_app(
        ServiceSpec(
            context=licensing,
            title="Tessera licensing",
            version="0.1.0",
            migrations=MIGRATIONS,
            routers=(
                desktop_routes.router,
                me_routes.router,
                admin_routes.router,
                seller_routes.router,
                entitlement_routes.router,
                entitlement_routes.me_router,
                usage_routes.router,
            ),
            subscribers=register_subscribers,
            on_startup=(start,),
            fast_path=fast_path,
            # validate is the call every running copy makes, and its span costs about a
            # third of its CPU: traced (fast path and full stack alike) only when asked.
            untraced_paths=() if traced else ("licenses/validate", "licenses/heartbeat"),
        )
    )

    def current_signer() -> Signer | None:
        ring = licensing.loaded_ring
        return ring.signer if ring is not None else None

    # Outermost in the stack: every answer under the desktop paths is signed, errors too.
    app.add_middleware(SignedResponses, signer=current_signer, prefixes=SIGNED_PATHS)
    return app
