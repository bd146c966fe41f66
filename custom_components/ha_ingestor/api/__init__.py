"""Pure asyncio library behind the integration: no Home Assistant import in this package.

The InfluxDB backends live in `api.flux` and `api.influxql`; the code that builds one imports
it from there.
"""

from .alerts import evaluate_alerts
from .backend import InfluxBackend, InfluxResult
from .client import IngestorClient, most_meaningful
from .errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    InvalidNameError,
    Origin,
)
from .models import (
    Alert,
    AlertKey,
    Backend,
    DataSource,
    EventStatistics,
    Period,
    ProcessingMetrics,
    Revision,
    ServiceState,
    ServiceStatus,
    Severity,
    Snapshot,
    SourceMode,
    Thresholds,
    TrendDirection,
    TrendPoint,
    TrendWindow,
)
from .normalize import ApiInfo
from .services import ServicesClient, ServicesResult

__all__ = [
    "Alert",
    "AlertKey",
    "ApiInfo",
    "Backend",
    "DataSource",
    "EventStatistics",
    "InfluxBackend",
    "InfluxResult",
    "IngestorAuthenticationError",
    "IngestorClient",
    "IngestorConnectionError",
    "IngestorError",
    "IngestorNotFoundError",
    "IngestorResponseError",
    "IngestorSSLError",
    "IngestorTimeoutError",
    "InvalidNameError",
    "Origin",
    "Period",
    "ProcessingMetrics",
    "Revision",
    "ServiceState",
    "ServiceStatus",
    "ServicesClient",
    "ServicesResult",
    "Severity",
    "Snapshot",
    "SourceMode",
    "Thresholds",
    "TrendDirection",
    "TrendPoint",
    "TrendWindow",
    "evaluate_alerts",
    "most_meaningful",
]
