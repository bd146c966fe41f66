"""Constants of the HA Ingestor integration: the domain, entry keys and option defaults."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta
from typing import Final

from homeassistant.const import (
    CONF_API_KEY,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)

from .api.core.models import Backend, Period, SourceMode, Thresholds, TrendWindow

DOMAIN: Final = "ha_ingestor"
LOGGER = logging.getLogger(__package__)

# Connection data (entry.data). Home Assistant's own names where one exists.
CONF_BACKEND: Final = "backend"
CONF_ORGANIZATION: Final = "organization"
CONF_BUCKET: Final = "bucket"
CONF_ADMIN_API_URL: Final = "admin_api_url"
CONF_WEBSOCKET_INGESTION_URL: Final = "websocket_ingestion_url"
CONF_ENRICHMENT_PIPELINE_URL: Final = "enrichment_pipeline_url"
CONF_DATA_API_URL: Final = "data_api_url"

# Entry key -> the service name the ingestor itself uses for it.
SERVICE_URL_KEYS: Final[dict[str, str]] = {
    CONF_WEBSOCKET_INGESTION_URL: "websocket-ingestion",
    CONF_ENRICHMENT_PIPELINE_URL: "enrichment-pipeline",
    CONF_DATA_API_URL: "data-api",
}

INFLUXDB_KEYS: Final = (
    CONF_URL,
    CONF_BACKEND,
    CONF_TOKEN,
    CONF_USERNAME,
    CONF_PASSWORD,
    CONF_ORGANIZATION,
    CONF_BUCKET,
    CONF_VERIFY_SSL,
)
INGESTOR_KEYS: Final = (CONF_ADMIN_API_URL, CONF_API_KEY, *SERVICE_URL_KEYS)
# Every address field: trimmed by the flows, host-redacted in diagnostics.
URL_KEYS: Final = (CONF_URL, CONF_ADMIN_API_URL, *SERVICE_URL_KEYS)
# What reauthentication asks for: nothing that names the system.
SECRET_KEYS: Final = (CONF_TOKEN, CONF_PASSWORD, CONF_API_KEY)

DEFAULT_BACKEND: Final = Backend.FLUX
# The ingestor's docker-compose defaults (docs/ingestor-contracts.md#r1-and-r2-deployment).
DEFAULT_ORGANIZATION: Final = "ha-ingestor"
DEFAULT_BUCKET: Final = "home_assistant_events"

# Behaviour (entry.options).
CONF_SOURCE_MODE: Final = "source_mode"
CONF_PERIOD: Final = "period"
CONF_TREND_WINDOW: Final = "trend_window"
CONF_UPDATE_INTERVAL: Final = "update_interval"
CONF_MONITORED_SERVICES: Final = "monitored_services"
# Threshold options carry the field names of `Thresholds`, so one loop maps both ways.
THRESHOLD_KEYS: Final = tuple(f.name for f in fields(Thresholds))

DEFAULT_SOURCE_MODE: Final = SourceMode.AUTO
DEFAULT_PERIOD: Final = Period.HOUR_1
DEFAULT_TREND_WINDOW: Final = TrendWindow.MINUTES_5
DEFAULT_UPDATE_INTERVAL: Final = 60
MIN_UPDATE_INTERVAL: Final = 15
MAX_UPDATE_INTERVAL: Final = 3600
# The trend attribute (one value per window) goes to the frontend on every refresh: at most
# a week of the default 5-minute windows, so the default window fits every period.
MAX_TREND_WINDOWS: Final = 2016
DEFAULT_THRESHOLDS: Final = Thresholds()
# The delivery check (delivery.py): opt-in; completeness thresholds in percent.
CONF_DELIVERY_CHECK: Final = "delivery_check"
# The sidebar panel "HA Ingestor" (frontend/panel.py): shown while one entry asks for it.
CONF_SHOW_PANEL: Final = "show_panel"
CONF_DELIVERY_WARNING: Final = "delivery_warning"
CONF_DELIVERY_ERROR: Final = "delivery_error"

# Every request is bounded well below the shortest update interval.
REQUEST_TIMEOUT: Final = timedelta(seconds=10)

# Storage figures (size, series, retention): their own, slower schedule and time limits.
CONF_STORAGE_GROWTH_PERCENT: Final = "storage_growth_percent"
CONF_STORAGE_BUDGET_GB: Final = "storage_budget_gb"
CONF_STORAGE_BUDGET_DAYS: Final = "storage_budget_days"
STORAGE_OPTION_DEFAULTS: Final[dict[str, float | None]] = {
    CONF_STORAGE_GROWTH_PERCENT: 10.0,
    CONF_STORAGE_BUDGET_GB: None,
    CONF_STORAGE_BUDGET_DAYS: 30.0,
}
STORAGE_UPDATE_INTERVAL: Final = timedelta(minutes=15)
# Cardinality of a large database takes longer than a statistics query.
STORAGE_REQUEST_TIMEOUT: Final = timedelta(seconds=30)
STORAGE_REFRESH_TIMEOUT: Final = timedelta(seconds=90)

# Repair issues (issue registry ids).
ISSUE_BUCKET_NOT_FOUND: Final = "bucket_not_found"
ISSUE_ADMIN_API_KEY_REQUIRED: Final = "admin_api_key_required"
ISSUE_DELIVERY_NOT_SOURCE: Final = "delivery_not_source"

# Response action.
SERVICE_GET_STATISTICS: Final = "get_statistics"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_PERIOD: Final = "period"

# The backfill action (services.py, backfill.py).
SERVICE_BACKFILL: Final = "backfill"
ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_DRY_RUN: Final = "dry_run"
