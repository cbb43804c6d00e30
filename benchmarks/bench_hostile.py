"""What a hostile body costs a worker, against a real uvicorn with two workers on loopback: the
time from the last byte sent to the answer, and each worker's resident memory before and after.

Bodies: 2,000,000 empty stones declared in Content-Length (over the batch cap: 413 before a byte
is read), 1,330,000 empty stones under the cap (counted, 422), a 105 MB chunked body (cut off at
the cap), and for scale a real batch of 10,000 priced stones (the most one request may ask).
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.common import many_appraisals, seeded_instance
from tests.e2e.server import api_server

CHUNK = b"{}," * 21_845  # 65,535 bytes


def empty_stones(count: int) -> bytes:
    return b'{"stones": [' + b",".join([b"{}"] * count) + b"]}"


def worker_memory(base: str) -> dict[str, float]:
    """Resident MB of each worker, by the pid it reports (DIAMOND_EXPOSE_WORKER)."""
    found: dict[str, float] = {}
    for _ in range(200):
        with httpx.Client(base_url=base, timeout=30) as one:
            pid = one.get("/health/live").headers["x-worker"]
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        found[pid] = rss_kb / 1024
        if len(found) == 2:
            break
    return found


def answer_time(base: str, head: bytes, body: bytes | list[bytes]) -> tuple[float, bytes]:
    """Seconds from the last byte sent (or from the head, when the body is not sent because
    the answer must come first) to the status line."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head)
        pieces = body if isinstance(body, list) else [body]
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and hung up: the cap did its work
        started = time.perf_counter()
        try:
            answer = sock.recv(65_536)
        except ConnectionResetError:
            answer = b"(connection reset before the answer was read)"
        return time.perf_counter() - started, answer.split(b"\r\n", 1)[0]


def quotes_beside_a_file(base: str) -> None:
    """Single quotes on another connection while a 19 MB CSV (9,900 stones with long notes) is
    read and priced: their slowest answer says whether the event loop was kept free."""
    stones = many_appraisals(9_900).drop(columns="price").assign(note="x" * 1_900)
    body = stones.to_csv(index=False).encode()
    stone = {"carat": 0.9, "cut": "Very Good", "color": "F", "clarity": "VS2"}
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(
            httpx.post,
            f"{base}/v1/quotes/batch/csv",
            files={"file": ("big.csv", body, "text/csv")},
            timeout=120,
        )
        latencies = []
        with httpx.Client(base_url=base, timeout=30) as client:
            while not upload.done():
                started = time.perf_counter()
                client.post("/v1/quotes", json=stone)
                latencies.append(time.perf_counter() - started)
    assert upload.result().status_code == 200
    label = f"quotes beside a {len(body) / 1e6:.0f} MB CSV being priced ({len(latencies)})"
    print(
        f"  {label:52} {statistics.median(latencies) * 1000:8.1f} ms median, "
        f"{max(latencies) * 1000:.0f} ms slowest"
    )


def main() -> None:
    print("== Hostile bodies (uvicorn, 2 workers, loopback) ==")
    with tempfile.TemporaryDirectory() as folder:
        seeded_instance(folder).store.dispose()
        env = {
            "DIAMOND_INSTANCE_DIR": folder,
            "DIAMOND_EXPOSE_WORKER": "true",
            "DIAMOND_API_OPEN_READS": "true",
        }
        with api_server(env, workers=2) as base:
            httpx.post(
                f"{base}/v1/quotes",
                json={"carat": 1, "cut": "Ideal", "color": "G", "clarity": "VS1"},
            )
            before = worker_memory(base)
            over = empty_stones(2_000_000)
            under = empty_stones(1_330_000)
            chunked = [f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" for _ in range(1_600)]

            def head(length: int | None) -> bytes:
                size = (
                    f"Content-Length: {length}"
                    if length is not None
                    else "Transfer-Encoding: chunked"
                )
                return (
                    b"POST /v1/quotes/batch HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\n" + size.encode() + b"\r\n\r\n"
                )

            cases = {
                "2,000,000 empty stones, 6 MB declared (head only)": (head(len(over)), []),
                "1,330,000 empty stones, 4 MB (under the cap)": (head(len(under)), under),
                "105 MB chunked": (head(None), chunked),
            }
            for label, (start, body) in cases.items():
                times, statuses = [], set()
                for _ in range(5):
                    seconds, status = answer_time(base, start, body)
                    times.append(seconds)
                    statuses.add(status.decode())
                print(f"  {label:52} {statistics.median(times) * 1000:8.1f} ms  {sorted(statuses)}")
            stones = many_appraisals(10_000).drop(columns="price").astype(object)
            payload = {"stones": stones.where(stones.notna(), None).to_dict("records")}
            priced = []
            for _ in range(3):
                started = time.perf_counter()
                assert (
                    httpx.post(f"{base}/v1/quotes/batch", json=payload, timeout=120).status_code
                    == 200
                )
                priced.append(time.perf_counter() - started)
            print(
                f"  {'10,000 real stones priced (for scale)':52} {statistics.median(priced):8.2f} s"
            )
            quotes_beside_a_file(base)
            after = worker_memory(base)
        for pid, mb in sorted(before.items()):
            print(
                f"  worker {pid}: {mb:6.0f} MB resident before, "
                f"{after.get(pid, float('nan')):6.0f} MB after"
            )
        print(f"  {'workers replaced':52} {len(set(before) - set(after))}")


if __name__ == "__main__":
    main()
