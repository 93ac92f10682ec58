"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

With ``serve --workers N`` uvicorn's worker processes accept on a listening socket
inherited from the parent, whose protocol number reads 0; asyncio only sets TCP_NODELAY
on sockets it recognises as TCP by that number. With Nagle on, a response written as
headers then body waited for the client's delayed ACK: every request took 40 ms more
(a GET of 2 ms took 46 ms with two workers).

The parser is httptools (C, llhttp) where installed, a dependency of shikong: h11, pure
Python, took 18 % of a worker's time serving cached tiles. h11 stays the fallback.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def _no_delay(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: h11 serves
    PROTOCOL = "shikong.server.http_protocol:NoDelayH11Protocol"
else:

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _no_delay(transport)
            super().connection_made(transport)

    PROTOCOL = "shikong.server.http_protocol:NoDelayHttpToolsProtocol"
