"""Opaque cursors: the position after the last item of a page, as urlsafe base64 JSON."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from hmb.errors import BadRequest


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, shape: tuple[type, ...]) -> list[Any] | None:
    """The position a cursor holds, checked against the expected types; bad cursors are 400."""
    if not cursor:
        return None
    try:
        position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadRequest("the cursor is not valid") from None
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(type(v) is t for v, t in zip(position, shape))
    ):
        raise BadRequest("the cursor is not valid")
    return position


def page(rows: Sequence[Any], limit: int, position: Callable[[Any], list[Any]]) -> dict[str, Any]:
    """{"items", "next_cursor"} from rows fetched with LIMIT limit + 1."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(position(items[-1])) if len(rows) > limit and items else None
    return {"items": items, "next_cursor": next_cursor}


def decode_id_cursor(cursor: str | None) -> int | None:
    """The id a keyset-by-id cursor holds (None on the first page); bad cursors are 400."""
    if not cursor:
        return None  # the first page, the one most read (a feed's): answered without decode_cursor's call
    return decode_cursor(cursor, (int,))[0]
