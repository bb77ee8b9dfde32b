"""Benchmarks: scripts that print figures and ratios (see docs/benchmarks.md)."""
