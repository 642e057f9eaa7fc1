"""Text made once per distinct value: reasons and findings from bit words, money from fen.

Distinct values are numbered by Arrow's hash-based dictionary encoding (one linear pass,
where ``np.unique`` sorts); the text of each distinct value is made once and gathered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

__all__ = ["dense_codes", "fen_texts", "joined_texts", "pack", "pack_bits"]

Array = np.ndarray[Any, Any]
_MAX_TEXTS = 200_000  # above this many distinct amounts, format every row in Polars instead


def pack_bits(flags: list[Array], n: int) -> Array:
    """Up to 64 boolean flags -> one word per row, flag i as bit i, in the narrowest unsigned
    type that holds them (less memory to shift, OR and reduce)."""
    k = len(flags)
    dtype = np.uint8 if k <= 8 else np.uint16 if k <= 16 else np.uint32 if k <= 32 else np.uint64
    word: Array = np.zeros(n, dtype=dtype)
    for i, f in enumerate(flags):
        np.bitwise_or(word, np.left_shift(np.broadcast_to(f, (n,)).view(np.uint8), i, dtype=dtype), out=word)
    return word


def pack(flags: list[Array], n: int) -> Array:
    """Boolean flags -> rows of words (flag i is bit i % 64 of word i // 64)."""
    if len(flags) <= 64:
        return pack_bits(flags, n).reshape(n, 1) if flags else np.zeros((n, 0), dtype=np.uint64)
    return np.stack([pack_bits(flags[w : w + 64], n) for w in range(0, len(flags), 64)], axis=1)


def _encode(column: Array) -> tuple[Array, Array]:
    d = pc.dictionary_encode(pa.array(np.ascontiguousarray(column)))
    return d.indices.to_numpy().astype(np.int64), d.dictionary.to_numpy()


def dense_codes(values: Array, limit: int | None = None) -> tuple[Array, Array] | None:
    """(code per row, the distinct rows in code order) of ``values`` (1-d, or 2-d rows of
    words); None when there are more than ``limit`` distinct rows."""
    n = len(values)
    if values.ndim == 1:
        code, distinct = _encode(values)
        return None if limit is not None and len(distinct) > limit else (code, distinct)
    if values.shape[1] == 0:
        return np.zeros(n, dtype=np.int64), values[:1]
    code, distinct = _encode(values[:, 0])
    for w in range(1, values.shape[1]):
        part, seen = _encode(values[:, w])
        code, _ = _encode(code * len(seen) + part)
    size = int(code.max()) + 1 if n else 0
    if limit is not None and size > limit:
        return None
    first = np.empty(size, dtype=np.int64)
    first[code[::-1]] = np.arange(n - 1, -1, -1)
    return code, values[first]


def joined_texts(words: Array, ids: list[str], name: str) -> pl.Series:
    """The ids whose bit is set, joined with `;`, made once per distinct word row."""
    n = len(words)
    if n == 0 or not ids:
        return pl.Series(name, [""] * n, dtype=pl.Utf8)
    found = dense_codes(words[:, 0] if words.shape[1] == 1 else words)
    assert found is not None
    code, distinct = found
    rows = distinct.reshape(len(distinct), -1)
    # every set bit of every distinct row at once (row-major: each row's ids lowest bit first)
    bits = np.unpackbits(rows.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, : len(ids)]
    row, col = np.nonzero(bits)
    names = pl.DataFrame({"r": row, "id": pl.Series(ids, dtype=pl.Utf8).gather(pl.Series(col))})
    joined = names.group_by("r", maintain_order=True).agg(pl.col("id").str.join(";"))
    texts = pl.Series(name, [""] * len(rows), dtype=pl.Utf8).scatter(joined.get_column("r"), joined.get_column("id"))
    return texts.gather(pl.Series(code))


def fen_texts(fen: Array, name: str) -> pl.Series:
    """int64 fen -> "1234.50", made once per distinct amount."""
    found = dense_codes(fen, _MAX_TEXTS) if len(fen) else None
    if found is None:
        e = pl.col(name)
        text = pl.concat_str([(e // 100).cast(pl.Utf8), pl.lit("."), (e % 100).cast(pl.Utf8).str.zfill(2)])
        return pl.DataFrame({name: fen}).select(text).to_series().alias(name)
    code, distinct = found
    texts = [f"{x // 100}.{x % 100:02d}" for x in distinct.tolist()]
    return pl.Series(name, texts, dtype=pl.Utf8).gather(pl.Series(code))
