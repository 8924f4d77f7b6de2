"""Read a request's header block in time linear in its size, up to HEADER_BLOCK_LIMIT bytes.

gunicorn's Python parser copies and rescans its whole buffer after every socket read while it
waits for the end of the headers (`bytes(buf)`, `find`, two `count`s), so a header block that
arrives in n reads costs n times its size: 80 ms of CPU for the 810 kB block its default
limits allow, and more when it is trickled. Here each read scans only the bytes it added, and
the parser gets the block whole, in one pass.

The block (request line and headers) is bounded by HEADER_BLOCK_LIMIT in total and any one
field may fill it: an over-long token then reaches the app, which answers 401 INVALID_TOKEN.
A block over the limit is 431, or 401 INVALID_TOKEN with its challenge when what overflowed
it is the Authorization header.

A chunked body is refused with 413 as soon as its chunk sizes declare more than
MAX_CONTENT_LENGTH in all (BoundedChunks), rather than after waiting for bytes the service
would refuse anyway; a size line with more hex digits than the limit has is refused as soon
as they arrive, without reading or converting the rest of it.

gunicorn internals used here (pinned: gunicorn==27.0.1; tests/test_worker.py fails if they
change): `RequestParser.mesg_class` (the request class each parser builds), and
`Request.read_into` and `Request.max_buffer_headers`, which its parser of the head uses;
`Request.set_body_reader`, `Body(reader)`, and `ChunkedReader.parse_chunk_size` and
`read_into`, which read a chunk's size line.
"""

from __future__ import annotations

import re
from typing import Any

import gevent
from gunicorn.http.body import Body, ChunkedReader
from gunicorn.http.errors import LimitRequestHeaders, NoMoreData
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from werkzeug.exceptions import RequestEntityTooLarge

# The head (request line, headers and the blank line after them) in bytes; a load balancer's
# own limit is of this size (an AWS Application Load Balancer takes 64 KB of headers). Set as
# gunicorn's field size limit too.
HEADER_BLOCK_LIMIT = 65536
_END = b"\r\n\r\n"
_AUTHORIZATION = re.compile(rb"\r\nauthorization[ \t]*:", re.IGNORECASE)


class TokenTooLarge(LimitRequestHeaders):  # type: ignore[misc]
    """The Authorization header overflowed the header block: refused as an invalid token."""


class LinearHeadRequest(Request):  # type: ignore[misc]
    """gunicorn's request, whose header block is read with one scan of each byte."""

    body: Any  # gunicorn's Body, set by set_body_reader

    def parse(self, unreader: Any) -> Any:
        """Bound the header block (and a chunked body's trailers) by HEADER_BLOCK_LIMIT."""
        self.max_buffer_headers = HEADER_BLOCK_LIMIT
        return super().parse(unreader)

    def set_body_reader(self) -> None:
        """Read a chunked body through BoundedChunks."""
        super().set_body_reader()
        if isinstance(self.body.reader, ChunkedReader):
            self.body = Body(BoundedChunks(self, self.unreader))

    def read_into(self, unreader: Any, buf: bytearray, stop: bool = False) -> None:
        """Read until the block ends, a bare LF shows (gunicorn refuses it), or the limit."""
        scanned = max(0, len(buf) - len(_END) + 1)
        super().read_into(unreader, buf, stop)
        while True:
            end = buf.find(_END, scanned)
            if end >= 0 or _bare_lf(buf, max(0, scanned - 1)):
                if end + len(_END) > HEADER_BLOCK_LIMIT:
                    raise _overflow(buf)
                return
            if len(buf) > HEADER_BLOCK_LIMIT:
                raise _overflow(buf)
            scanned = max(0, len(buf) - len(_END) + 1)
            # A long block is read in many pieces, all in the socket already: let the other
            # connections take a turn between two, as between two requests (worker.take_turns).
            gevent.sleep(0)
            try:
                super().read_into(unreader, buf)
            except NoMoreData:
                return  # the parser's own next read reports the end of the stream


def _bare_lf(buf: bytearray, start: int) -> bool:
    """Tell whether an LF at or after `start` has no CR before it.

    Two counts at C speed: a look-behind regular expression took 1 ms of CPU per 64 KiB.
    """
    return buf.count(b"\n", start) != buf.count(b"\r\n", max(0, start - 1))


def _overflow(buf: bytearray) -> LimitRequestHeaders:
    """Say whether the Authorization header or the block as a whole is too large."""
    found = _AUTHORIZATION.search(buf)
    if found is not None:
        end = buf.find(b"\r\n", found.end())
        if end < 0 or end - found.start() > HEADER_BLOCK_LIMIT // 2:
            return TokenTooLarge("the Authorization header is too large")
    return LimitRequestHeaders(f"header block over {HEADER_BLOCK_LIMIT} bytes")


class ChunksTooLarge(RequestEntityTooLarge):
    """A chunked body whose chunk sizes declare more than MAX_CONTENT_LENGTH: 413 at once."""


class BoundedChunks(ChunkedReader):  # type: ignore[misc]
    """gunicorn's chunked body reader, refusing sizes that declare more than `limit` in all."""

    limit: int | None = None  # MAX_CONTENT_LENGTH, set by bound_chunks

    def __init__(self, req: Any, unreader: Any) -> None:
        super().__init__(req, unreader)
        self.declared = 0  # bytes the chunk sizes read so far declare
        self._sizing = False  # True while a chunk's size line is read

    def parse_chunk_size(self, unreader: Any, data: bytes | None = None) -> Any:
        """Read a chunk's size line; refuse it once the sizes declare more than the limit."""
        if data:
            self._refuse_long_size(data)
        self._sizing = True
        try:
            size, rest = super().parse_chunk_size(unreader, data)
        finally:
            self._sizing = False
        self.declared += size
        if self.limit is not None and self.declared > self.limit:
            raise ChunksTooLarge()
        return size, rest

    def read_into(self, unreader: Any, buf: bytearray) -> None:
        """Read more of a size line (or trailers); refuse a size with too many digits."""
        super().read_into(unreader, buf)
        if self._sizing:
            self._refuse_long_size(buf)

    def _refuse_long_size(self, line: bytes | bytearray) -> None:
        """Refuse a size line whose hex size, leading zeros aside, is longer than the limit's.

        Only the zeros and one digit more than the limit has are looked at.
        """
        if self.limit is None:
            return
        digits = len(f"{self.limit:x}")
        found = _LEADING_ZEROS.match(line)
        zeros = found.end() if found is not None else 0
        significant = _HEX_DIGITS.match(line, zeros, zeros + digits + 1)
        if significant is not None and significant.end() - zeros > digits:
            raise ChunksTooLarge()


_LEADING_ZEROS = re.compile(rb"0*")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]*")


def install() -> None:
    """Make gunicorn's request parsers build LinearHeadRequest (the worker calls it once)."""
    RequestParser.mesg_class = LinearHeadRequest


def bound_chunks(limit: int) -> None:
    """Refuse chunked bodies that declare more than `limit` bytes (MAX_CONTENT_LENGTH)."""
    BoundedChunks.limit = limit
