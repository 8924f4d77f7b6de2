"""Benchmarks of userservice: `make bench` writes docs/PERFORMANCE.md."""
