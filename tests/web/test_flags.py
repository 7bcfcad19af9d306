"""A cached body's caller-dependent flag (`is_following`, `liked_by_me`), set without decoding the body."""

from __future__ import annotations

import orjson
import pytest

from hmb.web.http import dumps, with_flag

CACHED = dumps({"id": 7, "name": "Ana", "bio": 'says "hi", {not a brace}', "is_following": False})


def test_a_caller_whose_flag_is_false_is_served_the_cached_bytes_themselves():
    # No copy: a signed-out reader's hit serves the L1 value as it is (and its hash, kept by
    # the bytes object, keys the gzip memo without rehashing).
    assert with_flag(CACHED, "is_following", False) is CACHED


def test_a_caller_whose_flag_is_true_gets_the_same_body_with_it_set():
    flagged = with_flag(CACHED, "is_following", True)
    assert orjson.loads(flagged) == {**orjson.loads(CACHED), "is_following": True}
    assert flagged.count(b'"is_following"') == 1


def test_a_body_whose_last_field_is_not_the_flag_is_refused_not_mangled():
    # Loaders encode the flag last; one that does not is a bug, and must not send broken JSON.
    with pytest.raises(ValueError):
        with_flag(dumps({"id": 7, "is_following": False, "name": "Ana"}), "is_following", True)
