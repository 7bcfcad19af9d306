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
    problems = _check_nodes(settings, b["needed_per_node"] + settings.db.reserved_connections)
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(ExitStatus.CONFIG)
    click.echo("ok")


def _check_nodes(settings, needed: int) -> list[str]:
    """Each node's real max_connections must hold the budget (DB_MAX_CONNECTIONS is only our claim)."""
    import psycopg

    problems = []
    for name, url in [("primary", settings.db.primary_url), *(
        (f"replica-{i}", u) for i, u in enumerate(settings.db.replica_urls, start=1)
    )]:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                actual = int(conn.execute("SHOW max_connections").fetchone()[0])
        except psycopg.Error as exc:
            problems.append(f"{name}: unreachable ({str(exc).strip().splitlines()[0]})")
            continue
        click.echo(f"{name}: max_connections={actual} (budget needs {needed} incl. reserve)")
        if actual < needed:
            problems.append(f"{name}: max_connections={actual} is below the {needed} the budget needs")
    return problems
