"""uvicorn's h11 protocol with Nagle's algorithm off on every connection.

With ``serve --workers N`` uvicorn's worker processes accept on a listening socket
inherited from the parent, whose protocol number reads 0; asyncio only sets TCP_NODELAY
on sockets it recognises as TCP by that number. With Nagle on, a response written as
headers then body waited for the client's delayed ACK: every request took 40 ms more
(a GET of 2 ms took 46 ms with two workers).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
