"""Property tests: cursors round-trip and refuse forgeries cleanly; input schemas never fail but with 422."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hmb.errors import BadRequest, Invalid
from hmb.web.http import validate
from hmb.web.pagination import decode_cursor, encode_cursor, page
from hmb.web.routes import ROUTE_TABLE
from hmb.web.schemas.common import Query

MODELS = sorted({m for r in ROUTE_TABLE for m in (r.body, r.query) if m is not None and m.__module__.startswith("hmb.")},
                key=lambda m: m.__name__)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
BIG = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(st.lists(BIG, min_size=1, max_size=3))
def test_a_cursor_round_trips(position):
    shape = (int,) * len(position)
    cursor = encode_cursor(position)
    assert decode_cursor(cursor, shape) == position
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as is


@given(st.text(max_size=200))
def test_any_text_as_a_cursor_is_a_position_or_a_400(text):
    try:
        position = decode_cursor(text, (int,))
    except BadRequest:
        return
    assert position is None or (len(position) == 1 and type(position[0]) is int)


@given(st.lists(st.one_of(BIG, st.text(max_size=5), st.floats(allow_nan=False), st.booleans(), st.none()), max_size=3))
def test_a_position_of_the_wrong_shape_is_refused(position):
    cursor = encode_cursor(position)
    if len(position) == 1 and type(position[0]) is int:
        assert decode_cursor(cursor, (int,)) == position
    else:
        with pytest.raises(BadRequest):
            decode_cursor(cursor, (int,))  # a bool is not an id, nor is a float


@given(st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=10))
def test_pages_hold_at_most_limit_and_continue_exactly_when_more_remain(n, limit):
    rows = [{"id": 100 - i} for i in range(n)]
    fetched = rows[: limit + 1]  # the query's LIMIT limit + 1
    result = page(fetched, limit, lambda r: [r["id"]])
    assert result["items"] == rows[:limit]
    assert (result["next_cursor"] is not None) == (n > limit)
    if result["next_cursor"]:
        assert decode_cursor(result["next_cursor"], (int,)) == [rows[limit - 1]["id"]]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.dictionaries(st.text(max_size=20), JSON, max_size=6))
def test_input_schemas_accept_or_refuse_with_422_only(model, data):
    try:
        parsed = validate(model, data)
    except Invalid as exc:
        assert exc.fields and all(isinstance(v, str) for v in exc.fields.values())
        return
    # What was accepted is normalised once and for all: validating it again changes nothing.
    assert validate(model, parsed.model_dump(exclude_unset=True)) == parsed


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=10, deadline=None)
@given(data=JSON)
def test_input_schemas_refuse_non_objects_with_422(model, data):
    if isinstance(data, dict):
        return
    with pytest.raises(Invalid):
        validate(model, data)


def _int_bounds(model):
    for name in model.model_fields:
        schema = model.model_json_schema()["properties"][name]
        for option in schema.get("anyOf", [schema]):
            if option.get("type") == "integer":
                yield name, option


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_integer_input_is_bounded_to_what_postgres_holds(model):
    """An unbounded integer reaches asyncpg as an out-of-range bigint: a 500 instead of a 422."""
    for name, option in _int_bounds(model):
        assert option.get("maximum", 2**63) <= 2**63 - 1, f"{model.__name__}.{name} has no upper bound"
        assert option.get("minimum", -(2**63) - 1) >= -(2**63), f"{model.__name__}.{name} has no lower bound"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_nul_character_in_any_text_input_is_422(model):
    for name, field in model.model_fields.items():
        if str in (field.annotation, *getattr(field.annotation, "__args__", ())):
            with pytest.raises(Invalid) as refused:
                validate(model, {name: "a\x00b"})
            assert name in refused.value.fields


def test_every_query_model_is_frozen_so_the_empty_one_can_be_shared():
    """parse_query validates an empty query once per model; no request may change the shared one."""
    queries = [r.query for r in ROUTE_TABLE if r.query is not None]
    assert queries and all(issubclass(q, Query) for q in queries)
    page_query = next(q for q in queries if "limit" in q.model_fields)
    shared = validate(page_query, {})
    with pytest.raises(ValidationError):
        shared.limit = 1
