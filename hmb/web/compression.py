"""gzip for large JSON bodies, each distinct body compressed once.

Most large bodies are cache hits: the same bytes object, served again and again. Compressing
a 4 KB feed page costs ~65 µs (more than serving it from L1), and aiohttp's own compression
sends bodies over 4 KB to a thread, a handoff that costs more than the work. So the gzip of a
body is kept beside it here, keyed by the body itself (bytes cache their hash).
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

MIN_BYTES = 1024  # bodies over this (DESIGN: "over 1 KB"); below it gzip saves too little
MAX_ENTRIES = 4096
MAX_BYTES = 32 * 1024 * 1024  # of plain bodies held as keys, per worker


class GzipMemo:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._gzipped: OrderedDict[bytes, bytes] = OrderedDict()
        self._nbytes = 0
        self.compressions = 0

    def get(self, body: bytes) -> bytes:
        """The gzip of `body`: compressed now if it is new, else as compressed before."""
        gzipped = self._gzipped.get(body)
        if gzipped is not None:
            self._gzipped.move_to_end(body)
            return gzipped
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: a gzip header
        gzipped = compressor.compress(body) + compressor.flush()
        self.compressions += 1
        self._gzipped[body] = gzipped
        self._nbytes += len(body)
        while len(self._gzipped) > self.max_entries or self._nbytes > self.max_bytes:
            old, _ = self._gzipped.popitem(last=False)
            self._nbytes -= len(old)
        return gzipped
