"""/api/messages: send, conversations with exact unread counts, pages of a conversation, read markers.

A conversation is visible to its two members only; anyone else gets 404. The live
WebSocket is hmb.web.live.
"""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import DB, REDIS, SETTINGS
from hmb.errors import Invalid, NotFound
from hmb.store import live, messages
from hmb.store.router import Write
from hmb.web.http import json_response, parse_body, parse_query, path_id
from hmb.web.identity import caller
from hmb.web.idempotency import create_once
from hmb.web.pagination import decode_id_cursor, page
from hmb.web.throttle import throttle
from hmb.web.schemas.common import PageQuery
from hmb.web.schemas.messages import Conversation, Message, ReadMarker, ReadQuery, SendIn


async def send(request: web.Request) -> web.Response:
    principal = caller(request)
    body = await parse_body(request, SendIn)
    if body.recipient_id == principal.user_id:
        raise Invalid(fields={"recipient_id": "you cannot message yourself"})
    limit = request.app[SETTINGS].web.messages_per_min
    verdict = await throttle(request, "send", str(principal.user_id), limit, "you are sending too fast; wait a moment")
    redis = request.app[REDIS]

    async def create(w: Write) -> dict:
        sent = await messages.send_message(w.conn, principal.user_id, body.recipient_id, body.body)
        if sent is None:
            raise Invalid(fields={"recipient_id": "no such user"})
        # Only once it is committed may anyone hear of it.
        w.on_commit(lambda lsn: live.publish(redis, sent, lsn))
        return _message(sent.message)

    response = await create_once(request, principal, create, one_statement=True)
    response.headers.update(verdict.headers())
    return response


async def list_conversations(request: web.Request) -> web.Response:
    principal = caller(request)
    query = parse_query(request, PageQuery)
    before_id = decode_id_cursor(query.cursor)
    rows = await request.app[DB].read(
        messages.list_conversations, principal.user_id, before_id, query.limit + 1
    )
    result = page(rows, query.limit, lambda r: [r["message_id"]])
    result["items"] = [_conversation(r) for r in result["items"]]
    return json_response(result)


async def list_messages(request: web.Request) -> web.Response:
    principal = caller(request)
    conversation_id = path_id(request)
    query = parse_query(request, PageQuery)
    before_id = decode_id_cursor(query.cursor)
    rows = await request.app[DB].read(
        messages.list_messages, conversation_id, principal.user_id, before_id, query.limit + 1
    )
    if rows is None:
        raise NotFound("no such conversation")
    result = page(rows, query.limit, lambda r: [r["id"]])
    result["items"] = [_message(r) for r in result["items"]]
    return json_response(result)


async def mark_read(request: web.Request) -> web.Response:
    principal = caller(request)
    conversation_id = path_id(request)
    query = parse_query(request, ReadQuery)
    async with request.app[DB].write() as w:
        marker = await messages.mark_read(w.conn, conversation_id, principal.user_id, query.up_to)
    if marker is None:
        raise NotFound("no such conversation")
    return json_response(ReadMarker.model_validate(dict(marker)).model_dump())


def _message(row) -> dict:
    return Message.model_validate(dict(row)).model_dump()


def _conversation(row) -> dict:
    return Conversation.model_validate(
        {
            "id": row["id"],
            "peer": {"id": row["peer_id"], "name": row["peer_name"]},
            "last_message": {
                "id": row["message_id"],
                "conversation_id": row["id"],
                "sender_id": row["sender_id"],
                "recipient_id": row["recipient_id"],
                "body": row["body"],
                "created_at": row["created_at"],
            },
            "last_read_message_id": row["last_read_message_id"],
            "unread_count": row["unread_count"],
        }
    ).model_dump()
