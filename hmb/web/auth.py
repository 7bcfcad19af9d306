"""/api/auth: register, login, refresh (rotating, reuse revokes the family), logout, me."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import DB, LIMITER, PASSWORDS, REDIS, REVOKED, SETTINGS, TOKENS
from hmb.errors import NotFound, Unauthorized
from hmb.security import hash_refresh
from hmb.store import cache_keys, sessions, users
from hmb.web.http import client_ip, json_response, parse_body
from hmb.web.identity import caller
from hmb.web.throttle import throttle
from hmb.web.schemas.auth import LoginIn, LogoutIn, Me, RefreshIn, RegisterIn

BAD_LOGIN = "the email or password is not right"
TOO_MANY = "too many attempts; wait before trying again"


async def register(request: web.Request) -> web.Response:
    body = await parse_body(request, RegisterIn)
    app = request.app
    auth = app[SETTINGS].auth
    verdict = await throttle(request, "register-ip", _ip(request), auth.register_per_ip_per_min, TOO_MANY)
    password_hash = await app[PASSWORDS].hash(body.password)
    async with app[DB].write() as w:
        user = await users.insert_user(w.conn, body.email, password_hash, body.name, body.role)
        pair = await _start_session(request, w.conn, user["id"], user["role"])
        w.bump(cache_keys.users_gen())
    return json_response({"user": Me.model_validate(dict(user)).model_dump(), **pair}, 201, verdict.headers())


async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginIn)
    app = request.app
    auth = app[SETTINGS].auth
    # Throttle before hashing: the hash is the expensive part an attacker wants us to pay.
    verdict = await throttle(request, "login-ip", _ip(request), auth.login_per_ip_per_min, TOO_MANY)
    await throttle(request, "login-account", body.email, auth.login_per_account_per_min, TOO_MANY)
    row = await app[DB].strong_read(users.get_login, body.email)
    matches, needs_rehash = await app[PASSWORDS].verify(row["password_hash"] if row else None, body.password)
    if not matches or row is None:
        raise Unauthorized(BAD_LOGIN)
    await app[LIMITER].reset("login-account", body.email)
    new_hash = await app[PASSWORDS].hash(body.password) if needs_rehash else None
    async with app[DB].write() as w:
        if new_hash:
            await users.set_password_hash(w.conn, row["id"], new_hash)
        pair = await _start_session(request, w.conn, row["id"], row["role"])
    return json_response(pair, 200, verdict.headers())


async def refresh(request: web.Request) -> web.Response:
    body = await parse_body(request, RefreshIn)
    app = request.app
    tokens = app[TOKENS]
    async with app[DB].write() as w:
        rotation = await sessions.spend_refresh_token(w.conn, hash_refresh(body.refresh_token))
        if rotation.ok:
            new_token, new_hash = tokens.new_refresh()
            await sessions.add_refresh_token(w.conn, rotation.session_id, new_hash, tokens.refresh_ttl_s)
    # The family's revocation is committed above; refuse its access tokens everywhere now.
    if rotation.reused:
        await app[REVOKED].announce(app[REDIS], rotation.session_id)
        raise Unauthorized("this refresh token was already used; the session has been ended")
    if not rotation.ok:
        raise Unauthorized("the refresh token is not valid")
    return json_response(
        {
            "access_token": tokens.issue_access(rotation.user_id, rotation.session_id, rotation.role),
            "refresh_token": new_token,
            "token_type": "Bearer",
            "expires_in": tokens.access_ttl_s,
        }
    )


async def logout(request: web.Request) -> web.Response:
    principal = caller(request)
    if request.can_read_body:
        await parse_body(request, LogoutIn)  # accepted for clients that send it; the session is what ends
    app = request.app
    async with app[DB].write() as w:
        await sessions.revoke_session(w.conn, principal.session_id, "logout")
    await app[REVOKED].announce(app[REDIS], principal.session_id)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    principal = caller(request)
    user = await request.app[DB].read(users.get_private, principal.user_id)
    if user is None:
        raise NotFound("this account no longer exists")
    return json_response(Me.model_validate(dict(user)).model_dump())


async def _start_session(request: web.Request, conn, user_id: int, role: str) -> dict:
    tokens = request.app[TOKENS]
    session_id = await sessions.start_session(conn, user_id)
    refresh_token, refresh_hash = tokens.new_refresh()
    await sessions.add_refresh_token(conn, session_id, refresh_hash, tokens.refresh_ttl_s)
    return {
        "access_token": tokens.issue_access(user_id, session_id, role),
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": tokens.access_ttl_s,
    }


def _ip(request: web.Request) -> str:
    return client_ip(request, request.app[SETTINGS].web.trusted_proxies)
