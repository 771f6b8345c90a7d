"""Binary values stored in Redis: a version byte, a kind byte, then little-endian counts (never pickle).

Layout (all little-endian)::

    query  : u8 version | u8 kind=1 | u8 K | K x u32 exposures | K x u32 clicks | u32 users
    user   : u8 version | u8 kind=2 | u8 K | K x u32 exposures | K x u32 clicks | u32 activity
             | u8 n | n x i64 history item hash | n x i8 history level      (most recent last)

A query record is 39 bytes and a user record 40 + 9n bytes. The kind byte stops a user value from ever
being read as a query value; any mismatch raises :class:`MalformedRecord`, which the reader turns into
defaults and a ``malformed`` count instead of an exception in the request.
"""

from __future__ import annotations

import struct

from features.prefs import NUM_LEVELS, QueryPref, UserPref

SCHEMA_VERSION = 1
KIND_QUERY = 1
KIND_USER = 2
MAX_COUNT = 0xFFFF_FFFF
MAX_HISTORY = 255

_HEADER = struct.Struct("<BBB")
_QUERY_BODY = struct.Struct(f"<{NUM_LEVELS}I{NUM_LEVELS}II")
_USER_BODY = struct.Struct(f"<{NUM_LEVELS}I{NUM_LEVELS}IIB")


class MalformedRecord(ValueError):
    """A stored value does not follow the schema this code reads."""


def encode_query(pref: QueryPref) -> bytes:
    """Bytes of one per-query record; counts above 2**32-1 are an error, not silently wrapped."""
    _check_counts(pref.exposures, pref.clicks, pref.users)
    return _HEADER.pack(SCHEMA_VERSION, KIND_QUERY, NUM_LEVELS) + _QUERY_BODY.pack(
        *pref.exposures, *pref.clicks, pref.users
    )


def encode_user(pref: UserPref) -> bytes:
    """Bytes of one per-user record; the history keeps at most :data:`MAX_HISTORY` most recent items."""
    _check_counts(pref.exposures, pref.clicks, pref.activity)
    if len(pref.history_items) != len(pref.history_levels):
        raise ValueError("history_items and history_levels differ in length")
    items = pref.history_items[-MAX_HISTORY:]
    levels = pref.history_levels[-MAX_HISTORY:]
    n = len(items)
    return (
        _HEADER.pack(SCHEMA_VERSION, KIND_USER, NUM_LEVELS)
        + _USER_BODY.pack(*pref.exposures, *pref.clicks, pref.activity, n)
        + struct.pack(f"<{n}q{n}b", *items, *levels)
    )


def decode_query(value: bytes) -> QueryPref:
    """Inverse of :func:`encode_query`; raises :class:`MalformedRecord` on any schema violation."""
    _check_header(value, KIND_QUERY)
    if len(value) != _HEADER.size + _QUERY_BODY.size:
        raise MalformedRecord(
            f"query record has {len(value)} bytes, expected {_HEADER.size + _QUERY_BODY.size}"
        )
    fields = _QUERY_BODY.unpack_from(value, _HEADER.size)
    exposures, clicks = fields[:NUM_LEVELS], fields[NUM_LEVELS : 2 * NUM_LEVELS]
    _check_clicks(exposures, clicks)
    return QueryPref(exposures=exposures, clicks=clicks, users=fields[-1])


def decode_user(value: bytes) -> UserPref:
    """Inverse of :func:`encode_user`; raises :class:`MalformedRecord` on any schema violation."""
    _check_header(value, KIND_USER)
    fixed = _HEADER.size + _USER_BODY.size
    if len(value) < fixed:
        raise MalformedRecord(f"user record has {len(value)} bytes, expected at least {fixed}")
    fields = _USER_BODY.unpack_from(value, _HEADER.size)
    n = fields[-1]
    if len(value) != fixed + 9 * n:
        raise MalformedRecord(f"user record has {len(value)} bytes, expected {fixed + 9 * n} for {n} items")
    exposures, clicks = fields[:NUM_LEVELS], fields[NUM_LEVELS : 2 * NUM_LEVELS]
    _check_clicks(exposures, clicks)
    history = struct.unpack_from(f"<{n}q{n}b", value, fixed)
    levels = history[n:]
    if any(not 0 <= lv < NUM_LEVELS for lv in levels):
        raise MalformedRecord(f"user record has history levels outside 0..{NUM_LEVELS - 1}: {levels}")
    return UserPref(
        exposures=exposures,
        clicks=clicks,
        activity=fields[2 * NUM_LEVELS],
        history_items=history[:n],
        history_levels=levels,
    )


def _check_header(value: bytes, kind: int) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) < _HEADER.size:
        raise MalformedRecord(f"record is not a binary value of at least {_HEADER.size} bytes")
    version, got_kind, levels = _HEADER.unpack_from(value, 0)
    if version != SCHEMA_VERSION:
        raise MalformedRecord(f"record schema version {version}, this code reads {SCHEMA_VERSION}")
    if got_kind != kind:
        raise MalformedRecord(f"record kind {got_kind}, expected {kind}")
    if levels != NUM_LEVELS:
        raise MalformedRecord(f"record has {levels} levels, this code uses {NUM_LEVELS}")


def _check_counts(exposures: tuple[int, ...], clicks: tuple[int, ...], total: int) -> None:
    if len(exposures) != NUM_LEVELS or len(clicks) != NUM_LEVELS:
        raise ValueError(f"expected {NUM_LEVELS} per-level counts, got {len(exposures)} and {len(clicks)}")
    if not all(0 <= c <= MAX_COUNT for c in (*exposures, *clicks, total)):
        raise ValueError(f"counts must lie in 0..{MAX_COUNT}: {exposures}, {clicks}, {total}")


def _check_clicks(exposures: tuple[int, ...], clicks: tuple[int, ...]) -> None:
    if any(c > e for c, e in zip(clicks, exposures, strict=True)):
        raise MalformedRecord(f"record has more clicks than exposures: {clicks} > {exposures}")
