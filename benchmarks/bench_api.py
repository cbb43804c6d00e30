"""REST API speed against a real uvicorn on loopback: latency under 8 clients, batch, retrain."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import many_appraisals, percentile, report, seeded_instance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diamond_model.schema import EXAMPLE_STONE
from tests.e2e.server import api_server  # noqa: E402

KEY = "bench-key"
STONE = EXAMPLE_STONE


def concurrent_quotes(base: str, clients: int, per_client: int) -> tuple[list[float], float]:
    """Each client sends `per_client` quotes on its own keep-alive connection."""
    latencies: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            client.post("/v1/quotes", json=STONE)  # connection warm-up
            mine = []
            for _ in range(per_client):
                started = time.perf_counter()
                response = client.post("/v1/quotes", json=STONE)
                mine.append(time.perf_counter() - started)
                assert response.status_code == 200
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{json.dumps(STONE)}'
wrk.headers["Content-Type"] = "application/json"
"""
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def eight_clients(base: str, label: str) -> None:
    """8 concurrent keep-alive clients: Python threads (httpx), then wrk when it is installed.

    The Python load generator needs about as much CPU per request as the server and shares the
    same two cores; wrk (a Debian package written in C) measures the server nearly alone.
    """
    latencies, seconds = concurrent_quotes(base, 8, 150)
    report(f"quote + explanation, 8 httpx clients, {label}", latencies, 10)
    p99 = percentile(latencies, 99) * 1000
    print(
        f"{'':48} p99 target 50 ms: {'OK' if p99 <= 50 else 'MISSED'}; "
        f"throughput {len(latencies) / seconds:,.0f} requests/s"
    )
    if shutil.which("wrk") is None:
        print(f"{'':48} (apt-get install wrk to measure without the Python load generator)")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        command = [
            "wrk",
            "-t2",
            "-c8",
            "-d10s",
            "--latency",
            "-s",
            script.name,
            f"{base}/v1/quotes",
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    quantiles = {
        q: float(value) * UNITS_MS[unit]
        for q, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", output, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    verdict = "OK" if quantiles["50"] <= 10 and quantiles["99"] <= 50 else "MISSED"
    name = f"quote + explanation, 8 wrk connections, {label}"
    print(
        f"{name:48} p50 {quantiles['50']:9.2f} ms  p99 {quantiles['99']:9.2f} ms  "
        f"{rps:,.0f} requests/s  targets 10 / 50 ms: {verdict}"
    )


def main() -> None:
    print("== REST API (uvicorn on loopback; load generator on the same 2 cores) ==")
    with tempfile.TemporaryDirectory() as folder:
        seeded_instance(folder)
        env = {"DIAMOND_INSTANCE_DIR": folder, "DIAMOND_ACCESS_CODE": KEY}
        with api_server(env) as base, httpx.Client(base_url=base, timeout=60) as client:
            single, _ = concurrent_quotes(base, 1, 300)
            report("quote + explanation, 1 client", single, 10)
            eight_clients(base, "1 worker")

            stones = many_appraisals(10_000).drop(columns="price")
            payload = {
                "stones": stones.astype({"cut": str, "color": str, "clarity": str}).to_dict(
                    "records"
                )
            }
            batch = []
            for _ in range(5):
                started = time.perf_counter()
                response = client.post("/v1/quotes/batch", json=payload)
                batch.append(time.perf_counter() - started)
                assert response.status_code == 200 and response.json()["priced"] == 10_000
            report("batch of 10,000 stones, no explanations", batch, 1.5, unit="s")

            run = client.post(
                "/v1/training-runs", json={"force": True}, headers={"X-API-Key": KEY}
            ).json()
            during = []
            while client.get(run["url"]).json()["status"] == "running":
                started = time.perf_counter()
                assert client.post("/v1/quotes", json=STONE).status_code == 200
                during.append(time.perf_counter() - started)
            report("quote while a retrain runs (same process)", during)
            if during:
                ratio = statistics.median(during) / statistics.median(single)
                print(f"{'':48} {ratio:.2f}x the idle median")
        with api_server(env, workers=2) as base:
            concurrent_quotes(base, 8, 20)  # both workers load the model
            eight_clients(base, "2 workers")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
