"""Binary record values: exact round trips, and every malformed value is refused (never half-read)."""

from __future__ import annotations

import struct

import pytest

from features.prefs import QueryPref, UserPref
from preference_cache import bulk_codec, codec
from preference_cache.synthetic import random_mined

QUERY = QueryPref(exposures=(10, 20, 30, 40), clicks=(0, 1, 3, 9), users=7)
USER = UserPref(
    exposures=(1, 2, 3, 4),
    clicks=(0, 1, 1, 2),
    activity=4,
    history_items=(2**62 + 5, 17, 9),
    history_levels=(3, 0, 2),
)


def test_records_round_trip_exactly() -> None:
    assert codec.decode_query(codec.encode_query(QUERY)) == QUERY
    assert codec.decode_user(codec.encode_user(USER)) == USER
    empty = UserPref(exposures=(0,) * 4, clicks=(0,) * 4, activity=0)
    assert codec.decode_user(codec.encode_user(empty)) == empty


def test_values_are_compact_and_start_with_the_schema_version() -> None:
    assert len(codec.encode_query(QUERY)) == 39
    value = codec.encode_user(USER)
    assert len(value) == 40 + 9 * 3 and value[0] == codec.SCHEMA_VERSION


def _corrupt(value: bytes, offset: int, byte: int) -> bytes:
    return value[:offset] + bytes([byte]) + value[offset + 1 :]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "at least 3 bytes"),
        (_corrupt(codec.encode_query(QUERY), 0, 9), "schema version 9"),
        (codec.encode_user(USER), "kind 2, expected 1"),
        (_corrupt(codec.encode_query(QUERY), 2, 5), "5 levels"),
        (codec.encode_query(QUERY)[:-1], "38 bytes"),
        (codec.encode_query(QUERY) + b"\0", "40 bytes"),
        (
            codec.encode_query(QueryPref((1, 1, 1, 1), (0, 0, 0, 0), 1))[:3]
            + struct.pack("<9I", *[1] * 4, 2, *[0] * 3, 1),
            "more clicks than exposures",
        ),
    ],
)
def test_malformed_query_values_raise_malformed_record(value: bytes, message: str) -> None:
    with pytest.raises(codec.MalformedRecord, match=message):
        codec.decode_query(value)


def test_malformed_user_values_raise_malformed_record() -> None:
    value = codec.encode_user(USER)
    with pytest.raises(codec.MalformedRecord, match="expected 67 for 3 items"):
        codec.decode_user(value[:-1])
    with pytest.raises(codec.MalformedRecord, match="history levels outside"):
        codec.decode_user(value[:-1] + bytes([4]))
    with pytest.raises(codec.MalformedRecord, match="kind 1, expected 2"):
        codec.decode_user(codec.encode_query(QUERY))


def test_counts_that_do_not_fit_are_refused_at_encode_time() -> None:
    with pytest.raises(ValueError, match="counts must lie in"):
        codec.encode_query(QueryPref((2**32, 0, 0, 0), (0, 0, 0, 0), 1))
    with pytest.raises(ValueError, match="4 per-level counts"):
        codec.encode_query(QueryPref((1, 2, 3), (0, 0, 0), 1))
    with pytest.raises(ValueError, match="differ in length"):
        codec.encode_user(UserPref((0,) * 4, (0,) * 4, 0, history_items=(1, 2), history_levels=(1,)))


@pytest.mark.parametrize("history_len", [0, 3, 10])
def test_bulk_encoders_write_the_same_bytes_as_the_record_encoders(history_len: int) -> None:
    mined = random_mined(num_queries=30, num_users=60, history_len=history_len, seed=history_len)
    queries = bulk_codec.encode_queries(mined.q_exposures, mined.q_clicks, mined.q_users)
    assert queries == [codec.encode_query(mined.query_record(i)) for i in range(30)]
    users = bulk_codec.encode_users(
        mined.u_exposures,
        mined.u_clicks,
        mined.u_activity,
        mined.u_history_items,
        mined.u_history_levels,
        mined.u_history_count,
    )
    assert users == [codec.encode_user(mined.user_record(i)) for i in range(60)]
    assert [codec.decode_user(v) for v in users] == [mined.user_record(i) for i in range(60)]
    with pytest.raises(ValueError, match="counts must lie in"):
        bulk_codec.encode_queries(mined.q_exposures * -1 - 1, mined.q_clicks, mined.q_users)
