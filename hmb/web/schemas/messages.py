"""Schemas of /api/messages, including the frames of the WebSocket."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, RootModel

from hmb.web.schemas.common import MAX_ID, Input, Output, Query

MAX_BODY = 5000


class SendIn(Input):
    recipient_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY, description="trimmed; 1-5000 characters")]


class Message(Output):
    id: int
    conversation_id: int
    sender_id: int
    recipient_id: int
    body: str
    created_at: datetime


class MessagePage(Output):
    items: list[Message] = Field(description="newest first")
    next_cursor: str | None


class Peer(Output):
    id: int
    name: str


class Conversation(Output):
    id: int
    peer: Peer
    last_message: Message
    last_read_message_id: int
    unread_count: int = Field(description="the peer's messages after your read marker (exact)")


class ConversationPage(Output):
    items: list[Conversation] = Field(description="most recent activity first")
    next_cursor: str | None


class ReadQuery(Query):
    up_to: Annotated[
        int | None, Field(default=None, ge=1, le=MAX_ID, description="the newest message read (default: the latest)")
    ] = None


class ReadMarker(Output):
    conversation_id: int
    last_read_message_id: int
    unread_count: int


class LiveQuery(Query):
    after: Annotated[
        int | None,
        Field(default=None, ge=0, le=MAX_ID, description="the id of the last message this client saw: everything after it is replayed first"),
    ] = None


# WebSocket frames (JSON text). Client → server: only AuthFrame, and only when the
# upgrade carried no Authorization header (browsers cannot set one).
class AuthFrame(Input):
    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=4096)]


class MessageFrame(Output):
    type: Literal["message"] = "message"
    message: Message


class ReadyFrame(Output):
    """Sent once the replay is done: everything up to `last_message_id` has been delivered."""

    type: Literal["ready"] = "ready"
    last_message_id: int


class ServerFrame(RootModel[Annotated[MessageFrame | ReadyFrame, Field(discriminator="type")]]):
    """What the server sends: messages (replayed, then live), and "ready" once the replay is done."""


class LiveFrames(Output):
    """The frames of GET /api/messages/ws, by direction (documentation of the WebSocket protocol)."""

    client_to_server: AuthFrame = Field(description="only when the upgrade carried no Authorization header")
    server_to_client: ServerFrame
