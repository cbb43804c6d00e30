"""Run every benchmark in turn; each prints its own medians and ratios against its targets."""

from __future__ import annotations

from benchmarks import bench_api, bench_core, bench_dashboard, bench_hostile

if __name__ == "__main__":
    bench_core.main()
    bench_api.main()
    bench_dashboard.main()
    bench_hostile.main()
