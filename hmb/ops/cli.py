"""`hmb`: the operator's command. Subcommands load lazily, so `hmb --help` imports almost nothing."""

from __future__ import annotations

import importlib
import os
import sys
from enum import IntEnum
from pathlib import Path

import click

# name -> "module:command"; a command's module is imported only when it runs.
COMMANDS = {
    "up": "hmb.ops.stack_cmd:up",
    "down": "hmb.ops.stack_cmd:down",
    "serve": "hmb.ops.serve:serve",
    "migrate": "hmb.ops.migrate_cmd:migrate",
    "check": "hmb.ops.check_cmd:check",
    "seed": "hmb.ops.seed:seed",
    "status": "hmb.ops.status_cmd:status",
    "cache": "hmb.ops.cache_cmd:cache",
    "dash": "hmb.ops.dash.app:dash",
}
STACK_ENV = Path(__file__).resolve().parents[2] / "var" / "stack.env"


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    UNHEALTHY = 2
    CONFIG = 3


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None  # listed but not built yet
            raise


def load_stack_env(path: Path = STACK_ENV) -> None:
    """Point at the local stack (`hmb up`) unless the environment already says where to go."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


def settings_or_exit():
    """Settings from the environment, or a one-line error and exit code 3."""
    from hmb.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(ExitStatus.CONFIG)


@click.group(cls=LazyGroup)
@click.version_option(package_name="hmb", message="hmb %(version)s")
def main() -> None:
    """Run and operate hmb: local stack, server, migrations, cache, status and dashboard."""
    load_stack_env()
