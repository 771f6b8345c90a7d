"""In-process preference store: the mined file served from memory (the embedded default for ``make run``).

It builds records from the same :class:`MinedPrefs` rows the publisher encodes for Redis, so a laptop
run and a Redis-backed deployment answer identically (a test checks the two agree record for record).
"""

from __future__ import annotations

from pathlib import Path

from features.normalize import normalize_query
from preference_cache.mined import MinedPrefs
from preference_cache.storage import load_mined
from preference_cache.store import Outcome, OutcomeCallback, PrefLookup, report_outcomes


class InProcessPreferenceStore:
    """:class:`~preference_cache.store.PreferenceStore` over a loaded :class:`MinedPrefs` (no I/O per lookup)."""

    def __init__(self, mined: MinedPrefs, on_outcome: OutcomeCallback | None = None) -> None:
        self.mined = mined
        self._on_outcome = on_outcome
        self._query_rows = {q: i for i, q in enumerate(mined.query_norm.tolist())}
        self._user_rows = {str(u): i for i, u in enumerate(mined.user_id.tolist())}

    @classmethod
    def from_path(
        cls, path: str | Path, on_outcome: OutcomeCallback | None = None
    ) -> InProcessPreferenceStore:
        return cls(load_mined(path), on_outcome)

    @property
    def namespace(self) -> str:
        return self.mined.namespace

    async def lookup(self, query: str, user_id: str) -> PrefLookup:
        try:
            q_row = self._query_rows.get(normalize_query(query))
            u_row = self._user_rows.get(str(user_id))
            result = PrefLookup(
                qpref=None if q_row is None else self.mined.query_record(q_row),
                upref=None if u_row is None else self.mined.user_record(u_row),
                query_outcome=Outcome.MISS if q_row is None else Outcome.HIT,
                user_outcome=Outcome.MISS if u_row is None else Outcome.HIT,
                namespace=self.mined.namespace,
            )
        except Exception:  # e.g. a non-string query: defaults, like every other backend
            result = PrefLookup(None, None, Outcome.ERROR, Outcome.ERROR, self.mined.namespace)
        return report_outcomes(self._on_outcome, result)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
