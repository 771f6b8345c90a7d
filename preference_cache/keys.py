"""Redis key layout, shared by the publisher and the readers.

::

    {prefix}:current                      -> namespace id of the live records (the pointer)
    {prefix}:namespaces                   -> hash: namespace id -> "writing" | "complete"
    {prefix}:publish-lock                 -> held while a publish runs (redis-py Lock, token + TTL)
    {prefix}:<ns>:qpref:{<query_key>}     -> codec.encode_query bytes
    {prefix}:<ns>:upref:{<user_key>}      -> codec.encode_user bytes

The namespace id is the content hash of the mined file, so the same content always lands in the same
namespace (re-publishing is idempotent).

Redis Cluster: the hash tag is the *entity* hash (the ``{...}`` part), never the namespace. Tagging by
namespace would put every record of a publish in one slot, i.e. on one node. Tagging by entity spreads
records evenly and keeps each entity's slot stable across namespaces, so during the grace overlap the
old and new copy of a record sit on the same node and per-node memory grows evenly. A request's query
and user records live in different slots; the reader sends both GETs in one pipeline and the cluster
client splits it by node and sends the parts concurrently, so the request still costs one round trip.
The pointer is a single key read only every ``pointer_refresh_s`` (cached), not per request.
"""

from __future__ import annotations

import re

from features.hashing import query_key, user_key

DEFAULT_PREFIX = "prectr"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NAMESPACE_RE = re.compile(r"^[0-9a-f]{8,64}$")


def check_prefix(prefix: str) -> str:
    """The prefix must not contain ``:`` (the separator) or ``{}`` (cluster hash tags)."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"key prefix {prefix!r} must match {_PREFIX_RE.pattern}")
    return prefix


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"namespace {namespace!r} is not a lower-case hex content hash")
    return namespace


def pointer_key(prefix: str) -> str:
    return f"{prefix}:current"


def registry_key(prefix: str) -> str:
    return f"{prefix}:namespaces"


def lock_key(prefix: str) -> str:
    return f"{prefix}:publish-lock"


def query_record_key(prefix: str, namespace: str, query: str) -> str:
    """Key of a query's record; ``query`` may be raw, :func:`features.hashing.query_key` normalises it."""
    return f"{prefix}:{namespace}:qpref:{{{query_key(query)}}}"


def user_record_key(prefix: str, namespace: str, user_id: str | int) -> str:
    return f"{prefix}:{namespace}:upref:{{{user_key(user_id)}}}"


def record_pattern(prefix: str) -> str:
    """SCAN pattern matching every record key of every namespace under ``prefix``."""
    return f"{prefix}:*:?pref:*"


def namespace_of(key: str, prefix: str) -> str | None:
    """Namespace segment of a record key, or None for a key that is not a record key."""
    parts = key.split(":", 3)
    if len(parts) != 4 or parts[0] != prefix or parts[2] not in ("qpref", "upref"):
        return None
    return parts[1]
