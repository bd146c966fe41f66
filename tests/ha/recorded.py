"""The ingestor stack as recorded, behind Home Assistant's HTTP session.

`fixtures/ingestor_<revision>.json` holds what every endpoint the integration asks answered
(the simulated R1/R2 stack of `tests/support/simulator.py`, recorded at `NOW`), and
`fixtures/influxdb_<revision>.lp` the points the ingestor wrote into InfluxDB. Only the HTTP
boundary is replaced: the real clients send their requests, the recorded JSON comes back, and
InfluxDB's answer is computed from the points by the InfluxDB 2.x double's Flux interpreter.
So every Snapshot the entities show comes from the real normalisers and alert rules.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectionError, ClientSession
from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from pytest_homeassistant_custom_component.common import load_fixture, load_json_object_fixture
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.ha_ingestor.api.ingestor.stack import ADMIN_API, DEFAULT_PORTS
from tests.support.influx2_double import (
    VERSION,
    Bucket,
    FluxError,
    encode_csv,
    parse_line,
    run_flux,
)

if TYPE_CHECKING:
    from homeassistant.core import Event, HomeAssistant

    from custom_components.ha_ingestor.api.core.models import Revision

INFLUXDB = "influxdb"
INFLUXDB_HOST = "influxdb.local"
INGESTOR_HOST = "ingestor.local"
ADMIN_API_PORT = 8003
_SERVICE_AT = {port: name for name, port in DEFAULT_PORTS.items()} | {ADMIN_API_PORT: ADMIN_API}


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def point_time(line: str) -> datetime:
    """The time of a recorded point (line protocol, ns)."""
    return datetime.fromtimestamp(int(line.rsplit(" ", 1)[1]) / 1e9, UTC)


def tag(line: str, key: str) -> str:
    """A tag of a recorded point (the recording's tags need no unescaping)."""
    series = line.split(" ", 1)[0]
    return dict(part.split("=", 1) for part in series.split(",")[1:])[key]


class RecordedStack:
    """What one recorded ingestor stack answers; tests change it between refreshes."""

    def __init__(self, revision: Revision, bucket: str) -> None:
        """Load the recording of `revision`; InfluxDB holds `bucket`."""
        self.revision = revision
        self.bucket = bucket
        self.reset()

    def reset(self) -> None:
        """Back to the recording: every change undone."""
        self.payloads: dict[str, dict[str, Any]] = load_json_object_fixture(
            f"ingestor_{self.revision.value}.json"
        )
        self.points = load_fixture(f"influxdb_{self.revision.value}.lp").splitlines()
        self.down: set[str] = set()
        self.overrides: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.requests: list[URL] = []
        self.addresses: dict[tuple[str | None, int | None], str] = {}

    # --- what tests change -----------------------------------------------------------------

    def payload(self, service: str, path: str) -> Any:
        """The recorded JSON `service` answers at `path`, to read or change in place."""
        return self.payloads[service][path]

    def answer(self, service: str, path: str, status: int, body: bytes) -> None:
        """Answer `path` of `service` with `status` and a raw body instead of the recording."""
        self.overrides[service, path] = (status, body)

    def remove(self, service: str) -> None:
        """The service leaves the stack: no listing names it and nothing answers for it."""
        self.down.add(service)
        services = self.payloads[ADMIN_API]["/api/v1/services"]
        services["services"] = [s for s in services["services"] if s["service"] != service]
        stats = self.payloads[ADMIN_API]["/api/v1/stats"]
        for part in ("metrics", "trends"):
            stats[part].pop(service, None)
        self.payloads[ADMIN_API]["/api/v1/health/services"].pop(service, None)

    def serve_as(self, url: str, service: str) -> None:
        """Answer for `service` at the address of `url` too."""
        address = URL(url)
        self.addresses[address.host, address.port] = service

    def refuse(self, service: str, body: bytes = b'{"detail": "Invalid API key"}') -> None:
        """Every recorded path of `service` answers 401."""
        for path in self.payloads[service]:
            self.answer(service, path, 401, body)

    def add(self, service: str, like: str) -> None:
        """A new service joins, answering as `like` does (its port must be a default one)."""
        self.payloads[service] = json.loads(json.dumps(self.payloads[like]))
        stats = self.payloads[ADMIN_API]["/api/v1/stats"]
        stats["metrics"][service] = dict(stats["metrics"][like])
        self.down.discard(service)

    def stats_periods(self) -> list[str]:
        """The periods the Admin API's statistics were asked for, in order."""
        return [
            url.query["period"]
            for url in self.requests
            if url.path == "/api/v1/stats" and "period" in url.query
        ]

    def events_in_period(self, start: datetime) -> list[str]:
        """The recorded points at or after `start` (what a period starting then counts)."""
        return [line for line in self.points if point_time(line) >= start]

    # --- the HTTP boundary -------------------------------------------------------------------

    def install(self, aioclient_mock: AiohttpClientMocker) -> None:
        """Answer every request of Home Assistant's (mocked) client sessions."""
        # Every address: `_respond` decides, by host and port (the mocker ignores ports).
        for method in ("get", "post"):
            aioclient_mock.request(method, re.compile(""), side_effect=self._respond)

    async def _respond(self, method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        self.requests.append(url)
        service = self._service_at(url)
        if service is None or service in self.down:
            return AiohttpClientMockResponse(
                method, url, exc=ClientConnectionError(f"Cannot connect to host {url.host}")
            )
        if (override := self.overrides.get((service, url.path))) is not None:
            status, body = override
            return AiohttpClientMockResponse(method, url, status=status, response=body)
        if service == INFLUXDB and url.path == "/api/v2/query":
            return self._influx_answer(method, url, data)
        if service == INFLUXDB:
            # Nothing else of InfluxDB was recorded (the storage figures' bucket API, /metrics).
            return AiohttpClientMockResponse(
                method, url, status=404, json={"code": "not found", "message": "path not found"}
            )
        body = self.payloads.get(service, {}).get(url.path)
        if body is None:
            return AiohttpClientMockResponse(method, url, status=404, json={"detail": "Not Found"})
        return AiohttpClientMockResponse(method, url, json=body)

    def session(self, hass: HomeAssistant) -> ClientSession:
        """A client session of its own answered by this stack (HA's sessions stay real)."""
        mocker = AiohttpClientMocker()
        self.install(mocker)
        session = mocker.create_session(hass.loop)

        async def close(_event: Event) -> None:
            await session.close()

        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_CLOSE, close)
        return session

    def _service_at(self, url: URL) -> str | None:
        if (aliased := self.addresses.get((url.host, url.port))) is not None:
            return aliased
        if url.host == INFLUXDB_HOST:
            return INFLUXDB
        if url.host == INGESTOR_HOST and url.port is not None:
            return _SERVICE_AT.get(url.port)
        return None

    def _influx_answer(self, method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        """Run the Flux program the backend sent over the recorded points."""
        document = json.loads(data)
        now = _ns(datetime.now().astimezone())
        bucket = Bucket(self.bucket)
        bucket.store([parse_line(line, "ns", now) for line in self.points])
        dialect = document.get("dialect") or {}
        try:
            results = run_flux(document["query"], {self.bucket: bucket}, now)
        except FluxError as err:
            return AiohttpClientMockResponse(
                method, url, status=err.status, json={"code": err.code, "message": str(err)}
            )
        return AiohttpClientMockResponse(
            method,
            url,
            text=encode_csv(
                results, dialect.get("annotations", []), header=dialect.get("header", True)
            ),
            headers={"Content-Type": "text/csv; charset=utf-8", "X-Influxdb-Version": VERSION},
        )
