"""`tessera-site`: build, serve."""

from pathlib import Path

import typer

from tessera.shared.cli import service_cli
from tessera.shared.settings import load_settings
from tessera.site.build import build_site, clean
from tessera.site.settings import SiteSettings

cli = service_cli("site", "tessera.site.app:create_app", SiteSettings)


@cli.command()
def build(
    out: Path | None = typer.Option(None, help="Output folder (default: settings)."),
    clean_first: bool = typer.Option(
        False, "--clean", help="Remove the previous build first, so deleted pages go too."
    ),
) -> None:
    """Render the site into its dist folder."""
    settings = load_settings(SiteSettings)
    target = out or settings.dist_dir
    if clean_first:
        clean(target)
    for path in build_site(settings, target):
        typer.echo(path)


def main() -> None:
    cli()
