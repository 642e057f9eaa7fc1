"""Join Parquet files with the same schema into one file without decoding them.

A Parquet file is `PAR1`, the row groups' pages, then a footer (Thrift compact protocol)
that says where each column chunk starts. Joining copies each part's pages byte for byte
and writes one footer listing every part's row groups, their offsets moved by where the
part's pages now start. The optional page indexes (and bloom filters) are left out: they
sit after the pages and hold offsets of their own. So a screening's decisions are encoded
once, when their chunk is written, and the combined file costs a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["join_parquet"]

_MAGIC = b"PAR1"
# compact protocol types
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
# field ids (parquet.thrift)
_SCHEMA, _NUM_ROWS, _ROW_GROUPS, _KEY_VALUES = 2, 3, 4, 5  # FileMetaData
_COLUMNS, _RG_FILE_OFFSET, _ORDINAL = 1, 5, 7  # RowGroup
_CC_FILE_OFFSET, _META = 2, 3  # ColumnChunk
_PAGE_INDEX = (4, 5, 6, 7)  # ColumnChunk: offset and column index, offset and length
_PAGE_OFFSETS = (9, 10, 11)  # ColumnMetaData: data, index and dictionary page offsets
_BLOOM = (14, 15)  # ColumnMetaData: bloom filter offset and length

Struct = dict[int, tuple[int, Any]]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def value(self, t: int) -> Any:
        if t in (_TRUE, _FALSE):
            return t == _TRUE
        if t == _BYTE:
            self.pos += 1
            return self.data[self.pos - 1]
        if t in (_I16, _I32, _I64):
            return self.zigzag()
        if t == _DOUBLE:
            self.pos += 8
            return self.data[self.pos - 8 : self.pos]
        if t == _BINARY:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if t in (_LIST, _SET):
            head = self.data[self.pos]
            self.pos += 1
            n, et = head >> 4, head & 0x0F
            if n == 15:
                n = self.varint()
            items = [self.data[self.pos + i] == 1 for i in range(n)] if et in (_TRUE, _FALSE) else None
            if items is not None:
                self.pos += n
                return et, items
            return et, [self.value(et) for _ in range(n)]
        if t == _STRUCT:
            return self.struct()
        raise ValueError(f"unsupported Thrift type {t} in a Parquet footer")

    def struct(self) -> Struct:
        fields: Struct = {}
        last = 0
        while True:
            head = self.data[self.pos]
            self.pos += 1
            if head == 0:
                return fields
            delta, t = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            fields[fid] = (t, self.value(t))
            last = fid


def _varint(out: bytearray, v: int) -> None:
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _write(out: bytearray, t: int, v: Any) -> None:
    if t in (_I16, _I32, _I64):
        _varint(out, (v << 1) ^ (v >> 63))
    elif t == _BYTE:
        out.append(v)
    elif t in (_DOUBLE,):
        out += v
    elif t == _BINARY:
        _varint(out, len(v))
        out += v
    elif t in (_LIST, _SET):
        et, items = v
        if len(items) < 15:
            out.append(len(items) << 4 | et)
        else:
            out.append(0xF0 | et)
            _varint(out, len(items))
        for item in items:
            if et in (_TRUE, _FALSE):
                out.append(1 if item else 2)
            else:
                _write(out, et, item)
    elif t == _STRUCT:
        _struct(out, v)


def _struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for fid in sorted(fields):
        t, v = fields[fid]
        if t in (_TRUE, _FALSE):
            t = _TRUE if v else _FALSE
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | t)
        else:
            out.append(t)
            _varint(out, (fid << 1) ^ (fid >> 63))
        if t not in (_TRUE, _FALSE):
            _write(out, t, v)
        last = fid
    out.append(0)


def _footer(path: Path) -> tuple[Struct, int]:
    """The file's footer and where its pages end (where a page index or the footer starts)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(size - 8)
        tail = f.read(8)
        if tail[4:] != _MAGIC:
            raise ValueError(f"{path} is not a Parquet file")
        n = int.from_bytes(tail[:4], "little")
        f.seek(size - 8 - n)
        meta = _Reader(f.read(n)).struct()
    end = size - 8 - n
    for rg in meta[_ROW_GROUPS][1][1]:
        for cc in rg[_COLUMNS][1][1]:
            for fid in (4, 6):
                if fid in cc:
                    end = min(end, cc[fid][1])
            bloom = cc[_META][1].get(_BLOOM[0])
            if bloom is not None:
                end = min(end, bloom[1])
    return meta, end


def _shifted(rg: Struct, by: int, ordinal: int) -> Struct:
    out = dict(rg)
    if _RG_FILE_OFFSET in out:
        out[_RG_FILE_OFFSET] = (_I64, out[_RG_FILE_OFFSET][1] + by)
    if _ORDINAL in out:
        out[_ORDINAL] = (_I16, ordinal)
    columns = []
    for cc in rg[_COLUMNS][1][1]:
        chunk = {fid: v for fid, v in cc.items() if fid not in _PAGE_INDEX}
        chunk[_CC_FILE_OFFSET] = (_I64, cc[_CC_FILE_OFFSET][1] + by)
        meta = {fid: v for fid, v in cc[_META][1].items() if fid not in _BLOOM}
        for fid in _PAGE_OFFSETS:
            if fid in meta:
                meta[fid] = (_I64, meta[fid][1] + by)
        chunk[_META] = (_STRUCT, meta)
        columns.append(chunk)
    out[_COLUMNS] = (_LIST, (_STRUCT, columns))
    return out


def join_parquet(parts: list[Path], target: Path) -> None:
    """Write ``target`` holding the row groups of ``parts`` in order; ValueError if the
    parts' schemas differ (nothing is written then)."""
    if len(parts) == 1:
        shutil.copyfile(parts[0], target)
        return
    footers = [_footer(p) for p in parts]
    meta = dict(footers[0][0])
    if any(m.get(f) != meta.get(f) for m, _ in footers for f in (_SCHEMA, _KEY_VALUES)):
        raise ValueError("the parts differ in their schema")
    row_groups: list[Struct] = []
    with target.open("wb") as out:
        out.write(_MAGIC)
        for part, (m, end) in zip(parts, footers, strict=True):
            by = out.tell() - len(_MAGIC)
            row_groups += [_shifted(rg, by, len(row_groups) + i) for i, rg in enumerate(m[_ROW_GROUPS][1][1])]
            with part.open("rb") as src:
                src.seek(len(_MAGIC))
                _copy(src, out, end - len(_MAGIC))
        meta[_NUM_ROWS] = (_I64, sum(m[_NUM_ROWS][1] for m, _ in footers))
        meta[_ROW_GROUPS] = (_LIST, (_STRUCT, row_groups))
        footer = bytearray()
        _struct(footer, meta)
        out.write(footer)
        out.write(len(footer).to_bytes(4, "little"))
        out.write(_MAGIC)


def _copy(src: Any, out: Any, n: int) -> None:
    while n > 0:
        block = src.read(min(n, 1 << 24))
        if not block:
            raise OSError("short read while joining Parquet parts")
        out.write(block)
        n -= len(block)
