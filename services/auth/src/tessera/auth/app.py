"""Auth's process: FastAPI for HTTP, FastStream for events, and the mail sender."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from faststream.nats import NatsRouter

from tessera.auth.admin import routes as admin_routes
from tessera.auth.api_keys import routes as api_key_routes
from tessera.auth.api_keys import subscribers as api_key_subscribers
from tessera.auth.context import Auth
from tessera.auth.customers import routes as customer_routes
from tessera.auth.device import routes as device_routes
from tessera.auth.links import routes as link_routes
from tessera.auth.mail.sender import MailSender
from tessera.auth.members import routes as member_routes
from tessera.auth.members import subscribers as member_subscribers
from tessera.auth.secrets import LegacySealed
from tessera.auth.sellers import service as sellers
from tessera.auth.sellers import subscribers as seller_subscribers
from tessera.auth.sessions import routes as session_routes
from tessera.auth.settings import AuthSettings, refuse_dev_secrets
from tessera.auth.signing_keys import ring
from tessera.auth.tokens import routes as token_routes
from tessera.auth.users import service as users
from tessera.auth.users import subscribers as user_subscribers
from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def register_subscribers(auth: Auth, router: NatsRouter) -> None:
    user_subscribers.register(auth, router)
    api_key_subscribers.register(auth, router)
    seller_subscribers.register(auth, router)
    member_subscribers.register(auth, router)


async def start(auth: Auth) -> None:
    auth.open_keyring()
    await sellers.ensure_home(auth)
    # Keys sealed before the shared kernel are re-sealed here, once, under the keys lock.
    legacy = LegacySealed.from_secret(auth.settings.key_encryption_key)
    await ring.ensure_key(auth.pool, auth.sealer, legacy)
    await users.promote_bootstrap_admins(
        auth.pool, [str(a) for a in auth.settings.bootstrap_admins]
    )
    auth.tasks.append(asyncio.create_task(MailSender(auth).run()))


def create_app(settings: AuthSettings | None = None, infra: InfraSettings | None = None) -> FastAPI:
    settings = settings or load_settings(AuthSettings)
    infra = infra or load_settings(InfraSettings)
    refuse_dev_secrets(settings, infra)
    return create_service_app(
        ServiceSpec(
            context=Auth.of(settings, infra),
            title="Tessera auth",
            version="0.1.0",
            migrations=MIGRATIONS,
            routers=(
                link_routes.router,
                link_routes.seller_router,
                member_routes.router,
                api_key_routes.router,
                customer_routes.router,
                session_routes.router,
                token_routes.router,
                device_routes.router,
                admin_routes.router,
            ),
            subscribers=register_subscribers,
            on_startup=(start,),
        )
    )
