"""The library behind the integration: pure asyncio, no Home Assistant import anywhere below.

Three rooms and the policy on top (docs/architecture.md#layers):

- `core/`: the normalised model, the typed errors and the pure arithmetic (aggregates, alert
  rules, delivery counting, storage growth). Imports nothing else of this package.
- `influx/`: talking to InfluxDB (the backend protocol, names, Flux, InfluxQL, the incremental
  window store, storage and delivery queries). Imports `core/` only.
- `ingestor/`: talking to the ingestor's own HTTP APIs (the services client and the payload
  normalisers of revisions R1, R2 and R3). Imports `core/` only.
- `client.py`: the source policy that asks both and merges one `Snapshot`. Imports all three.

Callers import from the modules themselves; `tests/test_repository.py` enforces the rules.
"""
