"""Settings: every knob read once from the environment into frozen, validated sections."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

ENVIRONMENTS = ("development", "test", "production")
DEV_SECRET = "dev-only-secret-not-for-production-use-0123456789"


class ConfigError(ValueError):
    """One line naming the variable and what is wrong with it."""


class Secret(str):
    """A string whose repr never shows its value."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def mask_url(url: str) -> str:
    """The URL with its password replaced, fit for logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class DatabaseSettings:
    primary_url: str
    replica_urls: tuple[str, ...] = ()
    pool_max: int = 8
    acquire_timeout_s: float = 2.0
    statement_timeout_ms: int = 5000
    replica_max_lag_s: float = 5.0
    replica_max_lag_bytes: int = 64 * 1024 * 1024
    replica_probe_interval_s: float = 1.0
    # The connection budget: every pod's workers' pools must fit in each node.
    max_pods: int = 10
    max_connections: int = 200
    reserved_connections: int = 10

    def __repr__(self) -> str:
        replicas = ", ".join(mask_url(u) for u in self.replica_urls)
        return f"DatabaseSettings(primary={mask_url(self.primary_url)}, replicas=[{replicas}])"


@dataclass(frozen=True)
class RedisSettings:
    url: str
    # Sub-second timeouts and one retry: a hung Redis must not hang requests.
    timeout_s: float = 0.25
    max_connections: int = 64
    breaker_failures: int = 3
    breaker_cooldown_s: float = 2.0

    def __repr__(self) -> str:
        return f"RedisSettings(url={mask_url(self.url)})"


@dataclass(frozen=True)
class CacheSettings:
    l1_max_entries: int = 20_000  # 0: no L1, every hit comes from Redis
    # A safety net if an invalidation broadcast is missed; TTLs per namespace are in cache_keys.
    l1_ttl_s: float = 30.0


@dataclass(frozen=True)
class AuthSettings:
    secret_key: Secret
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 24 * 3600
    hash_threads: int = 2
    login_per_ip_per_min: int = 20
    login_per_account_per_min: int = 5
    register_per_ip_per_min: int = 10


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    max_in_flight: int = 512
    # Below this many free slots, only critical routes (login, writes) are admitted.
    shed_reserve: int = 64
    retry_after_s: int = 1
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    messages_per_min: int = 60  # per sender; a person typing never gets near it, a spammer does


@dataclass(frozen=True)
class OpsSettings:
    # Each worker's heartbeat to Redis: how often, and how long it stays fresh.
    heartbeat_interval_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
    # A worker silent this long is dropped from the index (until then `hmb status` shows it stale).
    heartbeat_forget_s: float = 300.0


@dataclass(frozen=True)
class StorageSettings:
    backend: str = "local"
    local_dir: str = "var/files"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: Secret | None = None
    s3_region: str = "auto"
    # Per-purpose upload limits (bytes), checked while the body streams in.
    max_avatar_bytes: int = 2 * 1024 * 1024
    max_post_image_bytes: int = 5 * 1024 * 1024
    max_resume_bytes: int = 10 * 1024 * 1024
    # Presigned S3 GET URLs live this long: enough to follow a redirect, too short to share.
    presign_ttl_s: int = 120


@dataclass(frozen=True)
class Settings:
    environment: str
    db: DatabaseSettings
    redis: RedisSettings
    auth: AuthSettings
    web: WebSettings = field(default_factory=WebSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    pod_id: str = field(default_factory=socket.gethostname)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def with_(self, **sections: Any) -> Settings:
        """A copy with whole sections or fields replaced (tests use this)."""
        return replace(self, **sections)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        environment = env.choice("ENVIRONMENT", ENVIRONMENTS, "development")
        production = environment == "production"
        secret = env.get("SECRET_KEY", str, None)
        if secret is None:
            if production:
                raise ConfigError("SECRET_KEY: required when ENVIRONMENT=production")
            secret = DEV_SECRET
        elif len(secret) < 32:
            raise ConfigError("SECRET_KEY: must be at least 32 characters")
        elif production and secret == DEV_SECRET:
            raise ConfigError("SECRET_KEY: the development default cannot be used in production")
        workers = env.get("WEB_CONCURRENCY", int, 2, minimum=1)
        db = DatabaseSettings(
            primary_url=env.url("DATABASE_URL", ("postgres", "postgresql")),
            replica_urls=_replica_urls(env),
            pool_max=env.get("DB_POOL_MAX", int, 8, minimum=1),
            acquire_timeout_s=env.get("DB_ACQUIRE_TIMEOUT_S", float, 2.0, minimum=0.01),
            statement_timeout_ms=env.get("DB_STATEMENT_TIMEOUT_MS", int, 5000, minimum=1),
            replica_max_lag_s=env.get("REPLICA_MAX_LAG_S", float, 5.0, minimum=0.0),
            replica_max_lag_bytes=env.get("REPLICA_MAX_LAG_BYTES", int, 64 * 1024 * 1024, minimum=0),
            replica_probe_interval_s=env.get("REPLICA_PROBE_INTERVAL_S", float, 1.0, minimum=0.05),
            max_pods=env.get("MAX_PODS", int, 10, minimum=1),
            max_connections=env.get("DB_MAX_CONNECTIONS", int, 200, minimum=1),
            reserved_connections=env.get("DB_RESERVED_CONNECTIONS", int, 10, minimum=0),
        )
        settings = cls(
            environment=environment,
            db=db,
            redis=RedisSettings(
                url=env.url("REDIS_URL", ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0"),
                timeout_s=env.get("REDIS_TIMEOUT_S", float, 0.25, minimum=0.01),
                max_connections=env.get("REDIS_MAX_CONNECTIONS", int, 64, minimum=1),
            ),
            auth=AuthSettings(
                secret_key=Secret(secret),
                access_ttl_s=env.get("ACCESS_TOKEN_TTL_S", int, 900, minimum=10),
                refresh_ttl_s=env.get("REFRESH_TOKEN_TTL_S", int, 30 * 24 * 3600, minimum=60),
            ),
            web=WebSettings(
                host=env.get("HOST", str, "0.0.0.0" if production else "127.0.0.1"),
                port=env.get("PORT", int, 8000, minimum=1, maximum=65535),
                workers=workers,
                cors_origins=env.csv("CORS_ORIGINS"),
                max_body_bytes=env.get("MAX_BODY_BYTES", int, 1024 * 1024, minimum=1024),
                max_in_flight=env.get("MAX_IN_FLIGHT", int, 512, minimum=1),
                shed_reserve=env.get("SHED_RESERVE", int, 64, minimum=0),
                trusted_proxies=env.csv("TRUSTED_PROXIES", ("127.0.0.1",)),
                messages_per_min=env.get("MESSAGES_PER_MIN", int, 60, minimum=1),
            ),
            cache=CacheSettings(
                l1_max_entries=env.get("CACHE_L1_MAX_ENTRIES", int, 20_000, minimum=0),
                l1_ttl_s=env.get("CACHE_L1_TTL_S", float, 30.0, minimum=0),
            ),
            storage=StorageSettings(
                backend=env.choice("STORAGE_BACKEND", ("local", "s3"), "local"),
                local_dir=env.get("STORAGE_DIR", str, "var/files"),
                s3_endpoint_url=env.get("S3_ENDPOINT_URL", str, None),
                s3_bucket=env.get("S3_BUCKET", str, None),
                s3_access_key_id=env.get("S3_ACCESS_KEY_ID", str, None),
                s3_secret_access_key=_secret_or_none(env.get("S3_SECRET_ACCESS_KEY", str, None)),
                s3_region=env.get("S3_REGION", str, "auto"),
                max_avatar_bytes=env.get("MAX_AVATAR_BYTES", int, 2 * 1024 * 1024, minimum=1024),
                max_post_image_bytes=env.get("MAX_POST_IMAGE_BYTES", int, 5 * 1024 * 1024, minimum=1024),
                max_resume_bytes=env.get("MAX_RESUME_BYTES", int, 10 * 1024 * 1024, minimum=1024),
                presign_ttl_s=env.get("PRESIGN_TTL_S", int, 120, minimum=10, maximum=3600),
            ),
            ops=_ops(env),
            pod_id=env.get("RENDER_INSTANCE_ID", str, None)
            or env.get("RAILWAY_REPLICA_ID", str, None)
            or env.get("POD_ID", str, None)
            or socket.gethostname(),
        )
        if settings.storage.backend == "s3" and not settings.storage.s3_bucket:
            raise ConfigError("S3_BUCKET: required when STORAGE_BACKEND=s3")
        check_budget(settings)
        return settings


def connection_budget(settings: Settings) -> dict[str, int]:
    """The arithmetic behind the per-node connection budget (DESIGN §3)."""
    db = settings.db
    return {
        "max_pods": db.max_pods,
        "workers_per_pod": settings.web.workers,
        "pool_max": db.pool_max,
        # +1: each worker's replica monitor holds one primary connection briefly.
        "needed_per_node": db.max_pods * settings.web.workers * (db.pool_max + 1),
        "available_per_node": db.max_connections - db.reserved_connections,
    }


def check_budget(settings: Settings) -> None:
    b = connection_budget(settings)
    if b["needed_per_node"] > b["available_per_node"]:
        raise ConfigError(
            f"DB_POOL_MAX: {b['max_pods']} pods x {b['workers_per_pod']} workers x "
            f"({b['pool_max']}+1) = {b['needed_per_node']} connections per node, but "
            f"DB_MAX_CONNECTIONS-DB_RESERVED_CONNECTIONS = {b['available_per_node']}"
        )


def _ops(env: _Env) -> OpsSettings:
    interval = env.get("HEARTBEAT_INTERVAL_S", float, 2.0, minimum=0.05)
    ttl = env.get("HEARTBEAT_TTL_S", float, 10.0, minimum=0.1)
    if ttl <= interval:
        raise ConfigError(f"HEARTBEAT_TTL_S: {ttl} must be above HEARTBEAT_INTERVAL_S={interval}")
    return OpsSettings(interval, ttl, env.get("HEARTBEAT_FORGET_S", float, 300.0, minimum=ttl))


def _secret_or_none(value: str | None) -> Secret | None:
    return None if value is None else Secret(value)


def _replica_urls(env: _Env) -> tuple[str, ...]:
    listed = env.csv("DATABASE_REPLICA_URLS")
    numbered = []
    n = 1
    while (name := f"DATABASE_READ_REPLICA_{n}") in env.environ:
        numbered.append(name)
        n += 1
    urls = [env.url(name, ("postgres", "postgresql")) for name in numbered]
    for i, url in enumerate(listed):
        if urlsplit(url).scheme not in ("postgres", "postgresql"):
            raise ConfigError(f"DATABASE_REPLICA_URLS: item {i + 1} is not a postgresql:// URL")
    return tuple(dict.fromkeys([*urls, *listed]))


class _Env:
    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def get(
        self,
        name: str,
        cast: Callable[[str], T],
        default: T,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> T:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = cast(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a valid {cast.__name__}") from None
        if minimum is not None and value < minimum:  # type: ignore[operator]
            raise ConfigError(f"{name}: {raw!r} is below the minimum {minimum}")
        if maximum is not None and value > maximum:  # type: ignore[operator]
            raise ConfigError(f"{name}: {raw!r} is above the maximum {maximum}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(name, str, default)
        if value is None:
            raise ConfigError(f"{name}: required (e.g. {schemes[0]}://...)")
        if urlsplit(value).scheme not in schemes:
            raise ConfigError(f"{name}: must be a {schemes[0]}:// URL, got {mask_url(value)!r}")
        return value

    def csv(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        raw = self.environ.get(name)
        if raw is None:
            return default
        return tuple(item.strip() for item in raw.split(",") if item.strip())
