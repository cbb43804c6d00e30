"""REST API speed against a real uvicorn on loopback, as ratios measured in one run: the product
against a bare FastAPI app, keys + limits + quote records against none, eight connections on two
workers against one client.

`python -m benchmarks.bench_api` (install Debian's `wrk` for the load-generator-free figures)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from app.server import command
from benchmarks.common import many_appraisals, percentile, ratio, report, seeded_instance
from diamond_model.data.schema import EXAMPLE_STONE
from diamond_model.enums import Scope
from diamond_model.serving.keys import KeyStore
from tests.e2e.server import api_server, free_port, running

STONE = EXAMPLE_STONE


@contextmanager
def bare_server(workers: int = 1) -> Iterator[str]:
    port = free_port()
    line = command("benchmarks.bare_api:app", port=port, workers=workers, log_level="warning")
    base = f"http://127.0.0.1:{port}"
    with running(line, {}, f"{base}/health"):
        yield base


def one_client(
    base: str, path: str, n: int, headers: dict[str, str] | None = None, body: dict | None = STONE
) -> list[float]:
    """`n` requests on one keep-alive connection."""
    latencies = []
    with httpx.Client(base_url=base, timeout=30, headers=headers or {}) as client:
        for _ in range(20):
            (client.post(path, json=body) if body is not None else client.get(path))
        for _ in range(n):
            started = time.perf_counter()
            response = client.post(path, json=body) if body is not None else client.get(path)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return latencies


def in_turns(
    measures: dict[str, Callable[[int], list[float]]], rounds: int = 5, per_round: int = 100
) -> dict[str, list[float]]:
    """Each measure `rounds` times, taking turns, `per_round` requests each time."""
    found: dict[str, list[float]] = {label: [] for label in measures}
    for _ in range(rounds):
        for label, measure in measures.items():
            found[label] += measure(per_round)
    return found


def concurrent(base: str, clients: int, per_client: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        mine = one_client(base, "/v1/quotes", per_client)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{json.dumps(STONE)}'
wrk.headers["Content-Type"] = "application/json"
"""
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(base: str) -> tuple[float, float, float] | None:
    """(p50 ms, p99 ms, requests/s) of 8 connections for 10 s, or None without wrk."""
    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        output = subprocess.run(
            ["wrk", "-t2", "-c8", "-d10s", "--latency", "-s", script.name, f"{base}/v1/quotes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    quantiles = {
        q: float(value) * UNITS_MS[unit]
        for q, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", output, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return quantiles["50"], quantiles["99"], rps


def main() -> None:
    print("== REST API (uvicorn on loopback; the load generator shares the same 2 cores) ==")
    with tempfile.TemporaryDirectory() as folder:
        pipeline = seeded_instance(folder)
        key, _ = KeyStore(pipeline.store).create(
            "bench", frozenset({Scope.QUOTE}), stones_per_day=10**9, requests_per_minute=10**6
        )
        pipeline.store.dispose()
        env = {"DIAMOND_INSTANCE_DIR": folder, "DIAMOND_API_OPEN_READS": "true"}
        # All three servers run at once and are asked in turns, so a slow spell of this shared
        # machine falls on each of them alike and the ratios compare like with like.
        with (
            bare_server() as bare,
            api_server({**env, "DIAMOND_RECORD_QUOTES": "false"}) as base,
            api_server(env) as keyed_base,
        ):
            found = in_turns(
                {
                    "bare quote": lambda n: one_client(bare, "/v1/quotes", n),
                    "bare health": lambda n: one_client(bare, "/health", n, body=None),
                    "quote": lambda n: one_client(base, "/v1/quotes", n),
                    "health": lambda n: one_client(base, "/health", n, body=None),
                    "keyed": lambda n: one_client(
                        keyed_base, "/v1/quotes", n, headers={"X-API-Key": key}
                    ),
                }
            )
            stones = many_appraisals(10_000).drop(columns="price").astype(object)
            stones = stones.where(stones.notna(), None)  # JSON has null, not NaN
            payload = {"stones": stones.to_dict("records")}
            batch = []
            for _ in range(3):
                started = time.perf_counter()
                response = httpx.post(f"{keyed_base}/v1/quotes/batch", json=payload, timeout=120)
                batch.append(time.perf_counter() - started)
                assert response.status_code == 200 and response.json()["priced"] == 10_000
        bare_quote = report(
            "bare FastAPI: validate the stone and answer, 1 client", found["bare quote"]
        )
        bare_health = report("bare FastAPI: health, 1 client", found["bare health"])
        plain = report("product: quote, no key, no records, 1 client", found["quote"])
        health = report("product: /health, 1 client", found["health"])
        keyed = report(
            "product: quote with key, limits and quote records, 1 client", found["keyed"]
        )
        report("batch of 10,000 stones, no explanations", batch, unit="s")
        ratio("API quote / bare FastAPI quote (1 client)", plain, bare_quote, 3)
        ratio("API /health / bare FastAPI health", health, bare_health, 1.5)
        ratio("quote with keys + limits + records / without (p50)", keyed, plain, 1.2)
        print(f"{'':58} p99 with / without: see the two lines above")
        with api_server({**env, "DIAMOND_RECORD_QUOTES": "false"}, workers=2) as base:
            concurrent(base, 8, 10)  # both workers load the model
            eight = concurrent(base, 8, 150)
            p50 = report("8 httpx clients, 2 workers", eight)
            ratio("8 connections p50 / 1 client p50", p50, plain, 2)
            ratio("8 connections p99 / 1 client p50", percentile(eight, 99), plain, 5)
            found = wrk(base)
        if found is None:
            print(f"{'':58} (apt-get install wrk to measure without the Python load generator)")
            return
        p50_ms, p99_ms, rps = found
        print_wrk("8 wrk connections, 2 workers", found)
        ratio("wrk 8 connections p50 / 1 client p50", p50_ms / 1000, plain, 2)
        ratio("wrk 8 connections p99 / 1 client p50", p99_ms / 1000, plain, 5)
        # Little's law: 8 requests always in flight at `rps` spend 8 / rps each on average, so
        # with the two cores saturated no p50 can be far below this, whatever the code does.
        print(f"{'  floor at this throughput (8 / requests per second)':58} {8000 / rps:9.2f} ms")
    # The same load on the bare app: what this machine and the load generator allow an app that
    # does no work (its one-client figure above is the denominator).
    with bare_server(workers=2) as bare:
        wrk(bare)  # warm both workers
        bare_p50, bare_p99, _ = found = wrk(bare)
    print_wrk("bare FastAPI: 8 wrk connections, 2 workers", found)
    print(
        f"{'  bare app p50 / p99 over its own 1 client p50':58} "
        f"{bare_p50 / 1000 / bare_quote:9.2f}x / {bare_p99 / 1000 / bare_quote:.2f}x  (reference)"
    )


def print_wrk(label: str, found: tuple[float, float, float]) -> None:
    p50_ms, p99_ms, rps = found
    print(f"{label:58} p50 {p50_ms:9.2f} ms  p99 {p99_ms:9.2f} ms  {rps:,.0f} requests/s")


if __name__ == "__main__":
    main()
