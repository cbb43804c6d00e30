"""How many threads LightGBM may use to predict a matrix of a given size."""

from __future__ import annotations

# Below this many rows one thread is quicker (no OpenMP start-up) and leaves the other core to
# the server; above it a priced file takes half the time on two cores (`make bench`).
PARALLEL_FROM_ROWS = 10_000


def predict_threads(rows: int) -> int:
    """1 for quotes and small batches; 0 (LightGBM: every core) for large files."""
    return 1 if rows < PARALLEL_FROM_ROWS else 0
