"""`tessera-licensing`: serve, migrate."""

from tessera.licensing.app import MIGRATIONS
from tessera.licensing.settings import LicensingSettings
from tessera.shared.cli import service_cli

cli = service_cli("licensing", "tessera.licensing.app:create_app", LicensingSettings, MIGRATIONS)


def main() -> None:
    cli()
