"""The `hmb` command: help, config errors as one line with exit code 3, check and migrate status."""

from __future__ import annotations

import os

from click.testing import CliRunner

from hmb.ops.cli import ExitStatus, main
from tests.conftest import TEST_ENV


def run(args, env):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_help_lists_the_commands():
    result = run(["--help"], {})
    assert result.exit_code == 0
    for command in ("up", "down", "serve", "migrate", "check", "seed"):
        assert command in result.output


def test_a_bad_setting_is_one_line_and_exit_code_3(stack):
    result = CliRunner().invoke(main, ["check"], env={**TEST_ENV, **stack.env(), "PORT": "http"})
    assert result.exit_code == ExitStatus.CONFIG
    assert result.output.strip() == "configuration error: PORT: 'http' is not a valid int"


def test_check_reports_the_connection_budget_against_the_real_nodes(stack):
    result = run(["check"], {**TEST_ENV, **stack.env()})
    assert result.exit_code == 0, result.output
    assert "4 pods x 1 workers x (8 pool + 1 monitor) = 36 of 190 available" in result.output
    assert "primary: max_connections=200" in result.output and "replica-1: max_connections=200" in result.output


def test_check_refuses_a_budget_the_server_cannot_hold(stack):
    env = {**TEST_ENV, **stack.env(), "DB_MAX_CONNECTIONS": "1000", "MAX_PODS": "50", "DB_POOL_MAX": "9"}
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == ExitStatus.CONFIG
    assert "max_connections=200 is below" in result.output


def test_migrate_status_lists_every_migration_as_applied(stack):
    result = run(["migrate", "status"], {**TEST_ENV, **stack.env()})
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith("applied ") for line in lines)
    assert len(lines) == len([f for f in os.listdir("migrations") if not f.endswith(".rollback.sql")])
