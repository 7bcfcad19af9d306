"""Passwords (argon2id, off the event loop), access tokens (signed JWT), opaque refresh tokens."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hmb.config import AuthSettings
from hmb.errors import Unauthorized

# OWASP's floor for argon2id (19 MiB, t=2, p=1): ~90 ms a hash here; the
# library default (64 MiB, t=3, p=4) costs ~670 ms and would cap logins per core.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
ALGORITHM = "HS256"
ISSUER = "hmb"
# Verified access tokens remembered per worker: an HS256 check costs ~35 µs a request.
VERIFIED_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a verified access token."""

    user_id: int
    session_id: int
    role: str
    expires_at: int


class Passwords:
    """argon2id hashing in a small, bounded thread pool (it holds the GIL briefly, the CPU long)."""

    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        # A hash of a random password, verified when the account does not exist,
        # so an unknown email costs the same time as a wrong password.
        self._decoy = HASHER.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, HASHER.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash); verifying against the decoy when there is no account."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, _verify, stored_hash or self._decoy, password, stored_hash is not None
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _verify(stored_hash: str, password: str, real: bool) -> tuple[bool, bool]:
    try:
        HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return real, real and HASHER.check_needs_rehash(stored_hash)


class Tokens:
    def __init__(self, settings: AuthSettings):
        self._key = settings.secret_key.encode()
        self.access_ttl_s = settings.access_ttl_s
        self.refresh_ttl_s = settings.refresh_ttl_s
        self._verified: dict[str, Principal] = {}

    def issue_access(self, user_id: int, session_id: int, role: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "role": role,
            "iat": now,
            "exp": now + self.access_ttl_s,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify_access(self, token: str) -> Principal:
        """The token's caller; a token already verified by this worker costs a dict lookup.

        Only successes are remembered, keyed by the exact token string, until its own
        expiry; revocation is checked by the caller on every request regardless.
        """
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                return known
            del self._verified[token]
        principal = self._verify(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()  # crude but bounded: active callers re-verify once
        self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        if not token.isascii():  # a JWT is base64url and dots; PyJWT would fail encoding a lone surrogate
            raise Unauthorized("the access token is invalid")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],  # never taken from the token's header
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token is invalid") from None
        if claims.get("typ") != "access":
            raise Unauthorized("the access token is invalid")
        try:
            return Principal(int(claims["sub"]), int(claims["sid"]), str(claims.get("role", "")), claims["exp"])
        except (TypeError, ValueError):
            raise Unauthorized("the access token is invalid") from None

    @staticmethod
    def new_refresh() -> tuple[str, bytes]:
        """An opaque refresh token and the hash we store in its place."""
        token = secrets.token_urlsafe(32)
        return token, hash_refresh(token)

    def sign(self, value: str) -> str:
        """A short HMAC tag for small values handed to clients (the read-your-writes position)."""
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:20]
        return f"{value}.{mac}"

    def unsign(self, signed: str) -> str | None:
        value, _, mac = signed.rpartition(".")
        if not value or not hmac.compare_digest(self.sign(value), signed):
            return None
        return value


@functools.cache
def _breached() -> frozenset[str]:
    text = resources.files("hmb").joinpath("data/breached_passwords.txt").read_text()
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def is_breached(password: str) -> bool:
    """One of the most common breached passwords (ASVS V6.2.4), whatever its letter case."""
    return password.lower() in _breached()


def hash_refresh(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
