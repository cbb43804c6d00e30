"""Hostile bodies against a real uvicorn with two workers: millions of empty stones, a 100 MB
chunked body, a body that declares itself small and keeps sending. Each is answered 413 or 422
while another connection's quotes keep being answered in between its pieces, and no worker is
replaced (uvicorn's supervisor kills a worker that misses its health ping for 5 s)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.e2e.server import api_server

STONE = {"carat": 0.9, "cut": "Very Good", "color": "F", "clarity": "VS2"}
MB = 1_000_000


def empty_stones(count: int) -> bytes:
    return b'{"stones": [' + b",".join([b"{}"] * count) + b"]}"


def workers(base: str) -> set[str]:
    """The pids of the workers, seen over fresh connections (the kernel hands each to either)."""
    seen: set[str] = set()
    for _ in range(200):
        with httpx.Client(base_url=base, timeout=30) as one:
            seen.add(one.get("/health/live").headers["x-worker"])
        if len(seen) == 2:
            break
    return seen


@contextmanager
def raw(base: str, head: bytes) -> Iterator[socket.socket]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        yield sock


def answered(sock: socket.socket) -> bytes:
    """Whatever the server has answered so far (b"" when nothing yet), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(65_536)
    except (BlockingIOError, ConnectionResetError):
        return b""
    finally:
        sock.setblocking(True)


def read_answer(sock: socket.socket, start: bytes = b"") -> bytes:
    answer = start
    sock.settimeout(30)
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65_536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    return answer


class Other:
    """Another client on its own keep-alive connection, quoting between the hostile pieces."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.statuses: list[int] = []

    def quote(self) -> None:
        self.statuses.append(self.client.post("/v1/quotes", json=STONE).status_code)


@pytest.fixture
def server(server_env: dict[str, str]) -> Iterator[tuple[str, Other]]:
    with api_server(server_env, workers=2) as base:
        other = Other(base)
        yield base, other
        other.client.close()


def stream(sock: socket.socket, pieces: Iterator[bytes], other: Other, every: int) -> tuple:
    """Send pieces until the server answers or hangs up; a quote on the other connection after
    every `every` pieces. Returns (bytes sent, what was answered so far)."""
    sent = 0
    for k, piece in enumerate(pieces):
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return sent, b""
        sent += len(piece)
        if k % every == 0:
            other.quote()
            if answer := answered(sock):
                return sent, answer
    return sent, b""


def test_two_million_empty_stones_are_413_and_one_million_and_a_third_are_422(
    server: tuple[str, Other],
) -> None:
    base, other = server
    before = workers(base)
    assert len(before) == 2

    six_mb = empty_stones(2_000_000)
    head = (
        b"POST /v1/quotes/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(six_mb)).encode() + b"\r\n\r\n"
    )
    with raw(base, head) as sock:
        other.quote()  # answered while the hostile request is open and its body unsent
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"over the limit of 4,016,384 bytes" in answer

    # Under the cap: 1,330,000 stones, sent in 64 KB pieces with a quote after every 8.
    body = empty_stones(1_330_000)
    head = (
        b"POST /v1/quotes/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    pieces = (body[k : k + 65_536] for k in range(0, len(body), 65_536))
    with raw(base, head) as sock:
        sent, early = stream(sock, pieces, other, every=8)
        assert sent == len(body) and not early, "nothing is answered before the body is whole"
        other.quote()  # while the batch is being counted
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 422"), answer[:300]
    assert b"at most 10,000 stones per request; got 1,330,000" in answer

    assert len(other.statuses) >= 10 and set(other.statuses) == {200}
    assert workers(base) == before, "no worker was killed and replaced"


def test_a_100_mb_chunked_batch_is_cut_off_at_its_cap(server: tuple[str, Other]) -> None:
    base, other = server
    before = workers(base)
    head = (
        b"POST /v1/quotes/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"{}," * 21_845  # 65,535 bytes
    pieces = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(1_600))  # 105 MB
    with raw(base, head) as sock:
        sent, early = stream(sock, pieces, other, every=4)
        answer = read_answer(sock, early)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"connection: close" in answer.lower()
    assert sent < 10 * MB, f"the server read {sent:,} bytes of a body capped at ~4 MB"
    assert len(other.statuses) >= 10 and set(other.statuses) == {200}
    assert workers(base) == before


def test_a_body_declared_small_that_keeps_sending_is_not_read_past_its_length(
    server: tuple[str, Other],
) -> None:
    base, other = server
    before = workers(base)
    start = b'{"stones": [{},{},{},'
    head = (
        b"POST /v1/quotes/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(start)).encode() + b"\r\n\r\n" + start
    )
    pieces = (b"{}," * 21_845 for _ in range(1_600))  # 105 MB past the declared length
    with raw(base, head) as sock:
        sent, early = stream(sock, pieces, other, every=4)
        answer = read_answer(sock, early)
    # The declared bytes are the whole body (not JSON: 422); what follows is no request: the
    # server's parser answers 400 and hangs up, before or instead of the 422.
    assert answer.startswith((b"HTTP/1.1 422", b"HTTP/1.1 400")), answer[:300]
    assert sent < 10 * MB, f"the server kept reading: {sent:,} bytes"
    assert len(other.statuses) >= 1 and set(other.statuses) == {200}
    assert workers(base) == before
