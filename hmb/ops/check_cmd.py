"""`hmb check`: validate the configuration and show the connection-budget arithmetic."""

from __future__ import annotations

import sys

import click

from hmb.ops.cli import ExitStatus


@click.command()
def check() -> None:
    """Validate settings; print pods x workers x pool per database node against its limit."""
    from hmb.config import ConfigError, Settings, connection_budget

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(ExitStatus.CONFIG)
    b = connection_budget(settings)
    click.echo(f"environment: {settings.environment}   pod: {settings.pod_id}")
    click.echo(f"database nodes: primary + {len(settings.db.replica_urls)} replica(s)")
    click.echo(
        f"connections per node: {b['max_pods']} pods x {b['workers_per_pod']} workers x "
        f"({b['pool_max']} pool + 1 monitor) = {b['needed_per_node']} of {b['available_per_node']} available"
    )
    click.echo("ok")
