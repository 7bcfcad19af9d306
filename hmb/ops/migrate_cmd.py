"""`hmb migrate`, `hmb migrate status`, `hmb migrate rollback`."""

from __future__ import annotations

import click

from hmb.ops import migrate as migrations
from hmb.ops.cli import settings_or_exit


@click.group(invoke_without_command=True)
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending migrations (safe to run from several pods at once)."""
    if ctx.invoked_subcommand is None:
        applied = migrations.apply(settings_or_exit().db.primary_url)
        click.echo("\n".join(f"applied {m}" for m in applied) or "nothing to apply")


@migrate.command()
def status() -> None:
    """List migrations and whether each is applied."""
    for state in migrations.status(settings_or_exit().db.primary_url):
        click.echo(f"{'applied' if state.applied else 'pending':8} {state.id}")


@migrate.command()
@click.option("--count", default=1, show_default=True, help="how many to roll back")
@click.confirmation_option(prompt="Roll back the most recent migration(s)?")
def rollback(count: int) -> None:
    """Roll back the most recent migration(s)."""
    undone = migrations.rollback(settings_or_exit().db.primary_url, count)
    click.echo("\n".join(f"rolled back {m}" for m in undone) or "nothing to roll back")
