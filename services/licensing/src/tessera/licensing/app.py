"""Licensing's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from faststream.nats import NatsRouter
from starlette.types import ASGIApp

from tessera.licensing import cache
from tessera.licensing import state as licensing_state
from tessera.licensing.admin import routes as admin_routes
from tessera.licensing.customers import subscribers as customer_subscribers
from tessera.licensing.desktop import routes as desktop_routes
from tessera.licensing.desktop.fast_path import HeartbeatFastPath, ValidateFastPath
from tessera.licensing.desktop.signature import SignedResponses
from tessera.licensing.heartbeats import service as heartbeats
from tessera.licensing.me import routes as me_routes
from tessera.licensing.orders import subscribers as order_subscribers
from tessera.licensing.settings import LicensingSettings, refuse_dev_secrets
from tessera.licensing.signing import service as signing
from tessera.licensing.state import Licensing
from tessera.shared import stalls
from tessera.shared.db.pool import asyncpg_dsn, roll_back_if_open
from tessera.shared.keys import Signer
from tessera.shared.service import Runtime, ServiceSpec, SubscriberFactory, create_service_app
from tessera.shared.settings import Environment, InfraSettings, load_settings
from tessera.shared.tokens import AccessTokenVerifier, JwksCache

log = logging.getLogger("tessera.licensing")

MIGRATIONS = Path(__file__).parent / "migrations"
SIGNED_PATHS = ("/v1/licenses/", "/v1/public-keys")


def state_for(runtime: Runtime) -> Licensing:
    settings = runtime.settings
    if not isinstance(settings, LicensingSettings):
        # Only the AsyncAPI generator builds subscribers without licensing's settings.
        settings = LicensingSettings()
    return licensing_state.for_settings(settings)


def subscribers_with(state: Licensing | None = None) -> SubscriberFactory:
    def register(runtime: Runtime, router: NatsRouter) -> None:
        customer_subscribers.register(runtime, router)
        order_subscribers.register(runtime, router, state or state_for(runtime))

    return register


def register_subscribers(runtime: Runtime, router: NatsRouter) -> None:
    subscribers_with()(runtime, router)


async def open_read_pool(runtime: Runtime, state: Licensing) -> None:
    """A pool of the read-only hot path's own, so a burst of writes cannot starve validate
    of connections."""
    settings = state.settings
    state.read_pool = await asyncpg.create_pool(
        asyncpg_dsn(str(settings.database_url)),
        min_size=1,
        max_size=settings.read_pool_max,
        command_timeout=5,
        max_inactive_connection_lifetime=60,
        reset=roll_back_if_open,
    )

    async def close_on_shutdown(pool: asyncpg.Pool) -> None:
        # The kernel cancels runtime tasks at shutdown; this one closes the pool then.
        try:
            await asyncio.Event().wait()
        finally:
            await pool.close()

    runtime.tasks.append(asyncio.create_task(close_on_shutdown(state.read_pool)))


async def start_cache(runtime: Runtime, state: Licensing) -> None:
    listening = asyncio.Event()
    dsn = asyncpg_dsn(str(state.settings.database_url))
    runtime.tasks.append(asyncio.create_task(cache.listen(state.cache, dsn, listening)))
    # Without the listener the cache stays off and validate reads Postgres: slower, not wrong.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listening.wait(), 5)


def tune_gc(gen0_threshold: int) -> None:
    """Fewer gen-0 collections, and none that rescan what start-up built (gc.freeze)."""
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
    gc.freeze()


def startup(state: Licensing, production: bool) -> Callable[[Runtime], Awaitable[None]]:
    async def start(runtime: Runtime) -> None:
        settings = state.settings
        state.limiter = runtime.synced_limiter
        pool = runtime.db()
        await open_read_pool(runtime, state)
        await start_cache(runtime, state)
        await signing.ensure_key(pool, state.sealer)
        if settings.sealed_root:
            await signing.ensure_root(pool, state.sealer)
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
        await signing.refresh_set(pool, state.sealer, settings.key_set_lifetime_seconds)
        state.ring = await signing.load_ring(pool, state.sealer)
        runtime.tasks.append(
            asyncio.create_task(
                heartbeats.keep_flushing(pool, state.heartbeats, settings.heartbeat_flush_seconds)
            )
        )
        runtime.tasks.append(
            asyncio.create_task(heartbeats.keep_sweeping(pool, settings.heartbeat_sweep_seconds))
        )
        tune_gc(settings.gc_gen0_threshold)
        watching = stalls.watch(settings.stall_log_ms)
        if watching is not None:
            runtime.tasks.append(watching[1])
        runtime.tasks.append(
            asyncio.create_task(
                signing.keep_fresh(
                    state,
                    pool,
                    state.sealer,
                    settings.signing_key_refresh_seconds,
                    settings.key_set_lifetime_seconds,
                )
            )
        )

    return start


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
    state = licensing_state.for_settings(settings)
    hsts = infra.env == Environment.PRODUCTION
    traced = settings.trace_validate

    def fast_path(whole: ASGIApp, app: FastAPI) -> ValidateFastPath:
        # validate's and heartbeat's common cases go in front of the whole app
        # (desktop/fast_path.py).
        behind = HeartbeatFastPath(whole, state, hsts=hsts, traced=traced)
        return ValidateFastPath(behind, state, hsts=hsts, traced=traced)

    app = create_service_app(
        ServiceSpec(
            name="licensing",
            title="Tessera licensing",
            version="0.1.0",
            settings=settings,
            infra=infra,
            migrations=MIGRATIONS,
            routers=(desktop_routes.router, me_routes.router, admin_routes.router),
            subscribers=subscribers_with(state),
            on_startup=(startup(state, infra.env == Environment.PRODUCTION),),
            fast_path=fast_path,
            # validate is the call every running copy makes, and its span costs about a
            # third of its CPU: traced (fast path and full stack alike) only when asked.
            untraced_paths=() if traced else ("licenses/validate", "licenses/heartbeat"),
        )
    )
    app.state.licensing = state
    # Customer, admin and device-flow tokens: auth's JWKS, fetched on first use and cached.
    app.state.token_verifier = AccessTokenVerifier(
        JwksCache(settings.auth_jwks_url),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
    )

    def current_signer() -> Signer | None:
        return state.ring.signer if state.ring is not None else None

    # Outermost in the stack: every answer under the desktop paths is signed, errors too.
    app.add_middleware(SignedResponses, signer=current_signer, prefixes=SIGNED_PATHS)
    return app
