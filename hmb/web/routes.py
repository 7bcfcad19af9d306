"""The route table: every route once, named, with what OpenAPI and admission need to know."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import ROUTES
from hmb.web import auth, docs, probes, users
from hmb.web.meta import CRITICAL, SHEDDABLE, Route
from hmb.web.schemas import auth as auth_s
from hmb.web.schemas import users as users_s

R = Route
ROUTE_TABLE: list[Route] = [
    # probes and docs (outside /api)
    R("GET", "/health", probes.health, "probes.health", "Liveness (no I/O)", priority=CRITICAL, tag="probes"),
    R("GET", "/ready", probes.ready, "probes.ready", "Readiness: 503 while starting, draining or without a database", errors=(503,), priority=CRITICAL, tag="probes"),
    R("GET", "/startup", probes.startup, "probes.startup", "Startup: 503 until initialised", errors=(503,), priority=CRITICAL, tag="probes"),
    R("GET", "/openapi.json", docs.openapi, "docs.openapi", "This OpenAPI 3.1 document", tag="docs"),
    R("GET", "/docs", docs.reference, "docs.reference", "HTML API reference (not in production)", errors=(404,), tag="docs"),
    # auth
    R("POST", "/api/auth/register", auth.register, "auth.register", "Create an account and sign in", 201,
      body=auth_s.RegisterIn, response=auth_s.Session, errors=(400, 409, 415, 422, 429), priority=CRITICAL, rate_limited=True, tag="auth"),
    R("POST", "/api/auth/login", auth.login, "auth.login", "Sign in with email and password", 200,
      body=auth_s.LoginIn, response=auth_s.TokenPair, errors=(400, 401, 415, 422, 429), priority=CRITICAL, rate_limited=True, tag="auth"),
    R("POST", "/api/auth/refresh", auth.refresh, "auth.refresh", "Swap a refresh token for a new pair (a reused token ends the session)", 200,
      body=auth_s.RefreshIn, response=auth_s.TokenPair, errors=(400, 401, 415, 422), priority=CRITICAL, tag="auth"),
    R("POST", "/api/auth/logout", auth.logout, "auth.logout", "End this session: its tokens stop working at once", 204,
      body=auth_s.LogoutIn, errors=(401,), auth=True, priority=CRITICAL, tag="auth"),
    R("GET", "/api/auth/me", auth.me, "auth.me", "The signed-in account", response=auth_s.Me, errors=(401,), auth=True, tag="auth"),
    # users
    R("GET", "/api/users", users.list_users, "users.list", "The directory, newest first; `q` searches names",
      query=users_s.UsersQuery, response=users_s.ProfilePage, errors=(400, 422), priority=SHEDDABLE, tag="users"),
    R("PATCH", "/api/users/me", users.patch_me, "users.patch_me", "Edit your profile (name, headline, bio, location)",
      body=users_s.ProfilePatch, response=auth_s.Me, errors=(400, 401, 415, 422), auth=True, tag="users"),
    R("GET", "/api/users/{id}", users.get_profile, "users.get", "A public profile", response=users_s.Profile, errors=(404,), tag="users"),
]


def setup_routes(app: web.Application) -> None:
    app.router.add_routes([web.route(r.method, r.path, r.handler, name=r.name) for r in ROUTE_TABLE])
    app[ROUTES] = {r.name: r for r in ROUTE_TABLE}
