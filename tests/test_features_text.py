"""The text contract: normalisation, tokenizer training and pair encoding, with golden values."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from features.normalize import normalize_query
from features.text import TextEncoder
from features.tokenizer import (
    CLS_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    learn_wordpiece_vocab,
    load_tokenizer,
    save_tokenizer,
    train_wordpiece,
)

CORPUS = [
    "Simpson Strong-Tie 12-Gauge Angle",
    "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood and Concrete Coating",
    "Delta Vero 1-Handle Shower Only Faucet Trim Kit in Chrome (Valve Not Included)",
    "angle bracket",
    "deck over",
    "rain shower head",
    "shower faucet chrome",
    "wood coating concrete",
] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(CORPUS, vocab_size=300, min_frequency=1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Angle   BRACKET ", "angle bracket"),
        ("Men\u2019s  boots™\x89", "men s boots"),
        ("1/2 in. x 10 ft. PVC", "1/2 in. x 10 ft. pvc"),
        ("ＡＢＣ　１２３", "abc 123"),  # full-width forms fold under NFKC
        ("!!!", ""),
    ],
)
def test_normalize_query_golden(raw: str, expected: str) -> None:
    assert normalize_query(raw) == expected


def test_special_tokens_have_fixed_ids(tokenizer) -> None:
    assert [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")] == [0, 1, 2, 3]


def test_tokenizer_round_trips_through_json(tokenizer, tmp_path: Path) -> None:
    path = save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    again = load_tokenizer(path)
    text = "Delta shower faucet in chrome"
    assert again.encode(text).ids == tokenizer.encode(text).ids


def test_missing_tokenizer_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_tokenizer(tmp_path / "nope.json")


def test_pair_layout_is_cls_query_sep_title_sep_then_padding(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    out = enc.encode("deck over", ["Wood Coating"])
    q = tokenizer.encode("deck over", add_special_tokens=False).ids
    t = tokenizer.encode("Wood Coating", add_special_tokens=False).ids
    expected = [CLS_ID, *q, SEP_ID, *t, SEP_ID]
    row = out.input_ids[0].tolist()
    assert row[: len(expected)] == expected
    assert all(tok == PAD_ID for tok in row[len(expected) :])
    assert out.attention_mask[0].sum() == len(expected)
    # segment ids: 0 over [CLS] query [SEP], 1 over title [SEP], 0 on padding
    assert out.token_type_ids[0].tolist() == [0] * (len(q) + 2) + [1] * (len(t) + 1) + [0] * (
        out.shape[1] - len(expected)
    )


def test_rows_pad_to_the_smallest_bucket_that_fits(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    short = enc.encode("deck", ["wood"])
    assert short.shape == (1, 8)
    long_title = " ".join(["shower faucet chrome"] * 20)
    long = enc.encode("deck", ["wood", long_title])
    assert long.shape == (2, 32)  # truncated to max_len, never longer
    assert long.input_ids[1, -1] == SEP_ID  # truncation keeps the closing [SEP]
    assert long.attention_mask.dtype == np.int64 and long.input_ids.dtype == np.int64


def test_long_queries_are_truncated_to_max_query_len(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=3, buckets=(16, 32))
    out = enc.encode("shower faucet chrome wood coating concrete deck", ["angle"])
    assert out.token_type_ids[0].tolist().index(1) == 3 + 2


def test_encode_pairs_matches_per_request_encoding(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    per_request = enc.encode("deck over", ["wood coating", "angle"])
    pairs = enc.encode_pairs(["deck over", "deck over"], ["wood coating", "angle"])
    np.testing.assert_array_equal(per_request.input_ids, pairs.input_ids)
    np.testing.assert_array_equal(per_request.token_type_ids, pairs.token_type_ids)


def _reference_rows(enc: TextEncoder, queries: list[list[int]], titles: list[list[int]]) -> list[list[int]]:
    """The layout spelled out one row at a time: [CLS] q [SEP] t (cut to fit) [SEP]."""
    return [
        [CLS_ID, *q, SEP_ID, *t[: enc.max_len - len(q) - 3], SEP_ID]
        for q, t in zip(queries, titles, strict=True)
    ]


def test_vectorised_assembly_matches_the_row_by_row_layout_on_random_rows(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    rng = np.random.default_rng(7)
    for trial in range(50):
        n = int(rng.integers(1, 40))
        queries = [rng.integers(5, 300, int(rng.integers(0, 9))).tolist() for _ in range(n)]
        if trial % 2:  # the serving path: one query for every row
            queries = [queries[0]] * n
        titles = [rng.integers(5, 300, int(rng.integers(0, 45))).tolist() for _ in range(n)]
        got = enc._assemble_rows(queries, titles)
        expected = _reference_rows(enc, queries, titles)
        width = enc.bucket_for(max(map(len, expected)))
        assert got.shape == (n, width)
        for i, row in enumerate(expected):
            q_span = len(queries[i]) + 2
            assert got.input_ids[i].tolist() == row + [PAD_ID] * (width - len(row))
            assert got.attention_mask[i].tolist() == [1] * len(row) + [0] * (width - len(row))
            assert got.token_type_ids[i].tolist() == [0] * q_span + [1] * (len(row) - q_span) + [0] * (
                width - len(row)
            )


@pytest.mark.parametrize("as_arrays", [False, True], ids=["token lists", "cached int32 arrays"])
def test_one_query_assembly_and_its_bucket_groups_match_the_row_by_row_layout(
    tokenizer, as_arrays: bool
) -> None:
    """The serving path (one query, titles as one block, rows grouped by their own bucket) against the
    layout spelled out row by row, long titles cut to fit included."""
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        query = rng.integers(5, 300, int(rng.integers(0, 9))).tolist()
        titles = [rng.integers(5, 300, int(rng.integers(0, 45))).tolist() for _ in range(n)]
        rows = [np.asarray(t, dtype=np.int32) for t in titles] if as_arrays else titles
        reference = enc._assemble_rows([query] * n, titles)
        whole = enc.assemble(query, rows)
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(getattr(whole, name), getattr(reference, name))
        groups = enc.assemble_by_bucket(query, rows)
        assert sorted(np.concatenate([r for _, r, _ in groups]).tolist()) == list(range(n))
        assert [b for b, _, _ in groups] == sorted({b for b, _, _ in groups})
        for bucket, positions, pairs in groups:
            lengths = reference.attention_mask[positions].sum(axis=1)
            assert all(enc.bucket_for(int(m)) == bucket for m in lengths)  # each row in its own bucket
            assert pairs.shape == (len(positions), bucket)
            for name in ("input_ids", "attention_mask", "token_type_ids"):
                np.testing.assert_array_equal(
                    getattr(pairs, name), getattr(reference, name)[positions, :bucket]
                )


def test_buckets_for_many_lengths_agrees_with_one_at_a_time(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    lengths = np.arange(0, 40)
    assert enc.buckets_for(lengths).tolist() == [enc.bucket_for(int(n)) for n in lengths]


def test_empty_candidate_list_gives_empty_arrays(tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_len=32, max_query_len=8, buckets=(8, 16, 32))
    assert enc.encode("deck", []).input_ids.shape[0] == 0
    assert enc.assemble_by_bucket([5, 6], []) == []


def test_buckets_must_end_at_max_len(tokenizer) -> None:
    with pytest.raises(ValueError, match="must end at max_len"):
        TextEncoder(tokenizer, max_len=64, buckets=(16, 32))


def test_training_the_same_corpus_twice_gives_the_same_vocabulary() -> None:
    """tokenizers' own WordPieceTrainer breaks ties in hash-map order (a different vocabulary per run)."""
    corpus = [*CORPUS, "Deck Screw 2 in. Steel", "Deck Board 8 ft. Cedar", "Screw Hook Brass"] * 3
    first, second = train_wordpiece(corpus, 120), train_wordpiece(list(reversed(corpus)), 120)
    assert first.get_vocab() == second.get_vocab()


def test_merges_follow_pair_frequency_and_stop_at_min_frequency() -> None:
    counts = Counter({"deck": 5, "desk": 2, "dog": 1})
    vocab = learn_wordpiece_vocab(counts, vocab_size=100, min_frequency=2)
    chars = ["d", "##e", "##c", "##k", "##s", "##o", "##g"]
    assert vocab[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS and set(chars) <= set(vocab)
    # (d, ##e) occurs 7 times: the first merge; "deck" (5) is built next; "desk" (2) too; "dog" (1) never.
    learnt = vocab[len(SPECIAL_TOKENS) + len(chars) :]
    assert learnt[0] == "de" and "deck" in learnt and "desk" in learnt
    assert not any(token.startswith("do") for token in vocab)
    assert (
        learn_wordpiece_vocab(counts, vocab_size=len(SPECIAL_TOKENS) + len(chars) + 1, min_frequency=1)[-1]
        == "de"
    )


def test_trained_tokenizer_lowercases_and_splits_an_unseen_word_into_learnt_pieces() -> None:
    tok = train_wordpiece(["deck decks king"] * 4, 100, 1)
    assert tok.encode("DECKS").tokens == ["decks"]
    assert tok.encode("decking").tokens == ["deck", "##ing"]  # "##ing" learnt inside "king"
