"""Relevance-preference cache: offline mining, atomic publication to Redis, deadline-bounded online reads.

Offline: :func:`preference_cache.mining.mine_preferences` -> :class:`MinedPrefs` -> ``save_mined`` /
``publish``. Online: :func:`open_store` -> a :class:`PreferenceStore` whose ``lookup`` never raises.
Torch-free; duckdb and pyarrow are imported only by the offline functions that need them.
"""

from preference_cache.factory import open_store
from preference_cache.mined import MinedPrefs
from preference_cache.settings import PrefReaderSettings
from preference_cache.store import Outcome, OutcomeCallback, PreferenceStore, PrefLookup

__all__ = [
    "MinedPrefs",
    "Outcome",
    "OutcomeCallback",
    "PrefLookup",
    "PrefReaderSettings",
    "PreferenceStore",
    "open_store",
]
