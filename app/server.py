"""uvicorn HTTP protocol that always sets TCP_NODELAY, for `uvicorn --workers N`.

With several workers uvicorn binds the listening socket itself with protocol number 0, and asyncio
then skips TCP_NODELAY on accepted connections (it only sets it for IPPROTO_TCP sockets). A
keep-alive client then waits ~40 ms per request (Nagle's algorithm against delayed ACKs): measured
48 ms instead of 5 ms per quote. Start several workers with:

    uvicorn app.api:app --workers 2 --http app.server:NoDelayH11Protocol
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
