"""The API's server command line, written once (`make api`, the end-to-end tests and the
benchmarks all start it from `command`), and the uvicorn HTTP protocol it names.

With several workers uvicorn binds the listening socket itself with protocol number 0, and asyncio
then skips TCP_NODELAY on accepted connections (it only sets it for IPPROTO_TCP sockets). A
keep-alive client then waits ~40 ms per request (Nagle's algorithm against delayed ACKs): measured
48 ms instead of 5 ms per quote; `NoDelayHttpToolsProtocol` sets it. (httptools + uvloop measured
~8 % more quotes per second than h11 + asyncio.) Run `python -m app.server --port 8000 --workers 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from diamond_model.settings import get_settings


def _no_delay(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)


def command(
    app: str = "app.api:app",
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 2,
    log_level: str = "info",
    trusted_proxies: str = "",
) -> list[str]:
    """The uvicorn command line that serves `app`. `X-Forwarded-For` is believed only from the
    `trusted_proxies` (addresses or CIDR ranges, comma-separated; `DIAMOND_TRUSTED_PROXIES`):
    from anyone else, loopback included, a forged header could shift the wrong-key counter onto
    someone else's address or dodge it."""
    proxies = (
        ["--proxy-headers", "--forwarded-allow-ips", trusted_proxies]
        if trusted_proxies
        else ["--no-proxy-headers"]
    )
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        "--loop",
        "uvloop",
        "--http",
        "app.server:NoDelayHttpToolsProtocol",
        *proxies,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.server", description=__doc__)
    parser.add_argument("--app", default="app.api:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: list[str] | None = None) -> None:
    args, rest = build_parser().parse_known_args(argv)  # the rest goes to uvicorn as given
    trusted = get_settings().trusted_proxies
    line = command(args.app, args.host, args.port, args.workers, args.log_level, trusted) + rest
    os.execv(line[0], line)  # uvicorn becomes this process: signals reach its supervisor


if __name__ == "__main__":
    main()
