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

gunicorn internals used here (pinned: gunicorn==27.0.1; tests/test_worker.py fails if they
change): `RequestParser.mesg_class` (the request class each parser builds), and
`Request.read_into` and `Request.max_buffer_headers`, which its parser of the head uses.
"""

from __future__ import annotations

import re
from typing import Any

import gevent
from gunicorn.http.errors import LimitRequestHeaders, NoMoreData
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser

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

    def parse(self, unreader: Any) -> Any:
        """Bound the header block (and a chunked body's trailers) by HEADER_BLOCK_LIMIT."""
        self.max_buffer_headers = HEADER_BLOCK_LIMIT
        return super().parse(unreader)

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


def install() -> None:
    """Make gunicorn's request parsers build LinearHeadRequest (the worker calls it once)."""
    RequestParser.mesg_class = LinearHeadRequest
