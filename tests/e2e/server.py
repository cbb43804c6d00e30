"""Start the real API under uvicorn on a free loopback port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.server import command

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(
    command: list[str], env: dict[str, str], ready_url: str, timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Run `command` until the block ends; wait until `ready_url` answers 200."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[2:4]} exited early: {process.stderr.read()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_url} not ready after {timeout}s")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def api_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """A real `uvicorn app.api:app`; yields its base URL."""
    port = free_port()
    line = command(
        port=port,
        workers=workers,
        log_level="warning",
        trusted_proxies=env.get("DIAMOND_TRUSTED_PROXIES", ""),
    )
    base = f"http://127.0.0.1:{port}"
    with running(line, env, f"{base}/health"):
        yield base


@contextmanager
def dashboard_server(env: dict[str, str]) -> Iterator[str]:
    """A real `streamlit run streamlit_app.py`, headless; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(command, env, f"{base}/_stcore/health"):
        yield base


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
