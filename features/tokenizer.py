"""Training and loading the WordPiece tokenizer that both sides use (saved as ``tokenizer.json``)."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3


def _normalizer() -> normalizers.Normalizer:
    return normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """Normalised, pre-tokenised word frequencies of ``texts`` (what the vocabulary is learnt from)."""
    normalizer, pre = _normalizer(), pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def learn_wordpiece_vocab(counts: Counter[str], vocab_size: int, min_frequency: int) -> list[str]:
    """The WordPiece vocabulary by frequency-ordered pair merging, fully deterministic.

    The same algorithm as ``tokenizers``' ``WordPieceTrainer`` (which learns WordPiece with BPE merges):
    words start as characters, continuation characters prefixed ``##``; the most frequent adjacent pair
    (weighted by word count) is merged while its count reaches ``min_frequency`` and the vocabulary has
    room. That trainer breaks count ties by ids assigned in hash-map order, so the same corpus gives a
    different vocabulary from run to run (huggingface/tokenizers#1794); here ties go to the
    lexicographically smaller pair, so a corpus always gives the same vocabulary.
    """
    words = sorted(counts)
    freq = [counts[w] for w in words]
    symbols = [[w[0], *(f"##{c}" for c in w[1:])] for w in words]
    vocab = list(SPECIAL_TOKENS)
    seen = set(vocab)
    for sym in sorted({s for word in symbols for s in word}):
        if sym not in seen:
            vocab.append(sym)
            seen.add(sym)
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    pair_words: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, word in enumerate(symbols):
        for pair in pairwise(word):
            pair_count[pair] += freq[i]
            pair_words[pair].add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    while heap and len(vocab) < vocab_size:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:
            continue  # stale entry: the pair's count changed since it was pushed
        if -neg < min_frequency:
            break
        a, b = pair
        merged = a + b[2:]
        if merged not in seen:
            vocab.append(merged)
            seen.add(merged)
        touched: set[tuple[str, str]] = set()
        for i in sorted(pair_words.pop(pair)):
            word = symbols[i]
            for old in pairwise(word):
                pair_count[old] -= freq[i]
                touched.add(old)
            out, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and word[j] == a and word[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            symbols[i] = out
            for new in pairwise(out):
                pair_count[new] += freq[i]
                pair_words[new].add(i)
                touched.add(new)
        for p in touched:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
            else:
                pair_count.pop(p, None)
                pair_words.pop(p, None)
    return vocab


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> Tokenizer:
    """Train a lower-casing WordPiece tokenizer on catalogue titles and queries (deterministic).

    The special tokens get fixed ids (``[PAD]`` = 0, ``[CLS]`` = 2, ``[SEP]`` = 3) so padding and pair
    assembly in :class:`features.text.TextEncoder` never depend on the training corpus.
    """
    vocab = learn_wordpiece_vocab(word_counts(texts), vocab_size, min_frequency)
    tok = Tokenizer(
        models.WordPiece(
            {token: i for i, token in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=64
        )
    )
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(SPECIAL_TOKENS)
    for token, expected in zip(SPECIAL_TOKENS, range(len(SPECIAL_TOKENS)), strict=True):
        if tok.token_to_id(token) != expected:  # pragma: no cover - guarded by the vocabulary order
            raise RuntimeError(f"special token {token} got id {tok.token_to_id(token)}, expected {expected}")
    return tok


def save_tokenizer(tok: Tokenizer, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    return Tokenizer.from_file(str(path))
