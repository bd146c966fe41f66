"""Pure asyncio library behind the integration: no Home Assistant import in this package.

Callers import from the modules themselves (`api.client`, `api.models`, `api.flux`, ...);
docs/architecture.md says which module owns what.
"""
