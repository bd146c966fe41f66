"""Talking to InfluxDB in Flux or InfluxQL; imports nothing of `api/` but `core/`."""
