"""`tessera-webhooks`: serve, migrate."""

from __future__ import annotations

from tessera.shared.cli import service_cli
from tessera.webhooks.app import MIGRATIONS
from tessera.webhooks.settings import WebhooksSettings

cli = service_cli("webhooks", "tessera.webhooks.app:create_app", WebhooksSettings, MIGRATIONS)


def main() -> None:
    cli()
