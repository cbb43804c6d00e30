"""uvicorn HTTP protocols that always set TCP_NODELAY, for `uvicorn --workers N`.

With several workers uvicorn binds the listening socket itself with protocol number 0, and asyncio
then skips TCP_NODELAY on accepted connections (it only sets it for IPPROTO_TCP sockets). A
keep-alive client then waits ~40 ms per request (Nagle's algorithm against delayed ACKs): measured
48 ms instead of 5 ms per quote. Start several workers with:

    uvicorn app.api:app --workers 2 --loop uvloop --http app.server:NoDelayHttpToolsProtocol

(httptools + uvloop measured ~8 % more quotes per second than h11 + asyncio; the h11 variant is
for environments without them.)
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _no_delay(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)
