"""The operator CLI every service shares: `serve` and `migrate`. Services add their own
commands (seed an account, rotate keys, …) to the Typer app this returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from tessera.shared.db.migrate import apply_migrations, pending_migrations
from tessera.shared.http.server import run_server
from tessera.shared.settings import DatabaseSettings, ServiceSettings, load_settings


def service_cli(
    name: str,
    app_path: str,
    settings_cls: type[ServiceSettings],
    migrations: Path | None = None,
) -> typer.Typer:
    cli = typer.Typer(help=f"Tessera {name}: operator commands.", no_args_is_help=True)

    @cli.callback()
    def commands() -> None:
        """Operator commands (a callback keeps `serve` a named command even when alone)."""

    @cli.command()
    def serve(
        host: str | None = typer.Option(None, help="Bind address (default: settings)."),
        port: int | None = typer.Option(None, help="Port (default: settings)."),
        workers: int = typer.Option(1, help="Worker processes."),
    ) -> None:
        """Run the service's HTTP server (and its event consumers, if it has any)."""
        settings = load_settings(settings_cls)
        run_server(
            app_path,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=None,
        )

    if migrations is not None:
        if not issubclass(settings_cls, DatabaseSettings):
            raise TypeError(f"{name} has migrations but its settings name no database")
        migrations_dir, database_settings = migrations, settings_cls

        @cli.command()
        def migrate(
            dry_run: bool = typer.Option(False, "--dry-run", help="List, do not apply."),
        ) -> None:
            """Apply pending migrations (under a lock; safe beside running replicas)."""
            url = str(load_settings(database_settings).database_url)
            if dry_run:
                pending = pending_migrations(url, migrations_dir)
                typer.echo("\n".join(pending) if pending else "nothing to apply")
                return
            applied = apply_migrations(url, migrations_dir)
            typer.echo(f"applied: {', '.join(applied)}" if applied else "nothing to apply")

    return cli


def run(cli_factory: Callable[[], typer.Typer]) -> None:
    cli_factory()()
