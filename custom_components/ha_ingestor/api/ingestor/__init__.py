"""Talking to the ingestor's own HTTP APIs (R1, R2, R3); imports nothing of `api/` but `core/`."""
