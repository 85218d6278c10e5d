"""Text standardisation, vocabulary and fixed-length encoding.

Standardisation follows the reference model: lowercase, strip HTML residue (`<br />`, other tags,
entities), remove punctuation, split on whitespace. The vocabulary is built from the training split
only and saved with every model, so raw text is scored later exactly as in training.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.cache import atomic_write_text

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
# No English word comes close; a longer "token" is junk (a run of letters, a mangled URL) and
# would only bloat the vocabulary every logged model carries. It encodes as OOV.
MAX_TOKEN_CHARS = 100
# Characters of a review a model scores and the intake accepts (seven times the longest IMDB
# review): bounds the work per review in serving and the size of a stored row.
MAX_REVIEW_CHARS = 100_000

# Words after which the n-gram branch marks the next few tokens as negated (`ngram_negation_scope`;
# Pang, Lee & Vaithyanathan 2002): "t" is what standardisation leaves of "n't" ("didn t").
NEGATION_WORDS = ("not", "no", "never", "t", "nothing", "nor", "neither", "nobody", "none")

_TAG = re.compile(r"<[^>]*>")
# Everything that is not a letter, digit or whitespace counts as punctuation (apostrophes too:
# "don't" -> "dont", as the reference's punctuation strip did).
_PUNCT = re.compile(r"[^\w\s]|_")


def strip_markup(text: str) -> str:
    """`text` with HTML entities decoded and tags (`<br />`...) replaced by spaces."""
    text = _TAG.sub(" ", html.unescape(text))
    # Unescape again: entities inside a tag-stripped text (e.g. "&amp;lt;") must not survive as
    # punctuation-bearing residue; then strip tags the second unescape revealed.
    return _TAG.sub(" ", html.unescape(text))


def standardize(text: str) -> str:
    """Lowercase, drop HTML tags and entities, remove punctuation, collapse whitespace."""
    text = _PUNCT.sub(" ", strip_markup(text).lower())
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Standardise and split on whitespace."""
    return standardize(text).split()


@dataclass(frozen=True)
class Vocabulary:
    """Token <-> id mapping with reserved ids: 0 padding, 1 out-of-vocabulary."""

    tokens: tuple[str, ...]  # index == id; tokens[0] is PAD_TOKEN, tokens[1] is OOV_TOKEN

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD_TOKEN, OOV_TOKEN):
            raise ValueError(f"vocabulary must start with {PAD_TOKEN!r}, {OOV_TOKEN!r}")
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(self.tokens)})

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int) -> Vocabulary:
        """Top words by frequency (ties broken alphabetically, so the result is deterministic).

        `max_size` counts the two reserved ids; tokens over MAX_TOKEN_CHARS never enter.
        """
        if max_size < 3:
            raise ValueError(f"vocabulary size must be at least 3 (2 reserved ids), got {max_size}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = ((tok, n) for tok, n in counts.items() if len(tok) <= MAX_TOKEN_CHARS)
        ranked = sorted(kept, key=lambda kv: (-kv[1], kv[0]))[: max_size - 2]
        return cls((PAD_TOKEN, OOV_TOKEN, *(tok for tok, _ in ranked)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index  # type: ignore[attr-defined]

    def id_of(self, token: str) -> int:
        return self._index.get(token, OOV_ID)  # type: ignore[attr-defined]

    def encode(self, tokens: Sequence[str], max_len: int) -> np.ndarray:
        """Ids of the first `max_len` tokens, right-padded with PAD_ID."""
        ids = np.full(max_len, PAD_ID, dtype=np.int64)
        kept = [self.id_of(tok) for tok in tokens[:max_len]]
        ids[: len(kept)] = kept
        return ids

    def oov_count(self, tokens: Sequence[str]) -> int:
        """Tokens of the whole review (not only the encoded part) missing from the vocabulary."""
        return sum(1 for tok in tokens if tok not in self)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids if i != PAD_ID]

    def to_json(self) -> str:
        return json.dumps({"tokens": list(self.tokens)})

    @classmethod
    def from_json(cls, payload: str) -> Vocabulary:
        return cls(tuple(json.loads(payload)["tokens"]))

    def save(self, path: Path) -> None:
        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (n, max_len) int64
    lengths: np.ndarray  # (n,) tokens before truncation
    oov_counts: np.ndarray  # (n,) OOV tokens over the whole review


def encode_texts(texts: Iterable[str], vocab: Vocabulary, max_len: int) -> Encoded:
    """Standardise, tokenize and encode many texts, with the per-review metadata the analysis needs."""
    if max_len < 1:
        raise ValueError(f"max_len must be positive, got {max_len}")
    rows, lengths, oovs = [], [], []
    for text in texts:
        tokens = tokenize(text)
        rows.append(vocab.encode(tokens, max_len))
        lengths.append(len(tokens))
        oovs.append(vocab.oov_count(tokens))
    ids = np.stack(rows) if rows else np.zeros((0, max_len), dtype=np.int64)
    return Encoded(ids, np.asarray(lengths, dtype=np.int64), np.asarray(oovs, dtype=np.int64))
