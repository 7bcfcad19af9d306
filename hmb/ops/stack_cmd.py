"""`hmb up` / `hmb down`: the local stack in ./var."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hmb.ops.cli import ExitStatus
from hmb.ops.stack import DEFAULT_DIR, Stack, StackError


@click.command()
@click.option("--dir", "directory", default=str(DEFAULT_DIR), show_default=True, help="where the stack lives")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="apply migrations once it is up")
@click.option("--pods", type=click.IntRange(0, 16), default=0, show_default=True,
              help="also start N `hmb serve` pods behind haproxy (health-checking /ready)")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True, help="workers per pod")
@click.option("--lb-port", type=int, default=None, help="haproxy's port (default: a free one)")
def up(directory: str, migrate: bool, pods: int, workers: int, lb_port: int | None) -> None:
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
    if pods:
        from hmb.ops.pods import Pods

        topology = Pods(info.dir / "pods", env={**os.environ, **info.env()}, workers=workers)
        try:
            started = topology.up(pods, lb_port)
        except StackError as exc:
            click.echo(f"hmb up: {exc}", err=True)
            sys.exit(ExitStatus.ERROR)
        ports = ", ".join(f"{p.name}={p.port}" for p in started.pods)
        click.echo(f"{pods} pods x {workers} workers ({ports}) behind haproxy: {started.url}")


@click.command()
@click.option("--dir", "directory", default=str(DEFAULT_DIR), show_default=True)
def down(directory: str) -> None:
    """Stop the pods and haproxy (if `up --pods` started them), then the local stack, keeping its data."""
    from hmb.ops.pods import Pods

    topology = Pods(Path(directory) / "pods")
    if topology.info is not None:
        topology.down()
        click.echo("pods and haproxy stopped")
    Stack(directory).down()
    click.echo("stack stopped (data kept in %s)" % directory)
