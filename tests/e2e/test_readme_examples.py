"""README's first-integration examples, run as a reader would paste them, against a real server:
the Python one and the JavaScript one (Node's own fetch, no packages)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import server_environment
from tests.e2e.server import api_server
from tests.helpers import make_keys

ROOT = Path(__file__).resolve().parents[2]


def _example(language: str) -> str:
    """The README's example in `language` inside "A first integration in 15 minutes"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### A first integration in 15 minutes", 1)[1].split("### Reference")[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"one {language} example in the section"
    return blocks[0]


@pytest.fixture
def first_integration(seeded_copy, tmp_path: Path):
    """A real server with its secure default (no open reads) and a key with limits."""
    url = seeded_copy("sqlite")
    env = server_environment(url, tmp_path)
    env.pop("DIAMOND_API_OPEN_READS")
    keys = make_keys(url)
    with api_server(env) as base:
        yield base, keys["limited"]


def _check(output: str, base: str, key: str) -> None:
    quote_id, price = output.split()[:2]
    assert float(price) > 0
    record = httpx.get(f"{base}/v1/quotes/{quote_id}", headers={"X-API-Key": key}, timeout=30)
    assert record.status_code == 200, "the quote the example printed is on record"
    assert re.search(r'left: "minute";r=\d+;t=\d+, "day";r=\d+;t=\d+ request id: \w+', output)


def test_the_python_example_quotes_with_a_retry_key(first_integration, tmp_path: Path) -> None:
    base, key = first_integration
    script = tmp_path / "quote.py"
    script.write_text(_example("python"))
    env = {**os.environ, "DIAMOND_API": base, "DIAMOND_KEY": key}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    _check(done.stdout, base, key)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_javascript_example_quotes_with_a_retry_key(first_integration, tmp_path: Path) -> None:
    base, key = first_integration
    script = tmp_path / "quote.mjs"
    script.write_text(_example("js"))
    env = {**os.environ, "DIAMOND_API": base, "DIAMOND_KEY": key}
    done = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    _check(done.stdout, base, key)
    # A problem stops the script with its words and its request id (a wrong key: not retried).
    wrong = {**env, "DIAMOND_KEY": "dk_00000000_not-a-key"}
    done = subprocess.run(
        ["node", str(script)], env=wrong, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert re.search(r"Missing or unknown key: .+ \(request \w+\)", done.stderr), done.stderr[-500:]
