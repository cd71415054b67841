"""`tessera-site`: build, serve."""

from pathlib import Path

import typer

from tessera.shared.cli import service_cli
from tessera.shared.settings import load_settings
from tessera.site.build import build_site
from tessera.site.settings import SiteSettings

cli = service_cli("site", "tessera.site.app:create_app", SiteSettings)


@cli.command()
def build(out: Path | None = typer.Option(None, help="Output folder (default: settings).")) -> None:
    """Render the site into its dist folder."""
    for path in build_site(load_settings(SiteSettings), out):
        typer.echo(path)


def main() -> None:
    cli()
