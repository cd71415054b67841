"""`tessera-billing`: serve, migrate."""

from tessera.billing.app import MIGRATIONS
from tessera.billing.settings import BillingSettings
from tessera.shared.cli import service_cli

cli = service_cli("billing", "tessera.billing.app:create_app", BillingSettings, MIGRATIONS)


def main() -> None:
    cli()
