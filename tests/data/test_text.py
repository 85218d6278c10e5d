"""Standardisation, vocabulary and encoding."""

import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from data.text import OOV_ID, PAD_ID, Vocabulary, encode_texts, standardize, tokenize

html_text = st.lists(
    st.one_of(
        st.text(min_size=0, max_size=20),
        st.sampled_from(
            ["<br />", "<br/>", "<i>", "</i>", "&amp;", "&quot;", "&#39;", "&lt;b&gt;"]
        ),
    ),
    max_size=20,
).map("".join)


@given(html_text)
def test_standardize_is_idempotent(text: str) -> None:
    once = standardize(text)
    assert standardize(once) == once


@given(html_text)
def test_standardize_leaves_no_uppercase_punctuation_or_tags(text: str) -> None:
    out = standardize(text)
    assert out == out.lower()
    assert not any(ch in string.punctuation for ch in out)
    assert "<" not in out and ">" not in out and "&" not in out
    assert "  " not in out and out == out.strip()


def test_standardize_matches_the_reference_rules() -> None:
    text = "A <i>GREAT</i> film!<br /><br />Don't miss it &amp; enjoy... 10/10"
    assert tokenize(text) == ["a", "great", "film", "don", "t", "miss", "it", "enjoy", "10", "10"]


def test_vocabulary_is_top_n_with_reserved_ids() -> None:
    vocab = Vocabulary.build([["b", "a", "a", "c"], ["a", "b", "d"]], max_size=4)
    assert vocab.tokens == ("<pad>", "<oov>", "a", "b")  # a:3, b:2, then c/d cut
    assert vocab.id_of("a") == 2 and vocab.id_of("zzz") == OOV_ID
    assert "c" not in vocab and len(vocab) == 4


def test_vocabulary_ties_are_deterministic() -> None:
    first = Vocabulary.build([["y", "x", "z"]], max_size=4)
    second = Vocabulary.build([["z", "x", "y"]], max_size=4)
    assert first == second and first.tokens[2:] == ("x", "y")


def test_vocabulary_rejects_too_small_size() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        Vocabulary.build([["a"]], max_size=2)


def test_vocabulary_round_trips_through_json(tmp_path) -> None:
    vocab = Vocabulary.build([["good", "film", "good"]], max_size=10)
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab


def test_encode_pads_truncates_and_counts_oov() -> None:
    vocab = Vocabulary.build([["good", "film"]], max_size=10)
    encoded = encode_texts(["Good film, unknownword!", "", "good " * 10], vocab, max_len=4)
    good, film = vocab.id_of("good"), vocab.id_of("film")
    np.testing.assert_array_equal(encoded.ids[0], [good, film, OOV_ID, PAD_ID])
    np.testing.assert_array_equal(encoded.ids[1], [PAD_ID] * 4)  # empty review kept, all padding
    np.testing.assert_array_equal(encoded.ids[2], [good] * 4)  # truncated to max_len
    assert encoded.lengths.tolist() == [3, 0, 10]  # lengths before truncation
    assert encoded.oov_counts.tolist() == [1, 0, 0]
    assert vocab.decode(encoded.ids[0]) == ["good", "film", "<oov>"]


def test_encode_of_no_texts_has_the_right_shape() -> None:
    vocab = Vocabulary.build([["a"]], max_size=5)
    assert encode_texts([], vocab, max_len=7).ids.shape == (0, 7)


def test_overlong_tokens_never_enter_the_vocabulary() -> None:
    from data.text import MAX_TOKEN_CHARS

    junk, longest = "a" * (MAX_TOKEN_CHARS + 1), "b" * MAX_TOKEN_CHARS
    vocab = Vocabulary.build([[junk] * 50 + [longest, "film"]], max_size=10)
    assert junk not in vocab and vocab.id_of(junk) == OOV_ID
    assert longest in vocab and "film" in vocab
    # One 200 MB "word" would have made a 200 MB vocab.json; now it is an OOV id.
    assert len(vocab.to_json()) < 300
