"""The route table: every route once, named, with what OpenAPI and admission need to know."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import CORE, ROUTES
from hmb.web import applications, auth, docs, files, jobs, live, messages, metrics, posts, probes, users
from hmb.web.meta import CRITICAL, SHEDDABLE, Route
from hmb.web.middlewares import Core
from hmb.web.schemas import auth as auth_s
from hmb.web.schemas import common as common_s
from hmb.web.schemas import files as files_s
from hmb.web.schemas import jobs as jobs_s
from hmb.web.schemas import messages as messages_s
from hmb.web.schemas import posts as posts_s
from hmb.web.schemas import users as users_s

R = Route
ROUTE_TABLE: list[Route] = [
    # probes and docs (outside /api)
    R("GET", "/health", probes.health, "probes.health", "Liveness (no I/O)", priority=CRITICAL, tag="probes"),
    R("GET", "/ready", probes.ready, "probes.ready", "Readiness: 503 while starting, draining or without a database", errors=(503,), priority=CRITICAL, tag="probes"),
    R("GET", "/startup", probes.startup, "probes.startup", "Startup: 503 until initialised", errors=(503,), priority=CRITICAL, tag="probes"),
    R("GET", "/metrics", metrics.metrics, "probes.metrics", "Prometheus metrics for this pod (text format)", response_type="text/plain", tag="probes"),
    R("GET", "/openapi.json", docs.openapi, "docs.openapi", "This OpenAPI 3.1 document", tag="docs"),
    R("GET", "/docs", docs.reference, "docs.reference", "HTML API reference (not in production)", errors=(404,), response_type="text/html", tag="docs"),
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
    R("GET", "/api/users/{id}", users.get_profile, "users.get", "A public profile with counts and whether you follow them",
      response=users_s.ProfileDetail, errors=(401, 404), tag="users"),
    R("PUT", "/api/users/me/avatar", users.put_avatar, "users.put_avatar",
      "Upload your avatar (multipart: `file`, a PNG/JPEG/GIF/WebP image); replaces the previous one",
      body=files_s.AvatarForm, body_type="multipart/form-data", response=files_s.FileOut,
      errors=(400, 401, 413, 415, 422), auth=True, streams_body=True, tag="users"),
    R("POST", "/api/users/{id}/follow", users.follow, "users.follow", "Follow someone (idempotent; yourself is 422)", 204,
      errors=(401, 404, 422), auth=True, tag="users"),
    R("DELETE", "/api/users/{id}/follow", users.unfollow, "users.unfollow", "Stop following someone (idempotent)", 204,
      errors=(401, 404), auth=True, tag="users"),
    R("GET", "/api/users/{id}/followers", users.followers, "users.followers", "Who follows them, most recent first",
      query=common_s.PageQuery, response=users_s.ProfilePage, errors=(400, 404, 422), tag="users"),
    R("GET", "/api/users/{id}/following", users.following, "users.following", "Whom they follow, most recent first",
      query=common_s.PageQuery, response=users_s.ProfilePage, errors=(400, 404, 422), tag="users"),
    # posts (feed and trending before {id})
    R("GET", "/api/posts", posts.list_posts, "posts.list", "Newest posts, everyone's or one author's",
      query=posts_s.PostsQuery, response=posts_s.PostPage, errors=(400, 422), priority=SHEDDABLE, tag="posts"),
    R("POST", "/api/posts", posts.create_post, "posts.create", "Publish a post (optionally with an uploaded post_image)", 201,
      body=posts_s.PostIn, response=posts_s.PostDetail, errors=(400, 401, 415, 422), auth=True, idempotent=True, tag="posts"),
    R("GET", "/api/posts/feed", posts.feed, "posts.feed", "Posts of the people you follow and your own, newest first",
      query=common_s.PageQuery, response=posts_s.PostPage, errors=(400, 401, 422), auth=True, tag="posts"),
    R("GET", "/api/posts/trending", posts.trending, "posts.trending", "The most-liked posts of the last 72 hours (cached 10 min)",
      query=posts_s.TrendingQuery, response=posts_s.TrendingPage, errors=(422,), priority=SHEDDABLE, tag="posts"),
    R("GET", "/api/posts/{id}", posts.get_post, "posts.get", "One post, and whether you liked it",
      response=posts_s.PostDetail, errors=(401, 404), tag="posts"),
    R("PATCH", "/api/posts/{id}", posts.patch_post, "posts.patch", "Edit your post", body=posts_s.PostPatch,
      response=posts_s.PostDetail, errors=(400, 401, 403, 404, 415, 422), auth=True, tag="posts"),
    R("DELETE", "/api/posts/{id}", posts.delete_post, "posts.delete", "Delete your post", 204,
      errors=(401, 403, 404), auth=True, tag="posts"),
    R("POST", "/api/posts/{id}/like", posts.like, "posts.like", "Like a post (idempotent)", 204,
      errors=(401, 404), auth=True, tag="posts"),
    R("DELETE", "/api/posts/{id}/like", posts.unlike, "posts.unlike", "Take back a like (idempotent)", 204,
      errors=(401, 404), auth=True, tag="posts"),
    # jobs (public listings; only employers post; only the owner changes one: others 403, since they can see it)
    R("GET", "/api/jobs", jobs.search, "jobs.search",
      "Search open jobs: full text (`q`, websearch syntax, ranked) plus filters; newest first without `q`",
      query=jobs_s.JobsQuery, response=jobs_s.JobPage, errors=(400, 422), priority=SHEDDABLE, tag="jobs",
      description="Results are cached per normalised query for 60 s and refreshed as soon as any listing changes."),
    R("POST", "/api/jobs", jobs.create_job, "jobs.create", "Post a job (employers only)", 201,
      body=jobs_s.JobIn, response=jobs_s.Job, errors=(400, 401, 403, 415, 422), auth=True, idempotent=True, tag="jobs"),
    R("GET", "/api/jobs/{id}", jobs.get_job, "jobs.get", "One listing, open or closed", response=jobs_s.Job, errors=(404,), tag="jobs"),
    R("PATCH", "/api/jobs/{id}", jobs.patch_job, "jobs.patch", "Edit your listing (`status` closes or reopens it)",
      body=jobs_s.JobPatch, response=jobs_s.Job, errors=(400, 401, 403, 404, 415, 422), auth=True, tag="jobs"),
    R("DELETE", "/api/jobs/{id}", jobs.close_job, "jobs.close", "Close your listing (it stays readable; closing twice is fine)", 204,
      errors=(401, 403, 404), auth=True, tag="jobs"),
    R("POST", "/api/jobs/{id}/applications", applications.apply, "jobs.apply",
      "Apply to an open job with a résumé you uploaded (seekers; once per job: 409 on repeat; 422 if closed)", 201,
      body=jobs_s.ApplyIn, response=jobs_s.Application, errors=(400, 401, 403, 404, 409, 415, 422), auth=True,
      idempotent=True, priority=CRITICAL, tag="jobs"),
    R("GET", "/api/jobs/{id}/applications", applications.list_for_job, "jobs.applications",
      "The applications to your job, newest first (the job's owner only)",
      query=jobs_s.ApplicationsQuery, response=jobs_s.ApplicationPage, errors=(400, 401, 403, 404, 422), auth=True, tag="jobs"),
    # applications (private to the applicant and the job's owner: anyone else 404)
    R("GET", "/api/applications", applications.list_mine, "applications.mine", "Your applications with each job's title and status",
      query=jobs_s.ApplicationsQuery, response=jobs_s.ApplicationPage, errors=(400, 401, 422), auth=True, tag="applications"),
    R("GET", "/api/applications/{id}", applications.get_application, "applications.get", "One application (its applicant or the job's owner)",
      response=jobs_s.Application, errors=(401, 404), auth=True, tag="applications"),
    R("PATCH", "/api/applications/{id}", applications.move, "applications.move",
      "Move an application: the employer submitted → reviewing → interview → offered, or rejected before an offer; "
      "the applicant may withdraw until offered/rejected",
      body=jobs_s.ApplicationPatch, response=jobs_s.Application, errors=(400, 401, 403, 404, 415, 422), auth=True, tag="applications",
      description="An illegal transition is 422; a move reserved for the other party is 403."),
    # messages
    R("GET", "/api/messages/conversations", messages.list_conversations, "messages.conversations",
      "Your conversations, most recent first, with the last message and the exact unread count",
      query=common_s.PageQuery, response=messages_s.ConversationPage, errors=(400, 401, 422), auth=True, tag="messages"),
    R("POST", "/api/messages", messages.send, "messages.send",
      "Send a message (the first one to someone starts the conversation); delivered live to their sockets", 201,
      body=messages_s.SendIn, response=messages_s.Message, errors=(400, 401, 415, 422, 429), auth=True, idempotent=True, rate_limited=True,
      priority=CRITICAL, tag="messages"),
    R("GET", "/api/messages/conversations/{id}", messages.list_messages, "messages.conversation",
      "A conversation's messages, newest first (its two members only)",
      query=common_s.PageQuery, response=messages_s.MessagePage, errors=(400, 401, 404, 422), auth=True, tag="messages"),
    R("POST", "/api/messages/conversations/{id}/read", messages.mark_read, "messages.read",
      "Mark the conversation read up to `up_to` (default: its latest message); the marker never moves back",
      query=messages_s.ReadQuery, response=messages_s.ReadMarker, errors=(400, 401, 404, 422), auth=True, tag="messages"),
    R("GET", "/api/messages/ws", live.socket, "messages.ws",
      "WebSocket: your messages (sent and received) live, whichever pod handled the send", 101,
      query=messages_s.LiveQuery, response=messages_s.LiveFrames, errors=(401, 422), auth=True, long_lived=True,
      tag="messages", description=(
          "Authenticate with `Authorization: Bearer` on the upgrade or, from a browser, with a first frame "
          '`{"type": "auth", "token": "..."}` within 10 s (never put a token in the URL). With `?after=<message id>` '
          'every later message is replayed first, in id order; then `{"type": "ready", "last_message_id": N}`; then live '
          "messages, each once. Keep the id of the last message seen and reconnect with it. Close codes: 1012 the pod is "
          "restarting (reconnect, to another pod), 1013 try again shortly, 4401 unauthorized or the token expired "
          "(refresh it, then reconnect). The server pings every 25 s; a socket that does not answer is closed.")),
    # files
    R("POST", "/api/files", files.upload, "files.create",
      "Upload a file (multipart: `purpose` avatar|resume|post_image, then `file`); type and size are checked from the bytes", 201,
      body=files_s.UploadForm, body_type="multipart/form-data", response=files_s.FileOut,
      errors=(400, 401, 413, 415, 422), auth=True, idempotent=True, streams_body=True, tag="files"),
    R("GET", "/api/files/{id}", files.read, "files.get",
      "Read a file: the bytes, or a 302 to a short-lived URL. Résumés: their owner and employers they applied to only",
      errors=(401, 404), response_type="*/*", tag="files", description="Answers 302 with `Location` when storage is S3."),
]


def setup_routes(app: web.Application) -> None:
    """Every route through the core wrapper (hmb.web.middlewares), then the 404/405 fallback."""
    core = app[CORE] = Core(app)
    core.add(app.router, ROUTE_TABLE)
    core.add_fallback(app.router)
    app[ROUTES] = {r.name: r for r in ROUTE_TABLE}
