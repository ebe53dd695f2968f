"""Replace one row group of a Parquet file without re-encoding the others.

A rerun that changed one post of 100,000 had to decode and encode every row group of
``posts.parquet`` (113 MB) to change one row: Parquet cannot copy a row group through
pyarrow without decoding it. But a Parquet file is its row groups' column chunks, byte
ranges that hold no file offsets, followed by a footer (Thrift compact protocol) that says
where each chunk starts. So a row group can be swapped: the new rows are encoded alone with
the same writer settings, their chunks take the old group's byte range, the later groups'
bytes are copied as they are, and the footer is written again with the new group's
metadata and every later offset moved by the difference in size.

The result is the file a full write of the same rows gives, byte for byte, because the
writer encodes each row group on its own (its dictionaries, pages and statistics start
afresh): ``tests/test_parquet_splice.py`` checks this against pyarrow's own full writes.
Anything this module does not know how to move (page indexes, bloom filters, encryption,
a Thrift type the footer should not hold) is refused with ``SpliceRefused`` before a byte
is written, and the caller rewrites the table in full.

Pure functions on bytes: the caller reads and writes the files.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

MAGIC: Final = b"PAR1"

# Thrift compact protocol type ids.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# Field ids of parquet.thrift that carry file offsets or say where row groups are.
_FILE_ROW_GROUPS: Final = 4  # FileMetaData.row_groups
_FILE_ENCRYPTION: Final = (8, 9)  # FileMetaData.encryption_algorithm, footer_signing_key_metadata
_GROUP_COLUMNS, _GROUP_NUM_ROWS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 3, 5, 7  # RowGroup
_CHUNK_FILE_PATH, _CHUNK_FILE_OFFSET, _CHUNK_META = 1, 2, 3  # ColumnChunk
_CHUNK_REFUSED: Final = (4, 5, 6, 7, 8, 9)  # page indexes and encryption of a ColumnChunk
_META_SIZE: Final = 7  # ColumnMetaData.total_compressed_size
_META_OFFSETS: Final = (9, 10, 11)  # data_page_offset, index_page_offset, dictionary_page_offset
_META_REFUSED: Final = (14, 15)  # bloom_filter_offset, bloom_filter_length


class SpliceRefused(Exception):
    """The file holds something this module cannot move; rewrite the table instead."""


@dataclass(frozen=True)
class Group:
    """A row group as the footer describes it: where its entry lies in the footer, the byte
    range of its column chunks in the file, and its number of rows."""

    entry: tuple[int, int]
    span: tuple[int, int]
    rows: int
    sites: list[tuple[int, int]]  # where its file offsets are written in the footer, in order


@dataclass(frozen=True)
class Footer:
    """A Parquet file's footer: where it starts, its bytes, and its row groups' entries."""

    start: int
    data: memoryview
    groups: list[Group]
    groups_at: tuple[int, int]  # the row group list's elements, from the first to the end


def read_footer(data: bytes | memoryview) -> Footer:
    """The footer of a whole Parquet file's bytes (``SpliceRefused`` if it is not one, or
    holds what a splice cannot move).

    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> sink = io.BytesIO(); pq.write_table(pa.table({"n": [1, 2, 3]}), sink)
    >>> [group.rows for group in read_footer(sink.getvalue()).groups]
    [3]
    """
    view = memoryview(data)
    if len(view) < 12 or bytes(view[:4]) != MAGIC or bytes(view[-4:]) != MAGIC:
        raise SpliceRefused("not a Parquet file (no PAR1 at both ends)")
    length = struct.unpack("<I", view[-8:-4])[0]
    start = len(view) - 8 - length
    if start < 4:
        raise SpliceRefused("the footer's length runs past the file's start")
    try:
        groups, groups_at = _read_file_meta(view, start)
    except IndexError:
        raise SpliceRefused("the footer ends inside a value") from None
    return Footer(start, view, groups, groups_at)


def splice_group(old: bytes | memoryview, number: int, alone: bytes | memoryview) -> list[bytes | memoryview]:
    """The parts of ``old`` with row group ``number`` replaced by the only row group of
    ``alone``, a file the same writer wrote with just that group's new rows; joined, they are
    the new file. The new group must have as many rows as the old one.

    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> def parquet(*groups):
    ...     sink = io.BytesIO()
    ...     with pq.ParquetWriter(sink, pa.schema([("s", pa.string())])) as writer:
    ...         for rows in groups:
    ...             writer.write_table(pa.table({"s": rows}))
    ...     return sink.getvalue()
    >>> new = b"".join(splice_group(parquet(["a"], ["b"], ["c"]), 1, parquet(["a much longer row"])))
    >>> new == parquet(["a"], ["a much longer row"], ["c"])
    True
    """
    footer, single = read_footer(old), read_footer(alone)
    groups = footer.groups
    if len(single.groups) != 1 or not 0 <= number < len(groups):
        raise SpliceRefused(f"not one row group to put in place of row group {number}")
    fresh = single.groups[0]
    if fresh.rows != groups[number].rows:
        raise SpliceRefused("the new row group has another number of rows")
    if groups[0].span[0] != 4 or groups[-1].span[1] != footer.start or any(a.span[1] != b.span[0] for a, b in pairwise(groups)):
        raise SpliceRefused("the file has bytes between its row groups or before its footer")
    view, alone_view = footer.data, single.data
    (old_start, old_end), (fresh_start, fresh_end) = groups[number].span, fresh.span
    shift = (fresh_end - fresh_start) - (old_end - old_start)
    entries = [
        view[footer.groups_at[0] : groups[number].entry[0]],
        _moved(alone_view, fresh, old_start - fresh_start),
        *(_moved(view, group, shift) for group in groups[number + 1 :]),
    ]
    meta = b"".join([view[footer.start : footer.groups_at[0]], *entries, view[footer.groups_at[1] : len(view) - 8]])
    return [view[:old_start], alone_view[fresh_start:fresh_end], view[old_end : footer.start], meta, struct.pack("<I", len(meta)), MAGIC]


def _read_file_meta(view: memoryview, pos: int) -> tuple[list[Group], tuple[int, int]]:
    """The row groups of the FileMetaData at ``pos``, which must end where the footer does,
    and where their list's elements lie."""
    groups: list[Group] = []
    groups_at = None
    last = 0
    while (header := view[pos]) != 0:
        delta, kind = header >> 4, header & 0x0F
        pos += 1
        if delta:
            fid = last + delta
        else:
            raw, pos = _read_varint(view, pos)
            fid = _unzigzag(raw)
        if fid in _FILE_ENCRYPTION:
            raise SpliceRefused("the file is encrypted")
        if fid == _FILE_ROW_GROUPS and kind == _LIST:
            element, size, pos = _list_header(view, pos)
            if element != _STRUCT:
                raise SpliceRefused("the row groups are not a list of structs")
            first = pos
            for _ in range(size):
                groups.append(_read_group(view, pos))
                pos = groups[-1].entry[1]
            groups_at = (first, pos)
        else:
            pos = _skip(view, pos, kind)
        last = fid
    if groups_at is None:
        raise SpliceRefused("the footer has no row groups")
    if pos + 1 != len(view) - 8:
        raise SpliceRefused("the footer is not one FileMetaData")
    return groups, groups_at


def _read_group(view: memoryview, pos: int) -> Group:
    """A RowGroup entry at ``pos``: the byte range of its column chunks, and where each file
    offset in it is written (its own, its chunks', their metadata's), walked once."""
    sites: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []

    def meta(at: int) -> int:
        fields, end = _fields(view, at)
        offsets, size = [], None
        for fid, kind, start, stop in fields:
            if fid in _META_REFUSED:
                raise SpliceRefused("a column chunk has a bloom filter")
            if fid in _META_OFFSETS:
                sites.append((start, stop))
                if fid != 10:  # data_page_offset, dictionary_page_offset: the chunk starts at the first
                    offsets.append(_read_int(view, start, kind))
            elif fid == _META_SIZE:
                size = _read_int(view, start, kind)
        if not offsets or size is None:
            raise SpliceRefused("a column chunk without its offset or size")
        spans.append((min(offsets), min(offsets) + size))
        return end

    def columns(at: int) -> int:
        element, size, at = _list_header(view, at)
        if element != _STRUCT:
            raise SpliceRefused("a row group's columns are not a list of structs")
        for _ in range(size):
            fields, at = _fields(view, at, {_CHUNK_META: meta})
            for fid, kind, start, stop in fields:
                if fid in _CHUNK_REFUSED or fid == _CHUNK_FILE_PATH:
                    raise SpliceRefused("a column chunk has a page index, encryption or lives in another file")
                if fid == _CHUNK_FILE_OFFSET and _read_int(view, start, kind):  # 0: the deprecated field left unset
                    sites.append((start, stop))
        return at

    fields, end = _fields(view, pos, {_GROUP_COLUMNS: columns})
    rows = None
    for fid, kind, start, stop in fields:
        if fid == _GROUP_NUM_ROWS:
            rows = _read_int(view, start, kind)
        elif fid == _GROUP_FILE_OFFSET:
            sites.append((start, stop))
        elif fid == _GROUP_ORDINAL:  # a group's place in its file: the lone group's would be 0
            raise SpliceRefused("the row groups carry their ordinal")
    if rows is None or not spans:
        raise SpliceRefused("a row group without rows or columns")
    if any(a[1] != b[0] for a, b in pairwise(spans)):
        raise SpliceRefused("a row group's column chunks are not contiguous")
    return Group((pos, end), (spans[0][0], spans[-1][1]), rows, sorted(sites))


def _moved(view: memoryview, group: Group, shift: int) -> bytes | memoryview:
    """A RowGroup entry's bytes with every file offset in it moved by ``shift``; the rest,
    field headers included, copied as it was (no field comes or goes, so the headers' id
    deltas hold)."""
    if not shift:
        return view[group.entry[0] : group.entry[1]]
    out = bytearray()
    copied = group.entry[0]
    for start, stop in group.sites:
        out += view[copied:start]
        out += _varint(_zigzag(_unzigzag(_read_varint(view, start)[0]) + shift))
        copied = stop
    out += view[copied : group.entry[1]]
    return bytes(out)


# Thrift compact protocol, the subset a Parquet footer uses. Values are not decoded, only
# walked: a field is (id, type, start of its value, end of its value) in the footer's bytes.
Field = tuple[int, int, int, int]
_NONE: Final[Mapping[int, Callable[[int], int]]] = {}


def _fields(view: memoryview, pos: int, opened: Mapping[int, Callable[[int], int]] = _NONE) -> tuple[list[Field], int]:
    """The fields of the struct at ``pos``, and where it ends (after its stop byte); a field
    named in ``opened`` is walked by its function there (it returns where the value ends)."""
    # The common types are skipped inline: a footer of 100,000 posts has 240,000 fields.
    fields: list[Field] = []
    last = 0
    while True:
        header = view[pos]
        pos += 1
        if header == 0:
            return fields, pos
        kind = header & 0x0F
        if header >> 4:
            fid = last + (header >> 4)
        else:
            raw, pos = _read_varint(view, pos)
            fid = _unzigzag(raw)
        start = pos
        if fid in opened:
            pos = opened[fid](pos)
        elif _I16 <= kind <= _I64:
            while view[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == _BINARY and view[pos] < 0x80:
            pos += view[pos] + 1
        elif kind > _FALSE:
            pos = _skip(view, pos, kind)
        fields.append((fid, kind, start, pos))
        last = fid


def _skip(view: memoryview, pos: int, kind: int) -> int:
    """Where the value of type ``kind`` at ``pos`` ends."""
    if kind in (_TRUE, _FALSE):
        return pos  # a struct field's bool is in its header
    if kind == _BYTE:
        return pos + 1
    if kind in (_I16, _I32, _I64):
        while view[pos] & 0x80:
            pos += 1
        return pos + 1
    if kind == _DOUBLE:
        return pos + 8
    if kind == _BINARY:
        size, pos = _read_varint(view, pos)
        return pos + size
    if kind in (_LIST, _SET):
        element, size, pos = _list_header(view, pos)
        element = _BYTE if element in (_TRUE, _FALSE) else element  # a list's bools are bytes
        for _ in range(size):
            pos = _skip(view, pos, element)
        return pos
    if kind == _STRUCT:
        return _fields(view, pos)[1]
    raise SpliceRefused(f"Thrift type {kind} in the footer")


def _list_header(view: memoryview, pos: int) -> tuple[int, int, int]:
    """A list's element type, its size, and where its first element starts."""
    header = view[pos]
    size, element = header >> 4, header & 0x0F
    if size == 15:
        return element, *_read_varint(view, pos + 1)
    return element, size, pos + 1


def _read_int(view: memoryview, pos: int, kind: int) -> int:
    if kind not in (_I16, _I32, _I64):
        raise SpliceRefused(f"an integer was expected, not Thrift type {kind}")
    return _unzigzag(_read_varint(view, pos)[0])


def _read_varint(view: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)
