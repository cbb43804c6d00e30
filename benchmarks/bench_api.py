"""REST API speed against a real uvicorn on loopback: latency under 8 clients, batch, retrain."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import bundled_appraisals, many_appraisals, percentile, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.server import api_server  # noqa: E402

from diamond_model.pipeline import Pipeline  # noqa: E402
from diamond_model.settings import Settings  # noqa: E402

KEY = "bench-key"
STONE = {"carat": 1.1, "cut": "Ideal", "color": "H", "clarity": "SI2",
         "depth": 62.0, "table": 55.0, "x": 6.61, "y": 6.65, "z": 4.11}


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


def main() -> None:
    print("== REST API (uvicorn, 1 worker, loopback) ==")
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(instance_dir=Path(folder), auto_retrain=False)
        pipeline = Pipeline.from_settings(settings)
        pipeline.store.create_schema()
        pipeline.store.ingest(bundled_appraisals().to_csv(index=False).encode(), "seed.csv")
        pipeline.retrain()
        pipeline.store.dispose()
        env = {"DIAMOND_INSTANCE_DIR": folder, "DIAMOND_ACCESS_CODE": KEY}
        with api_server(env) as base, httpx.Client(base_url=base, timeout=60) as client:
            single, _ = concurrent_quotes(base, 1, 300)
            report("quote + explanation, 1 client", single, 10)
            latencies, seconds = concurrent_quotes(base, 8, 150)
            report("quote + explanation, 8 concurrent clients", latencies, 10)
            print(f"{'':48} p99 target 50 ms: {'OK' if percentile(latencies, 99) * 1000 <= 50 else 'MISSED'}; "
                  f"throughput {len(latencies) / seconds:,.0f} requests/s")

            stones = many_appraisals(10_000).drop(columns="price")
            payload = {"stones": stones.astype({"cut": str, "color": str, "clarity": str}).to_dict("records")}
            batch = []
            for _ in range(5):
                started = time.perf_counter()
                response = client.post("/v1/quotes/batch", json=payload)
                batch.append(time.perf_counter() - started)
                assert response.status_code == 200 and response.json()["priced"] == 10_000
            report("batch of 10,000 stones, no explanations", batch, 1.5, unit="s")

            run = client.post("/v1/training-runs", json={"force": True}, headers={"X-API-Key": KEY}).json()
            during = []
            while client.get(run["url"]).json()["status"] == "running":
                started = time.perf_counter()
                assert client.post("/v1/quotes", json=STONE).status_code == 200
                during.append(time.perf_counter() - started)
            report("quote while a retrain runs (same process)", during)
            if during:
                ratio = statistics.median(during) / statistics.median(single)
                print(f"{'':48} {ratio:.2f}x the idle median")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
