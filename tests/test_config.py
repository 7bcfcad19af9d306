"""Settings: read from the environment once, each mistake a one-line error naming the variable."""

from __future__ import annotations

import pytest

from hmb.config import ConfigError, Settings, connection_budget

BASE = {"DATABASE_URL": "postgresql://hmb:s3cret@db.internal:5432/hmb", "REDIS_URL": "redis://cache:6379/0"}


def test_defaults_are_valid_for_development():
    settings = Settings.from_env(BASE)
    assert settings.environment == "development"
    assert settings.web.port == 8000
    assert settings.db.replica_urls == ()


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="^SECRET_KEY: required"):
        Settings.from_env({**BASE, "ENVIRONMENT": "production"})


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("PORT", "eighty", "PORT: 'eighty' is not a valid int"),
        ("PORT", "70000", "PORT: '70000' is above the maximum"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT: 'staging' is not one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: must be a postgres:// URL"),
        ("REPLICA_MAX_LAG_S", "-1", "REPLICA_MAX_LAG_S: '-1' is below the minimum"),
        ("SECRET_KEY", "short", "SECRET_KEY: must be at least 32 characters"),
        ("STORAGE_BACKEND", "s3", "S3_BUCKET: required"),
    ],
)
def test_each_bad_value_names_its_variable(name, value, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: value})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_replicas_from_the_seed_names_and_the_list():
    settings = Settings.from_env(
        {
            **BASE,
            "DATABASE_READ_REPLICA_1": "postgresql://r1/hmb",
            "DATABASE_READ_REPLICA_2": "postgresql://r2/hmb",
            "DATABASE_REPLICA_URLS": "postgresql://r3/hmb, postgresql://r1/hmb",
        }
    )
    assert settings.db.replica_urls == ("postgresql://r1/hmb", "postgresql://r2/hmb", "postgresql://r3/hmb")


def test_a_pool_budget_that_cannot_fit_is_refused_with_the_arithmetic():
    env = {**BASE, "MAX_PODS": "10", "WEB_CONCURRENCY": "4", "DB_POOL_MAX": "20", "DB_MAX_CONNECTIONS": "100"}
    with pytest.raises(ConfigError, match=r"10 pods x 4 workers x \(20\+1\) = 840 connections per node"):
        Settings.from_env(env)
    ok = Settings.from_env({**env, "DB_POOL_MAX": "1", "WEB_CONCURRENCY": "4"})
    assert connection_budget(ok)["needed_per_node"] == 80


def test_secrets_never_show_in_reprs():
    settings = Settings.from_env({**BASE, "SECRET_KEY": "x" * 40})
    text = repr(settings)
    assert "s3cret" not in text and "x" * 40 not in text
