"""`hmb up` / `hmb down`: the local stack in ./var."""

from __future__ import annotations

import sys

import click

from hmb.ops.cli import ExitStatus
from hmb.ops.stack import DEFAULT_DIR, Stack, StackError


@click.command()
@click.option("--dir", "directory", default=str(DEFAULT_DIR), show_default=True, help="where the stack lives")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="apply migrations once it is up")
def up(directory: str, migrate: bool) -> None:
    """Start (or reuse) a PostgreSQL primary, a streaming replica and Redis on free ports."""
    try:
        info = Stack(directory).up()
    except StackError as exc:
        click.echo(f"hmb up: {exc}", err=True)
        sys.exit(ExitStatus.ERROR)
    if migrate:
        from hmb.ops import migrate as migrations

        applied = migrations.apply(info.primary_url)
        click.echo(f"migrations applied: {len(applied)}")
    for name, value in info.env().items():
        click.echo(f"{name}={value}")
    click.echo(f"(written to {info.dir / 'stack.env'}; `hmb serve` reads it)")


@click.command()
@click.option("--dir", "directory", default=str(DEFAULT_DIR), show_default=True)
def down(directory: str) -> None:
    """Stop the local stack, keeping its data."""
    Stack(directory).down()
    click.echo("stack stopped (data kept in %s)" % directory)
