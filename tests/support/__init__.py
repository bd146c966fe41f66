"""Test support shared by the tests, the benchmarks and the demo (scripts/develop)."""
