"""``open_store``: one entry point from configuration to a :class:`PreferenceStore`."""

from __future__ import annotations

from pathlib import Path

from preference_cache.memory_store import InProcessPreferenceStore
from preference_cache.mined import MinedPrefs
from preference_cache.settings import PrefReaderSettings
from preference_cache.storage import META_FILE
from preference_cache.store import OutcomeCallback, PreferenceStore

_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(
    spec: PrefReaderSettings | MinedPrefs | str | Path, on_outcome: OutcomeCallback | None = None
) -> PreferenceStore:
    """A store for ``spec``: reader settings or a ``redis://`` URL -> Redis (Cluster when
    ``settings.cluster``); a mined directory or a :class:`MinedPrefs` -> the in-process store.

    Redis connections open lazily; call ``await store.ping()`` at start-up to connect and read the pointer.
    """
    if isinstance(spec, MinedPrefs):
        return InProcessPreferenceStore(spec, on_outcome)
    if isinstance(spec, str) and spec.startswith(_URL_SCHEMES):
        spec = PrefReaderSettings(url=spec)
    if isinstance(spec, PrefReaderSettings):
        from preference_cache.redis_store import RedisPreferenceStore

        return RedisPreferenceStore(spec, on_outcome)
    path = Path(spec)
    if (path / META_FILE).is_file():
        return InProcessPreferenceStore.from_path(path, on_outcome)
    raise ValueError(
        f"cannot open a preference store from {spec!r}: expected a redis://, rediss:// or unix:// URL, "
        f"reader settings, or a directory written by `prectr prefs mine`"
    )
