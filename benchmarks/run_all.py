"""Run every benchmark script in turn; each prints its own medians against its targets."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_core.py", "bench_api.py", "bench_dashboard.py"]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for name in SCRIPTS:
        runpy.run_path(str(HERE / name), run_name="__main__")
