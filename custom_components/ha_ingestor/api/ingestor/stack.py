"""The ingestor stack's service names and where docker-compose publishes them.

Apart from the client because the names are the vocabulary every side shares: the client
asks by them, the merging of replies keys on them, and the Home Assistant layer names devices
by them, none of which needs aiohttp.
"""

from __future__ import annotations

ADMIN_API = "admin-api"
WEBSOCKET_INGESTION = "websocket-ingestion"
ENRICHMENT_PIPELINE = "enrichment-pipeline"
DATA_API = "data-api"
DATA_RETENTION = "data-retention"

# Host ports of docker-compose, used only for names the Admin API reports.
# docs/ingestor-contracts.md#r1-and-r2-deployment
DEFAULT_PORTS: dict[str, int] = {
    WEBSOCKET_INGESTION: 8001,
    ENRICHMENT_PIPELINE: 8002,
    "sports-data": 8005,
    "sports-api": 8005,
    DATA_API: 8006,
    "weather-api": 8009,
    "carbon-intensity-service": 8010,
    "electricity-pricing-service": 8011,
    "air-quality-service": 8012,
    "calendar-service": 8013,
    "smart-meter-service": 8014,
    "log-aggregator": 8015,
    "energy-correlator": 8017,
    "data-retention": 8080,
}
# Listed by the Admin API but not probed on the Admin API's host: the Admin API itself (host
# port 8003 maps to 8004), the dashboard (3000 maps to 80) and InfluxDB (the backends' job).
NOT_DERIVED = frozenset({ADMIN_API, "health-dashboard", "influxdb"})
