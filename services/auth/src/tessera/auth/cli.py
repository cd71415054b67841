"""`tessera-auth`: serve, migrate."""

from tessera.auth.app import MIGRATIONS
from tessera.auth.settings import AuthSettings
from tessera.shared.cli import service_cli

cli = service_cli("auth", "tessera.auth.app:create_app", AuthSettings, MIGRATIONS)


def main() -> None:
    cli()
