"""The one pass over a caseload's ID columns before any chunk is decided.

It reads only `household_id` (households) and `household_id` plus the person ID
(members), batch by batch, and finds: household IDs that occur more than once, members
whose household is missing, persons found in more than one household, and, when the
members table lists each household's members together and in the households' order (as
JSON Lines conversions and most exports do), the member row range of every chunk, so a
chunk's members are read as a slice. Otherwise chunks find their members by ID.

IDs are compared as pairs of 64-bit hashes with two seeds (a clash needs 128 equal bits)
so memory stays a few bytes per row; the pairs of persons and households are spilled to
bucket files when the members table is larger than a few chunks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.types import BLANKS
from engine.validation.byte_checks import canonical_text
from engine.validation.messages import say

__all__ = ["HID", "CaseloadIndex", "hid_keys", "hid_text", "index_caseload", "person_keys"]

HID = "household_id"
_SEEDS = (0x5EED_0001, 0x5EED_0002)
_REJECT = {"household_id": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8}


def hid_text(column: str = HID) -> pl.Expr:
    """The household ID as validation reads it: trimmed, blank = null."""
    text = pl.col(column).cast(pl.Utf8).str.strip_chars(BLANKS)
    return pl.when(text != "").then(text)


def hid_keys(frame: pl.DataFrame, column: str = HID) -> pl.DataFrame:
    """``frame`` with its household ID column (as validation reads it: trimmed, blank =
    null) replaced by two hashes (`a`, `b`); nulls stay null. Only cells that may hold
    blanks are trimmed (``canonical_text``): the IDs are hashed a few million times a run."""
    text = canonical_text(frame.get_column(column).cast(pl.Utf8))
    keys = [text.hash(seed).alias(name) for name, seed in zip("ab", _SEEDS, strict=True)]
    if text.null_count():
        keys = [pl.select(pl.when(pl.lit(text).is_not_null()).then(pl.lit(k))).to_series().alias(k.name) for k in keys]
    at = frame.get_column_index(column)
    return frame.drop(column).insert_column(at, keys[0]).insert_column(at + 1, keys[1])


def _normal(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().str.to_uppercase()


def person_keys(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """The person IDs, trimmed and upper-cased as the validator reads them, as two hashes
    (`p`, `q`). Only IDs that may change (not 18 bytes, or a lower-case check letter) are
    normalized before hashing: that string work would otherwise cost more than the hashes."""
    text = frame.get_column(column).cast(pl.Utf8)
    keys = pl.DataFrame([text.hash(_SEEDS[0]).alias("p"), text.hash(_SEEDS[1]).alias("q")])
    odd = ((text.str.len_bytes() != 18) | text.str.ends_with("x")).fill_null(False)
    if odd.any():
        at = odd.arg_true()
        fixed = pl.select(_normal(pl.lit(text.gather(at))).alias("t")).to_series()
        keys = keys.with_columns(
            keys.get_column("p").scatter(at, fixed.hash(_SEEDS[0])),
            keys.get_column("q").scatter(at, fixed.hash(_SEEDS[1])),
        )
    if text.null_count():
        keys = keys.with_columns(pl.when(text.is_not_null()).then(pl.col(c)).alias(c) for c in ("p", "q"))
    return keys


@dataclass
class CaseloadIndex:
    """What the chunks need to know about the whole caseload (kept in the run's manifest)."""

    household_rows: int
    member_rows: int
    duplicate_ids: list[tuple[int, int]] = field(default_factory=list)
    duplicate_persons: list[str] = field(default_factory=list)
    orphan_rows: int = 0
    # member_starts[k]..member_starts[k + 1] are chunk k's member rows; None: find by ID
    member_starts: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "household_rows": self.household_rows,
            "member_rows": self.member_rows,
            "duplicate_ids": [list(k) for k in self.duplicate_ids],
            "duplicate_persons": self.duplicate_persons,
            "orphan_rows": self.orphan_rows,
            "member_starts": self.member_starts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseloadIndex:
        return cls(
            household_rows=data["household_rows"],
            member_rows=data["member_rows"],
            duplicate_ids=[(a, b) for a, b in data["duplicate_ids"]],
            duplicate_persons=list(data["duplicate_persons"]),
            orphan_rows=data["orphan_rows"],
            member_starts=data["member_starts"],
        )


def _rows(scan: pl.LazyFrame) -> int:
    return int(scan.select(pl.len()).collect().item())


def _repeated(values: pl.Series) -> pl.Series:
    """The values that occur more than once (a sort: cheaper than a hash table here)."""
    s = values.sort().to_numpy()
    return pl.Series(np.unique(s[1:][s[1:] == s[:-1]]), dtype=values.dtype)


def index_caseload(
    households: pl.LazyFrame,
    members: pl.LazyFrame,
    person: str | None,
    chunk_size: int,
    spill: Path,
    *,
    linked: bool = False,
) -> tuple[CaseloadIndex, pl.DataFrame]:
    """The caseload index, and one reject row per member without a household.

    ``linked``: members are tied to their household by its line (JSON Lines), not by its
    ID, so none is without a household and chunks find their members by line.

    Memory is a few batches of `2 × chunk_size` rows whatever the caseload's size: IDs are
    read batch by batch and what must be compared across the whole caseload is spilled to
    bucket files by hash."""
    n_h, n_m = _rows(households), _rows(members)
    batch = max(2 * chunk_size, 65_536)
    index = CaseloadIndex(n_h, n_m)
    keyed = households.select(pl.col(HID))
    ids = _Spill(spill / "households", ("a", "b"), n_h, batch)
    null_ids = 0
    for start in range(0, n_h, batch):
        frame = hid_keys(keyed.slice(start, batch).collect())
        null_ids += frame.get_column("a").null_count()
        ids.add(frame.drop_nulls())
    for frame in ids.frames():
        maybe = frame.filter(pl.col("a").is_in(_repeated(frame.get_column("a")).implode()))
        dup = maybe.filter(maybe.is_duplicated()).unique(maintain_order=True)
        index.duplicate_ids += [(int(a), int(b)) for a, b in dup.iter_rows()]
    chunks = max(1, -(-n_h // chunk_size))
    in_order = not (index.duplicate_ids or null_ids or linked)
    ranges = _Ranges(keyed, chunk_size, chunks) if in_order else None
    pairs = _Spill(spill / "persons", ("p", "q", "a", "row"), n_m, batch)
    scan = members.select(HID, *([pl.col(person).alias("pid")] if person else []))
    for start in range(0, n_m, batch):
        frame = hid_keys(scan.slice(start, batch).collect()).with_row_index("row", offset=start)
        if ranges is not None and not ranges.add(start, frame):
            ranges = None
        if person:
            keys = person_keys(frame, "pid")
            pairs.add(
                pl.concat([frame.select("a", pl.col("row").cast(pl.UInt64)), keys], how="horizontal").drop_nulls()
            )
    if ranges is not None:
        index.member_starts = ranges.starts(n_m)
    orphans = pl.DataFrame(schema=_REJECT)
    if ranges is None and not linked:
        known = households.select(hid_text().alias("~t"))
        orphans = (
            members.select(pl.col(HID).cast(pl.Utf8), hid_text().alias("~t"))
            .join(known, on="~t", how="anti", nulls_equal=False)
            .select(HID, pl.lit(HID).alias("field"), pl.lit(say("orphan")).alias("reason"))
            .collect()
        )
    index.orphan_rows = orphans.height
    if person:
        excluded = hid_keys(orphans.select(HID)).get_column("a").to_list() + [a for a, _ in index.duplicate_ids]
        rows = _shared_rows(pairs, excluded)
        if rows:
            text = _normal(pl.col(person).cast(pl.Utf8))
            found = (
                members.with_row_index("row")
                .filter(pl.col("row").is_in(pl.Series(rows).cast(pl.get_index_type()).implode()))
                .select(text.alias("id"))
                .unique()
                .collect()
            )
            index.duplicate_persons = sorted(found.get_column("id").to_list())
    return index, orphans


def _shared_rows(pairs: _Spill, excluded: list[int]) -> list[int]:
    """Member rows whose person is in more than one household."""
    rows: list[int] = []
    skip = pl.Series(excluded, dtype=pl.UInt64).implode()
    for frame in pairs.frames():
        again = _repeated(frame.get_column("p"))
        maybe = frame.filter(pl.col("p").is_in(again.implode()) & ~pl.col("a").is_in(skip))
        shared = maybe.group_by("p", "q").agg(pl.col("a").n_unique().alias("n")).filter(pl.col("n") > 1)
        rows.extend(maybe.join(shared, on=["p", "q"], how="semi").get_column("row").to_list())
    return sorted(rows)


class _Ranges:
    """Checks, batch by batch, that members come grouped in the households' order, and
    records where each chunk's members start. Household keys are read a window at a time."""

    def __init__(self, keyed: pl.LazyFrame, chunk_size: int, chunks: int) -> None:
        self.keyed = keyed
        self.chunk_size = chunk_size
        self.first = np.full(chunks + 1, -1, dtype=np.int64)
        self.next_row = 0  # the first household row not yet matched
        self.last: tuple[Any, Any] | None = None

    def add(self, start: int, frame: pl.DataFrame) -> bool:
        if frame.height == 0:
            return True
        if frame.get_column("a").null_count():
            return False
        a, b = frame.get_column("a").to_numpy(), frame.get_column("b").to_numpy()
        head = np.empty(len(a), dtype=bool)
        head[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        head[0] = self.last != (a[0], b[0])
        self.last = (a[-1], b[-1])
        at = np.flatnonzero(head)
        if len(at) == 0:
            return True
        r = self._household_rows(a[at], b[at])
        if r is None:
            return False
        self.next_row = int(r[-1]) + 1
        chunk = r // self.chunk_size
        new = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1]])
        for c, pos in zip(chunk[new], at[new], strict=True):
            if self.first[c] < 0:
                self.first[c] = start + pos
        return True

    def _household_rows(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """The household row of each run of members, in order; None if they are not in order."""
        lo = self.next_row
        same = hid_keys(self.keyed.slice(lo, len(a)).collect())
        usual = same.height == len(a) and np.array_equal(same.get_column("a").to_numpy(), a)
        if usual and np.array_equal(same.get_column("b").to_numpy(), b):
            return np.arange(lo, lo + len(a), dtype=np.int64)  # every household has members
        # a household without members may sit between two with members: look a little further
        window = hid_keys(self.keyed.slice(lo, 2 * len(a) + 1024).collect()).with_row_index("row", offset=lo)
        heads = pl.DataFrame({"a": a, "b": b})
        rows = heads.join(window, on=["a", "b"], how="left", maintain_order="left").get_column("row")
        if rows.null_count():
            return None
        r = rows.to_numpy().astype(np.int64)
        return None if np.any(np.diff(r) <= 0) else r

    def starts(self, total: int) -> list[int]:
        first = self.first.copy()
        first[-1] = total
        for c in range(len(first) - 2, -1, -1):
            if first[c] < 0:
                first[c] = first[c + 1]
        return [int(x) for x in first]


class _Spill:
    """Rows of unsigned 64-bit keys, split by the first key's hash into bucket files when
    they are more than one batch, so a comparison over the whole caseload holds one bucket."""

    def __init__(self, folder: Path, columns: tuple[str, ...], rows: int, batch: int) -> None:
        self.columns = columns
        self.bits = max(0, int(np.ceil(np.log2(max(1.0, rows / batch)))))
        self.folder = folder
        self.kept: list[pl.DataFrame] = []
        if self.bits:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)

    def add(self, frame: pl.DataFrame) -> None:
        frame = frame.select(self.columns)
        if not self.bits:
            self.kept.append(frame)
            return
        first = pl.col(self.columns[0])
        for (k,), part in (
            frame.with_columns((first % (1 << self.bits)).alias("~k")).partition_by("~k", as_dict=True).items()
        ):
            data = part.drop("~k").to_numpy().astype(np.uint64)
            with (self.folder / f"bucket-{int(k):04d}.bin").open("ab") as f:
                f.write(data.tobytes())

    def frames(self) -> Iterator[pl.DataFrame]:
        if not self.bits:
            yield pl.concat(self.kept) if self.kept else pl.DataFrame(schema=dict.fromkeys(self.columns, pl.UInt64))
            self.kept = []
            return
        for path in sorted(self.folder.glob("bucket-*.bin")):
            data = np.fromfile(path, dtype=np.uint64).reshape(-1, len(self.columns))
            yield pl.DataFrame({c: np.ascontiguousarray(data[:, i]) for i, c in enumerate(self.columns)})
            path.unlink()
