"""Speed and memory figures: `python -m benchmarks` (all), or one script as
`python -m benchmarks.bench_core`. Targets are ratios measured in the same run (absolute times
differ 2.5-3.5x between machines); each line prints the ratio beside its target."""
