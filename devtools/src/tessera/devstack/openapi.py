"""Each HTTP service's OpenAPI document (the full one, admin routes included), as the
kernel builds it from the real app (tessera.shared.http.openapi)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tessera.shared.settings import Environment, InfraSettings


def _auth(infra: InfraSettings) -> FastAPI:
    from tessera.auth.app import create_app
    from tessera.auth.settings import AuthSettings

    return create_app(AuthSettings(), infra)


def _billing(infra: InfraSettings) -> FastAPI:
    from tessera.billing.app import create_app
    from tessera.billing.settings import BillingSettings

    return create_app(BillingSettings(), infra)


def _licensing(infra: InfraSettings) -> FastAPI:
    from tessera.licensing.app import create_app
    from tessera.licensing.settings import LicensingSettings

    return create_app(LicensingSettings(), infra)


def _webhooks(infra: InfraSettings) -> FastAPI:
    from tessera.webhooks.app import create_app
    from tessera.webhooks.settings import WebhooksSettings

    return create_app(WebhooksSettings(), infra)


# The portal and the site publish none: they serve HTML pages to browsers.
APPS: dict[str, Callable[[InfraSettings], FastAPI]] = {
    "auth": _auth,
    "billing": _billing,
    "licensing": _licensing,
    "webhooks": _webhooks,
}

COMMAND = "./dev openapi"


def document(service: str) -> dict[str, Any]:
    # Built as in dev (the environment's own settings must not change the contract).
    app = APPS[service](InfraSettings(env=Environment.DEV, openapi=True))
    return app.openapi()


def render(service: str) -> str:
    return json.dumps(document(service), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_documents(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for service in APPS:
        path = out / f"{service}.json"
        path.write_text(render(service), encoding="utf-8")
        written.append(path)
    return written
