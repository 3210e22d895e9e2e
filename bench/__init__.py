"""Benchmarks: each module runs as a script (python bench/<name>.py); figures in docs/benchmarks.md."""
