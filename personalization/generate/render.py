"""Vectorised text rendering: JSON lines are assembled by Arrow string kernels from pieces.

A landing line is a concatenation of pieces. Low-cardinality pieces (event type + SKU + URL,
country + city + device + user agent, ...) are rendered once per distinct combination and
then `take`n per row; high-cardinality ones (ids, timestamps, amounts) come from numpy
number formatting or from JSON-quoted dictionaries built once. No Python code runs per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = "null"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34])
_HMS = None  # "HH:MM:SS" for every second of a day, built on first use


def mix64(*parts: np.ndarray | int) -> np.ndarray:
    """A well-mixed 64-bit hash of integer arrays (splitmix64 finaliser, chained)."""
    h = np.zeros(1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            h = h ^ np.asarray(part).astype(np.uint64)
            h = (h + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return h


def uuid_text(seed: int, purpose: int, a: np.ndarray, b: np.ndarray | int = 0) -> pa.StringArray:
    """Deterministic UUID-formatted strings, one per element of `a` (and `b`)."""
    a = np.asarray(a, dtype=np.int64)
    raw = np.stack([mix64(seed, purpose, a, b, 1), mix64(seed, purpose, a, b, 2)], axis=1)
    raw = raw.view(np.uint8).reshape(len(a), 16)
    text = np.full((len(a), 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_POS] = _HEX[raw >> 4]
    text[:, _UUID_POS + 1] = _HEX[raw & 15]
    return fixed_width_strings(text)


def fixed_width_strings(matrix: np.ndarray) -> pa.StringArray:
    """An (n, width) uint8 matrix of ASCII as an Arrow string array (no copy per row)."""
    n, width = matrix.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix)))


def json_quote(values: pa.Array, escape: bool = True) -> pa.Array:
    """JSON string literals (quoted; escaped unless known to be plain, e.g. hex ids); nulls stay null."""
    if escape:
        values = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', values, '"', "")


def with_null(quoted: pa.Array) -> pa.Array:
    """`quoted` plus a final `null` entry (index -1 picks it) and nulls as `null` text."""
    return pa.concat_arrays([pc.fill_null(quoted, NULL), pa.array([NULL], pa.string())])


def lookup(dictionary: pa.Array, idx: np.ndarray) -> pa.Array:
    """dictionary[idx], where -1 picks the last entry (see `with_null`)."""
    idx = np.asarray(idx, dtype=np.int64)
    return dictionary.take(pa.array(np.where(idx < 0, len(dictionary) - 1, idx)))


def by_combination(columns: Sequence[np.ndarray], render: Callable[..., str],
                   cache: dict[tuple, str] | None = None) -> pa.Array:
    """Render each distinct combination of the (small-integer) columns once, then take per row.

    Args:
        columns: equal-length integer arrays, each with values >= -1.
        render: called with one Python int per column for each distinct combination.
        cache: texts of combinations rendered before (filled as a side effect).
    """
    cache = {} if cache is None else cache
    shifted = [np.asarray(c, dtype=np.int64) + 1 for c in columns]
    key = np.zeros(len(shifted[0]), dtype=np.int64)
    radices = [int(c.max()) + 1 if len(c) else 1 for c in shifted]
    for c, r in zip(shifted, radices, strict=True):
        key = key * r + c
    encoded = pa.array(key).dictionary_encode()  # hashing: no sort
    uniq, inverse = encoded.dictionary.to_numpy(), encoded.indices
    parts, rest = [], uniq
    for r in reversed(radices):
        parts.append(rest % r - 1)
        rest = rest // r
    combos = zip(*(p.tolist() for p in reversed(parts)), strict=True)
    texts = []
    for combo in combos:
        text = cache.get(combo)
        if text is None:
            text = cache[combo] = render(*combo)
        texts.append(text)
    texts = pa.array(texts, pa.string())
    return texts.take(inverse)


def iso_pieces(seconds: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(`YYYY-MM-DD`, `HH:MM:SS`) pieces of UTC epoch seconds."""
    global _HMS
    if _HMS is None:
        s = np.arange(86400)
        h, m, sec = s // 3600, s // 60 % 60, s % 60
        digits = np.stack([h // 10, h % 10, m // 10, m % 10, sec // 10, sec % 10], axis=1) + ord("0")
        text = np.full((86400, 8), ord(":"), dtype=np.uint8)
        text[:, [0, 1, 3, 4, 6, 7]] = digits
        _HMS = fixed_width_strings(text)
    seconds = np.asarray(seconds, dtype=np.int64)
    day = seconds // 86400
    lo = int(day.min()) if len(day) else 0
    span = int(day.max()) - lo + 1 if len(day) else 1
    dates = pa.array(np.datetime_as_string(np.arange(lo, lo + span).astype("datetime64[D]")).astype(object),
                     pa.string())
    return dates.take(pa.array(day - lo)), _HMS.take(pa.array(seconds - day * 86400))


def number_text(values: np.ndarray) -> pa.Array:
    """Integers as decimal text."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def money_text(values: np.ndarray) -> pa.Array:
    """Amounts with exactly two decimals (`12.50`, `-3.99`)."""
    cents = np.round(np.asarray(values, dtype=np.float64) * 100).astype(np.int64)
    sign = pa.array(np.where(cents < 0, "-", "").astype(object), pa.string())
    whole = number_text(np.abs(cents) // 100)
    frac = pc.utf8_lpad(number_text(np.abs(cents) % 100), 2, "0")
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def concat(*pieces: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*pieces, "")


def json_text(value: str | None) -> str:
    """One JSON value for a Python string or None (used per distinct combination only)."""
    return json.dumps(value, ensure_ascii=False)
