"""`tessera-portal`: serve."""

from tessera.portal.settings import PortalSettings
from tessera.shared.cli import service_cli

cli = service_cli("portal", "tessera.portal.app:create_app", PortalSettings)


def main() -> None:
    cli()
