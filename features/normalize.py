"""Query and title normalisation: one definition for mining, training and serving."""

from __future__ import annotations

import re
import unicodedata

_KEEP = re.compile(r"[^0-9a-z\s./\-\"'x#&]+")
_SPACES = re.compile(r"\s+")
_DROP_CATEGORIES = frozenset({"So", "Sk", "Cc", "Cf", "Co", "Cn"})


def normalize_query(text: str) -> str:
    """Canonical form of a search query: NFKC, lower case, odd symbols dropped, whitespace collapsed.

    Two queries that normalise to the same string share preferences and relevance-cache entries.
    """
    # Symbols such as ™ or ° (and control characters from mojibake) carry no search intent; drop them
    # before NFKC, which would otherwise expand ™ to "TM".
    if not text.isascii():  # fast path: ASCII needs neither (the regex below drops ASCII controls)
        text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROP_CATEGORIES)
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    text = _KEEP.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
