"""PostgreSQL's binary COPY format, encoded a chunk at a time with numpy (no Python object per row)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 50_000


class Vocab:
    """Strings packed into one byte array, addressed by code: numpy can gather them per row."""

    def __init__(self, strings: list[str]):
        encoded = [s.encode() for s in strings]
        self.lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)
        self.pool = np.frombuffer(b"".join(encoded) or b"\0", np.uint8)


# A column: (kind, values[, vocab]) with kind one of i2 i4 i8 bool ts text; values may be a
# numpy masked array (masked = NULL). ts values are microseconds since 2000-01-01 UTC.
_FIXED = {"i2": ">i2", "i4": ">i4", "i8": ">i8", "ts": ">i8", "bool": "u1"}
HEADER = b"PGCOPY\n\xff\r\n\0" + b"\0" * 8
TRAILER = b"\xff\xff"


def encode(columns: list[tuple], start: int, stop: int) -> bytes:
    """Rows [start, stop) as binary COPY tuples (no header)."""
    n = stop - start
    widths, datas = [], []
    for col in columns:
        kind, values = col[0], col[1][start:stop]
        null = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
        raw = np.ma.getdata(values)
        if kind == "text":
            w = col[2].lengths[raw]
        else:
            w = np.full(n, np.dtype(_FIXED[kind]).itemsize, np.int64)
        if null is not None:
            w = np.where(null, 0, w)
        widths.append(w)
        datas.append((kind, raw, null, col[2] if kind == "text" else None))
    sizes = 2 + 4 * len(columns) + np.sum(widths, axis=0)
    row_off = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.empty(int(sizes.sum()), np.uint8)
    _put(out, row_off, np.full(n, len(columns), ">i2"))
    pos = row_off + 2
    for w, (kind, raw, null, vocab) in zip(widths, datas):
        _put(out, pos, np.where(null, -1, w) if null is not None else w, ">i4")
        pos = pos + 4
        keep = slice(None) if null is None else ~null
        if kind == "text":
            _gather(out, pos[keep], raw[keep], w[keep], vocab)
        else:
            _put(out, pos[keep], raw[keep], _FIXED[kind])
        pos = pos + w
    return out.tobytes()


def _put(out: np.ndarray, offsets: np.ndarray, values: np.ndarray, dtype: str | None = None) -> None:
    data = np.ascontiguousarray(values, dtype=dtype or values.dtype)
    k = data.dtype.itemsize
    out[offsets[:, None] + np.arange(k)] = data.view(np.uint8).reshape(-1, k)


def _gather(out: np.ndarray, offsets: np.ndarray, codes: np.ndarray, widths: np.ndarray, vocab: Vocab) -> None:
    total = int(widths.sum())
    if not total:
        return
    first = np.concatenate(([0], np.cumsum(widths)[:-1]))
    step = np.arange(total) - np.repeat(first, widths)
    out[np.repeat(offsets, widths) + step] = vocab.pool[np.repeat(vocab.offsets[codes], widths) + step]


@dataclass
class Table:
    name: str
    names: list[str]
    columns: list[tuple]
    rows: int
    leaf: bool = False  # no foreign key points at it: may be copied FREEZE

    async def chunks(self) -> AsyncIterator[bytes]:
        yield HEADER
        for start in range(0, self.rows, CHUNK_ROWS):
            yield await asyncio.to_thread(encode, self.columns, start, min(self.rows, start + CHUNK_ROWS))
        yield TRAILER
