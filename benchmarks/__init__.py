"""Refresh cost against data volume: our one-request refresh beside the naive approaches.

Run with `scripts/bench` (or `python -m benchmarks` inside the test environment); see
README.md next to this file. Timings live here, never in tests.
"""
