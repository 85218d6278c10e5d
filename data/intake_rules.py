"""What an intake file may hold: reading CSV, JSONL and Parquet files into rows, and the pandera
schema every row must pass (see `REASONS`, in the order a refused row is given its reason).

Reading is lenient and checking is strict: a value is read as it is (bytes decoded with
replacement, so undecodable input becomes U+FFFD), label spellings and ratings are normalised
where the meaning is unambiguous, and everything else is left for the schema to refuse.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import numbers
import re
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pandera.pandas as pdr
import pyarrow as pa
from pandera.errors import SchemaErrors

from data.text import MAX_REVIEW_CHARS, standardize

MAX_FILE_BYTES = 1 << 30  # a file past this is refused whole, never read
HOLDOUT_BUCKETS = 10  # one review in this many is held out of training
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
REQUIRED = ("text", "label")
OPTIONAL = ("rating", "movie", "source", "collected_at")
LABELS = {"0": 0, "1": 1, "negative": 0, "positive": 1}
# IMDB opened in 1990; a time outside this range is refused as `bad_collected_at`.
COLLECTED_RANGE = (pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))
# A refused row gets the first of these its checks fail.
REASONS = (
    "unreadable",  # a line that could not be parsed (bad JSON, wrong number of CSV fields)
    "schema",  # a value of the wrong type (text that is not text)
    "empty_text",  # missing, blank, or nothing left once standardised (only tags/punctuation)
    "undecodable",  # U+FFFD: bytes that were not UTF-8
    "text_too_long",  # over MAX_REVIEW_CHARS
    "label",  # not 0/1/negative/positive
    "rating_range",  # not a whole number 1-10
    "rating_ambiguous",  # 5 or 6: IMDB leaves these out of both classes
    "rating_label_mismatch",  # positive rated 1-4, or negative rated 7-10
    "bad_collected_at",  # not a date/time, or outside COLLECTED_RANGE
    "test_leak",  # same standardised text as a test review
    "duplicate_accepted",  # same standardised text as a review already in the store
    "duplicate_in_file",  # same standardised text as an earlier valid row of the file
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class IntakeError(RuntimeError):
    """A file that cannot be ingested at all; the message says why."""


def norm_hash(text: str) -> str | None:
    """SHA-256 of the standardised text; None when nothing is left of it."""
    normalised = standardize(text)
    if not normalised:
        return None
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def holdout_flag(hash_: str) -> bool:
    """Whether the review with this `norm_hash` is held out: the same text always is, and about
    one review in HOLDOUT_BUCKETS of every batch."""
    digest = hashlib.sha256(f"holdout/{hash_}".encode()).hexdigest()
    return int(digest[:12], 16) % HOLDOUT_BUCKETS == 0


def leakage_hashes(test_reviews: pd.DataFrame) -> frozenset[str]:
    """The `norm_hash` of every test review (rows with `split == "test"` when the frame has a
    `split` column, else every row); an intake row with one of these is refused."""
    frame = test_reviews
    if "split" in frame.columns:
        frame = frame.loc[frame["split"] == "test"]
    hashes = (norm_hash(t) for t in frame["text"] if isinstance(t, str))
    return frozenset(h for h in hashes if h is not None)


# --- reading -----------------------------------------------------------------------------------


def _decode(payload: bytes) -> str:
    # NUL is never review text and stops the csv module: count it as undecodable.
    return payload.decode("utf-8-sig", errors="replace").replace("\x00", "\ufffd")


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    # The default (131,072 characters) would fail a whole file on one long review; that review
    # must instead be refused as too long.
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(payload: bytes) -> pd.DataFrame:
    records = []
    with _csv_field_limit():
        reader = csv.reader(io.StringIO(_decode(payload), newline=""))
        try:
            header = [name.strip().lower() for name in next(reader, [])]
            for fields in reader:
                if not fields:
                    continue  # a blank line
                if len(fields) != len(header):
                    records.append({"text": ",".join(fields), "_readable": False})
                else:
                    records.append({**dict(zip(header, fields, strict=True)), "_readable": True})
        except csv.Error as error:
            raise IntakeError(f"malformed CSV at line {reader.line_num}: {error}") from error
    if not header:
        raise IntakeError("the file is empty (no CSV header)")
    return pd.DataFrame.from_records(records, columns=[*header, "_readable"])


def _clean(value: object) -> object:
    # JSON may spell lone surrogates ("\ud800"): not text, and unwritable as UTF-8.
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _read_jsonl(payload: bytes) -> pd.DataFrame:
    records = []
    for line in _decode(payload).split("\n"):
        if not (line := line.strip()):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            cleaned = {str(k).strip().lower(): _clean(v) for k, v in record.items()}
            records.append({**cleaned, "_readable": True})
        else:
            records.append({"text": _clean(line), "_readable": False})
    return pd.DataFrame.from_records(records)


def _read_parquet(payload: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(payload))
    except (OSError, ValueError, pa.ArrowException) as error:
        raise IntakeError(f"not a readable Parquet file: {error}") from error
    frame.columns = [str(name).strip().lower() for name in frame.columns]
    return frame.assign(_readable=True)


_READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
_COLUMNS_SCHEMA = pdr.DataFrameSchema({name: pdr.Column(None, nullable=True) for name in REQUIRED})


def read_rows(path: Path) -> tuple[str, pd.DataFrame]:
    """The batch id (hash of the file's bytes) and its rows, as read (object columns, index =
    row number); raises IntakeError for a file that cannot be used at all."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise IntakeError(
            f"unsupported file type {path.suffix or '(none)'!r}; use {', '.join(FORMATS)}"
        )
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise IntakeError(f"the file is over {MAX_FILE_BYTES} bytes; split it")
        payload = path.read_bytes()
    except OSError as error:
        raise IntakeError(f"cannot read {path}: {error.strerror or error}") from error
    frame = _READERS[kind](payload)
    if frame.columns.duplicated().any():
        repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise IntakeError(f"repeated column(s): {', '.join(repeated)}")
    try:
        _COLUMNS_SCHEMA.validate(frame.head(0), lazy=True)
    except SchemaErrors as error:
        missing = sorted(error.failure_cases["failure_case"].astype(str))
        found = ", ".join(c for c in frame.columns if c != "_readable") or "none"
        raise IntakeError(
            f"missing required column(s) {', '.join(missing)} (found: {found}); "
            f"a file needs {', '.join(REQUIRED)}, optionally {', '.join(OPTIONAL)}"
        ) from None
    frame = frame.astype(object)
    frame.index = range(len(frame))
    return hashlib.sha256(payload).hexdigest()[:16], frame


# --- checking ----------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _as_text(value: object) -> object:
    if _missing(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _as_label(value: object) -> object:
    if _missing(value):
        return None
    if isinstance(value, str):
        return LABELS.get(value.strip().lower(), value)
    if isinstance(value, numbers.Number) and value in (0, 1):  # 0, 1, 0.0, 1.0, False, True
        return int(value)  # type: ignore[call-overload]
    return value


def _as_rating(value: object) -> object:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
    integral = isinstance(number, numbers.Real) and not isinstance(number, bool)
    if integral and math.isfinite(number) and float(number).is_integer():  # type: ignore[arg-type]
        return int(number)  # type: ignore[call-overload]
    return value


def _as_name(value: object) -> str | None:
    if _missing(value):
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _as_time(value: object) -> object:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | datetime):
        return value
    try:
        stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        return value
    if stamp is pd.NaT:
        return value
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not COLLECTED_RANGE[0] <= stamp < COLLECTED_RANGE[1]:
        return value  # not when a review was collected: a typo, or seconds read as years
    return stamp.floor("us")  # the store keeps microseconds


def canonical_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """The rows with values normalised for checking and storing, plus `norm_hash`."""

    def column(name: str, convert: Callable[[object], object]) -> pd.Series:
        # Value by value, into an object column: Series.map would turn [9, None] into floats.
        values = raw[name] if name in raw.columns else [None] * len(raw)
        return pd.Series([convert(v) for v in values], index=raw.index, dtype=object)

    text = column("text", _as_text)
    hashes = [norm_hash(t) if isinstance(t, str) else None for t in text]
    return pd.DataFrame(
        {
            "_readable": raw["_readable"].astype(bool),
            "text": text,
            "label": column("label", _as_label),
            "rating": column("rating", _as_rating),
            "movie": column("movie", _as_name),
            "source": column("source", _as_name),
            "collected_at": column("collected_at", _as_time),
            "norm_hash": pd.Series(hashes, index=raw.index, dtype=object),
        },
        index=raw.index,
    )


def _check(name: str, predicate: Callable[[object], bool]) -> pdr.Check:
    """A check that fails the rows whose value `predicate` rejects (missing values included)."""
    return pdr.Check(lambda s: s.map(predicate).astype(bool), name=name, ignore_na=False)


def _is_rating(value: object) -> bool:
    return type(value) is int and 1 <= value <= 10


def _rating_agrees(frame: pd.DataFrame) -> pd.Series:
    def agrees(label: object, rating: object) -> bool:
        if not _is_rating(rating) or label not in (0, 1):
            return True  # no rating, or already refused for the rating or the label
        return not ((label == 1 and rating <= 4) or (label == 0 and rating >= 7))  # type: ignore[operator]

    return pd.Series(map(agrees, frame["label"], frame["rating"]), index=frame.index, dtype=bool)


def intake_schema(
    known: Collection[str], leak: Collection[str], max_chars: int = MAX_REVIEW_CHARS
) -> pdr.DataFrameSchema:
    """The row checks: `known` holds the `norm_hash` of accepted reviews, `leak` those of the
    test reviews. (Duplicates within the file are checked afterwards, among the rows that pass.)"""
    known, leak = set(known), set(leak)

    def column(*checks: pdr.Check) -> pdr.Column:
        return pdr.Column(None, nullable=True, checks=list(checks))

    return pdr.DataFrameSchema(
        {
            "_readable": column(_check("unreadable", bool)),
            "text": column(
                _check("schema", lambda t: _missing(t) or isinstance(t, str)),
                _check("undecodable", lambda t: not isinstance(t, str) or "\ufffd" not in t),
                _check("text_too_long", lambda t: not isinstance(t, str) or len(t) <= max_chars),
            ),
            "label": column(_check("label", lambda v: type(v) is int and v in (0, 1))),
            "rating": column(
                _check("rating_range", lambda v: _missing(v) or _is_rating(v)),
                _check("rating_ambiguous", lambda v: not (_is_rating(v) and v in (5, 6))),
            ),
            "collected_at": column(
                _check("bad_collected_at", lambda v: _missing(v) or isinstance(v, pd.Timestamp))
            ),
            "norm_hash": column(
                # No hash: no text, or nothing left of it once standardised (blank, tags only).
                _check("empty_text", lambda h: not _missing(h)),
                _check("test_leak", lambda h: h not in leak),
                _check("duplicate_accepted", lambda h: h not in known),
            ),
        },
        checks=[pdr.Check(_rating_agrees, name="rating_label_mismatch", ignore_na=False)],
    )


_IN_FILE_SCHEMA = pdr.DataFrameSchema(
    {
        "norm_hash": pdr.Column(
            None,
            checks=pdr.Check(lambda s: ~s.duplicated(keep="first"), name="duplicate_in_file"),
        )
    }
)


def _failures(schema: pdr.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """(index, reason) of every failed check; an unexpected failure fails the file."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as error:
        cases = error.failure_cases
        unplaced = cases.loc[cases["index"].isna()]
        if not unplaced.empty:
            raise IntakeError(
                f"the rows could not be checked: {unplaced.iloc[0].to_dict()}"
            ) from None
        reasons = cases["check"].where(cases["check"].isin(REASONS), "schema")
        return pd.DataFrame({"index": cases["index"].astype(int), "reason": reasons})
    return pd.DataFrame({"index": pd.Series(dtype=int), "reason": pd.Series(dtype=object)})


def validate_rows(
    raw: pd.DataFrame,
    *,
    known: Collection[str],
    leak: Collection[str],
    max_chars: int = MAX_REVIEW_CHARS,
) -> tuple[pd.Series, pd.DataFrame]:
    """The reason each row is refused (None: accepted) and the normalised rows."""
    rows = canonical_rows(raw)
    failures = _failures(intake_schema(known, leak, max_chars), rows)
    rank = {reason: i for i, reason in enumerate(REASONS)}
    first = failures.assign(rank=failures["reason"].map(rank)).sort_values(["index", "rank"])
    first = first.drop_duplicates("index")
    reasons = pd.Series(None, index=rows.index, dtype=object)
    reasons.loc[first["index"].tolist()] = first["reason"].tolist()
    passing = rows.loc[reasons.isna(), ["norm_hash"]]
    duplicates = _failures(_IN_FILE_SCHEMA, passing)
    reasons.loc[duplicates["index"].tolist()] = duplicates["reason"].tolist()
    return reasons, rows
