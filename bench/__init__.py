"""Benchmarks: reproducible, comparing against references in the same run (see bench/README.md)."""
