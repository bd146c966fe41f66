"""The orchestrator behind `scripts/develop`; it runs inside the `current` Debian root.

It starts a real InfluxDB (seeded, then fed live by the ingestor simulator), the simulated
ingestor services, and a real Home Assistant on 127.0.0.1:8123 with this integration set
up, then waits. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything it started. When Home
Assistant asks for a restart (exit code 100, e.g. Settings -> System -> Restart after an
edit of the integration), it is started again, as Home Assistant's own runners do.

`python scripts/develop.py requirements` prints the Python requirements the demo's Home
Assistant needs beyond the test environment (scripts/toolchain.sh installs them once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
# The demo reuses the test support code (influxd, simulator, Home Assistant) and the
# integration's names.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Re-exported: the demo's own names for the shared pieces.
from tests.support.home_assistant import (  # noqa: E402
    DOMAIN,
    HOST,
    RESTART_EXIT_CODE,
    UNAVOIDABLE_REPAIRS,
    EntityState,
    FormError,
    HomeAssistantProcess,
    User,
    configuration_yaml,
    describe_errors,
    fill_form,
    link_custom_components,
    local_country,
    make_ready,
    store_http_settings,
)
from tests.support.home_assistant import (  # noqa: E402
    HomeAssistantClient as _HomeAssistantClient,
)
from tests.support.home_assistant import (  # noqa: E402
    HomeAssistantSetupError as DevelopError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from tests.support.events import Schema
    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator import EventWriter, IngestorSimulator

__all__ = ["DevelopError", "EntityState", "FormError", "describe_errors", "fill_form"]

HA_PORT: Final = 8123
HA_URL: Final = f"http://{HOST}:{HA_PORT}"

# A fixed, documented login: the demo only ever listens on the loopback interface.
DEV_NAME: Final = "Developer"
DEV_USERNAME: Final = "dev"
DEV_PASSWORD: Final = "dev-password"  # noqa: S105
DEV_USER: Final = User(DEV_NAME, DEV_USERNAME, DEV_PASSWORD)

DATABASE: Final = "home_assistant_events"
# The coordinator's minimum: values visibly change while a newcomer watches.
DEMO_UPDATE_INTERVAL: Final = 15
# What the demo sets in the options flow: the delivery check is opt-in, the demo shows it.
DEMO_OPTIONS: Final = {"update_interval": DEMO_UPDATE_INTERVAL, "delivery_check": True}

# Loaded on top of what Home Assistant always loads (bootstrap's DEFAULT_INTEGRATIONS):
# `config` for the settings panels and REST flows, `history` and `logbook` so the demo's
# sensors show their graphs. `http` and `onboarding` come with `frontend`.
DEMO_INTEGRATIONS: Final = ("http", "onboarding", "config", "history", "logbook")
# Those of them configuration.yaml names (an `http:` line would be YAML Home Assistant ignores).
CONFIGURED_INTEGRATIONS: Final = ("config", "history", "logbook")

HA_START_TIMEOUT: Final = 180.0
HA_STOP_TIMEOUT: Final = 60.0
LIVE_TIMEOUT: Final = 120.0
REQUEST_TIMEOUT: Final = 30.0
MAX_QUICK_RESTARTS: Final = 3
IMPATIENT_AFTER: Final = 2.0

# The simulated ingestor: an hour-scale history, then a rate that swings slowly around
# BASE_RATE events per minute so the statistics visibly move.
BASE_RATE: Final = 60.0
BACKFILL: Final = timedelta(hours=6)
RATE_SWING: Final = 0.5
RATE_PERIOD: Final = 300.0
STORY_STEP: Final = 5.0

# The delivery check needs events this Home Assistant fires and an ingestor that stores them:
# the demo sets these states over the REST API every FEED_STEP seconds, and an ingestor
# subscribed to its websocket writes every `state_changed` into influxd, losing every 50th
# event of one entity (the first one early, so *Events lost* moves within about a minute).
FEED_ENTITIES: Final = {
    "sensor.demo_delivery_temperature": ("Demo temperature", "°C", 18.0, 26.0),
    "sensor.demo_delivery_humidity": ("Demo humidity", "%", 35.0, 60.0),
    "sensor.demo_delivery_power": ("Demo power", "W", 80.0, 900.0),
}
FEED_STEP: Final = 2.0
FEED_RETRY: Final = 10.0
DROP_ENTITY: Final = "sensor.demo_delivery_power"
DROP_EVERY: Final = 50
DROP_FIRST: Final = 5


def log(message: str) -> None:
    """One status line, timestamped like scripts/toolchain.sh's."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- requirements (`develop.py requirements`) ------------------------------------------------


def _manifest(components: Path, domain: str) -> dict[str, Any] | None:
    path = components / domain / "manifest.json"
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def integration_closure(
    roots: Iterable[str], manifest_of: Callable[[str], Mapping[str, Any] | None]
) -> dict[str, list[str]]:
    """Every integration `roots` pull in through `dependencies` -> its requirements."""
    seen: dict[str, list[str]] = {}
    stack = list(roots)
    while stack:
        domain = stack.pop()
        if domain in seen:
            continue
        manifest = manifest_of(domain) or {}
        seen[domain] = list(manifest.get("requirements", []))
        stack.extend(manifest.get("dependencies", []))
    return seen


_NAME: Final = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_missing(requirement: str, installed: Callable[[str], str | None]) -> bool:
    """True when `requirement` (`name[extra]==version` or `name`) is not satisfied."""
    match = _NAME.match(requirement)
    if match is None:
        return True
    version = installed(match.group(1))
    if version is None:
        return True
    pinned = re.search(r"==\s*([^\s;,]+)", requirement)
    return pinned is not None and pinned.group(1) != version


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_requirements() -> list[str]:
    """Requirements of every integration the demo's Home Assistant loads, not yet installed."""
    from homeassistant import bootstrap  # noqa: PLC0415
    from homeassistant import components as ha_components  # noqa: PLC0415

    core = Path(next(iter(ha_components.__path__)))
    custom = REPO / "custom_components"

    def manifest_of(domain: str) -> dict[str, Any] | None:
        return _manifest(custom, domain) or _manifest(core, domain)

    roots = {
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *DEMO_INTEGRATIONS,
        DOMAIN,
    }
    wanted = sorted(
        {req for reqs in integration_closure(roots, manifest_of).values() for req in reqs}
    )
    return [req for req in wanted if requirement_missing(req, _installed_version)]


def demo_rate(elapsed: float, jitter: float = 0.0) -> float:
    """Events per minute `elapsed` seconds into the demo: a slow wave, never below 1."""
    wave = math.sin(2 * math.pi * elapsed / RATE_PERIOD)
    return max(1.0, BASE_RATE * (1 + RATE_SWING * wave + jitter))


def demo_drop(entity_id: str, n: int) -> bool:
    """Whether the demo's ingestor loses the `n`th event (from 1) of `entity_id`."""
    return entity_id == DROP_ENTITY and n % DROP_EVERY == DROP_FIRST


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- configuration ---------------------------------------------------------------------------


def render_configuration(*, with_http: bool) -> str:
    """configuration.yaml of the demo.

    `with_http` only where Home Assistant keeps no HTTP settings in its store (before 2026.x):
    2026.x migrates an `http:` section into the store with a deprecation repair, and reports
    it as ignored on every later start, so there the store is written instead.
    """
    return configuration_yaml(
        header="Written by scripts/develop at every start (local demo, edits are overwritten).",
        integrations=CONFIGURED_INTEGRATIONS,
        logs={
            f"custom_components.{DOMAIN}": "debug",
            "homeassistant.components.http.config": "info",
            # Home Assistant always loads camera and ffmpeg; without cameras here, their
            # complaints about the missing ffmpeg binary and libturbojpeg are noise.
            "haffmpeg": "critical",
            "homeassistant.components.camera.img_util": "critical",
        },
        http=(HOST, HA_PORT) if with_http else None,
    )


def _loopback_only(conf: Mapping[str, Any] | None) -> bool:
    if not conf:
        return False
    return conf.get("server_host") == [HOST] and conf.get("server_port", HA_PORT) == HA_PORT


def http_store_usable(store: Mapping[str, Any] | None) -> bool:
    """Whether Home Assistant's stored HTTP settings keep it on 127.0.0.1:8123.

    Either the confirmed (`stable`) settings are ours, or ours are pending a trial that
    has not failed (a run that stopped before promoting them): this run promotes them.
    """
    if not store:
        return False
    data = store.get("data") or {}
    if not data.get("yaml_migration_done"):
        return False
    pending = data.get("pending")
    if pending and pending.get("error") is None:
        return _loopback_only(pending)
    return _loopback_only(data.get("stable"))


@dataclass(frozen=True)
class Paths:
    """Where the demo keeps its state: ./config (gitignored), reused across runs."""

    repo: Path = REPO

    @property
    def config(self) -> Path:
        """Home Assistant's configuration directory."""
        return self.repo / "config"

    @property
    def runtime(self) -> Path:
        """Per-run files of the other servers, wiped at every start."""
        return self.config / ".develop"

    @property
    def http_store(self) -> Path:
        """Home Assistant's stored HTTP settings."""
        return self.config / ".storage" / "http"

    @property
    def ha_log(self) -> Path:
        """Home Assistant's own log file."""
        return self.config / "home-assistant.log"

    @property
    def ha_console(self) -> Path:
        """Home Assistant's stdout/stderr (start-up errors before logging is set up)."""
        return self.runtime / "home-assistant.console.log"


def prepare_config(paths: Paths, *, fresh: bool) -> None:
    """Create or refresh ./config: configuration.yaml and the custom_components link."""
    if fresh and paths.config.exists():
        log(f"--fresh: removing {paths.config}")
        shutil.rmtree(paths.config)
    shutil.rmtree(paths.runtime, ignore_errors=True)
    paths.runtime.mkdir(parents=True)
    try:
        # Relative, so the link works on the host and inside the root alike.
        link_custom_components(paths.config, Path("..") / "custom_components")
    except DevelopError as err:
        msg = f"{err} or use --fresh"
        raise DevelopError(msg) from err

    store: dict[str, Any] | None = None
    if paths.http_store.is_file():
        with contextlib.suppress(ValueError):
            store = json.loads(paths.http_store.read_text(encoding="utf-8"))
    usable = http_store_usable(store)
    if store is not None and not usable:
        # Only 127.0.0.1 is acceptable.
        log("stored HTTP settings are not 127.0.0.1:8123 only; replacing them")
        paths.http_store.unlink()
    stored = usable or store_http_settings(paths.config, HOST, HA_PORT)
    (paths.config / "configuration.yaml").write_text(
        render_configuration(with_http=not stored), encoding="utf-8"
    )


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# The ingestor's docker-compose host ports (docs/ingestor-contracts.md#r1-and-r2-deployment).
# Stable ports keep the config
# entry of an earlier run valid (with its options); a busy one gives way to a free port.
PREFERRED_PORTS: Final = {
    "influxdb": 8086,
    "websocket-ingestion": 8001,
    "enrichment-pipeline": 8002,
    "admin-api": 8003,
    "data-api": 8006,
    "carbon-intensity-service": 8010,
    "data-retention": 8080,
}


# HomeIQ 2.0 (R3) maps its Admin API to 8004 (R1/R2: 8003), with a key (a local demo value).
R3_ADMIN_PORT: Final = 8004
R3_DEMO_API_KEY: Final = "homeiq-demo-key"


def choose_ports(
    names: Iterable[str], in_use: Callable[[int], bool] = port_in_use
) -> dict[str, int]:
    """A port per service: its usual one when free, else 0 (the server picks a free one)."""
    return {
        name: port
        for name in names
        if (port := PREFERRED_PORTS.get(name)) is not None and not in_use(port)
    }


# --- flows -----------------------------------------------------------------------------------


# Onboarding's core-config step starts flows for cloud-backed integrations (met,
# radio_browser, google_translate, shopping_list); those that need the internet or a
# package the demo lacks end in a failed entry that would only confuse a newcomer.
FAILED_STATES: Final = frozenset({"setup_error", "setup_retry", "migration_error"})
SETTLING_STATES: Final = frozenset({"not_loaded", "setup_in_progress"})
ONBOARDING_SETTLE: Final = 15.0


def failed_onboarding_entries(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Config entries onboarding created that failed to set up."""
    return [
        entry
        for entry in entries
        if entry.get("source") == "onboarding" and entry.get("state") in FAILED_STATES
    ]


# --- Home Assistant over HTTP ----------------------------------------------------------------


@dataclass
class HomeAssistantClient(_HomeAssistantClient):
    """REST and WebSocket calls to the demo's Home Assistant, as the dev user."""

    base_url: str = HA_URL
    user: User | None = DEV_USER
    login_hint: str = "`scripts/develop --fresh` starts over"
    answers_from: str = "the demo's"


async def feed_delivery(
    client: HomeAssistantClient,
    influxdb: InfluxDBServer,
    database: str,
    schema: Schema,
    step: float = FEED_STEP,
) -> None:
    """Set the demo states and ingest what Home Assistant fires, until cancelled or disconnected.

    Every request is bounded; the loop ends when the websocket closes (Home Assistant stopped),
    and what the ingestor still holds is written then.
    """
    from tests.support.delivery_ingestor import DeliveryIngestor  # noqa: PLC0415

    rng = random.Random()  # noqa: S311
    async with client.connect_websocket() as ws:
        ingestor = DeliveryIngestor(ws, influxdb, database, drop=demo_drop, schema=schema)
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await ingestor.start()
        try:
            while ingestor.running:
                for entity_id, (name, unit, low, high) in FEED_ENTITIES.items():
                    state = {
                        "state": str(round(rng.uniform(low, high), 1)),
                        "attributes": {"friendly_name": name, "unit_of_measurement": unit},
                    }
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        await client.request("POST", f"/api/states/{entity_id}", state)
                await asyncio.sleep(step)
        finally:
            await ingestor.stop()


# The statistic a newcomer should see first; entity ids depend on translations, the
# unique_id (`<entry unique_id>_<key>`) does not.
SHOWCASE_KEYS: Final = ("events_per_minute", "events_in_period", "active_entities")


def pick_showcase(entities: Iterable[EntityState]) -> EntityState | None:
    """The entity to name in the "live" line: a key statistic first, else any live sensor."""
    live = sorted((entity for entity in entities if entity.live), key=lambda e: e.entity_id)
    for key in SHOWCASE_KEYS:
        for entity in live:
            if entity.unique_id.endswith(f"_{key}"):
                return entity
    return live[0] if live else None


# --- the dashboard ---------------------------------------------------------------------------

# The example dashboard, created as a storage-mode dashboard of its own (not the Overview,
# which stays Home Assistant's) and written again at every start, like configuration.yaml.
DASHBOARD_FILE: Final = REPO / "examples" / "dashboard.yaml"
DASHBOARD_URL_PATH: Final = "ha-ingestor"
DASHBOARD_ICON: Final = "mdi:database-import"


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    """The example dashboard's configuration."""
    import yaml  # noqa: PLC0415  (Home Assistant's requirement, inside the root)

    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return config


def dashboard_url(config: Mapping[str, Any], base_url: str = HA_URL) -> str:
    """Where the dashboard's first view opens."""
    views = config.get("views") or [{}]
    return f"{base_url}/{DASHBOARD_URL_PATH}/{views[0].get('path', 0)}"


# --- the demo --------------------------------------------------------------------------------


@dataclass
class Demo:
    """Everything one `scripts/develop` run starts, and stops again."""

    paths: Paths
    fresh: bool = False
    revision: str = "r3"
    show_ha_output: bool = False
    started: float = field(default_factory=time.monotonic)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    ha: HomeAssistantProcess | None = None
    influx_url: str | None = None
    influxdb: InfluxDBServer | None = None
    database: str = DATABASE
    schema: Schema | None = None
    ingestor_values: dict[str, Any] = field(default_factory=dict)
    dashboard: str = HA_URL

    def elapsed(self) -> str:
        """Seconds since start, for the status lines."""
        return f"{time.monotonic() - self.started:.1f} s"

    async def run(self) -> int:
        """Start everything, then supervise Home Assistant until it stops for good."""
        async with self.stack:
            prepare_config(self.paths, fresh=self.fresh)
            if port_in_use(HA_PORT):
                msg = f"{HOST}:{HA_PORT} is already in use; is another Home Assistant running?"
                raise DevelopError(msg)
            await self.start_influxdb()
            await self.start_ingestor()
            return await self.supervise_home_assistant()
        return 0  # pragma: no cover  (the stack never swallows an exception)

    async def start_influxdb(self) -> None:
        """A fresh influxd on 127.0.0.1:8086 (else a free port) with the ingestor's database."""
        from tests.support.influxdb_server import InfluxDBServer  # noqa: PLC0415

        port = choose_ports(["influxdb"]).get("influxdb") or free_port()
        server = InfluxDBServer(self.paths.runtime / "influxdb", http_port=port)
        server.data_dir.mkdir(parents=True)
        await asyncio.to_thread(server.start)
        self.stack.callback(self._stop_influxdb, server)
        await asyncio.to_thread(server.create_database, self.database)
        self.influx_url = server.url
        self.influxdb = server
        log(f"InfluxDB 1.x up at {server.url} (database {self.database}) after {self.elapsed()}")

    @staticmethod
    def _stop_influxdb(server: InfluxDBServer) -> None:
        log("stopping InfluxDB")
        server.stop()
        # Its data is synthetic and re-seeded at every start.
        shutil.rmtree(server.data_dir, ignore_errors=True)

    async def start_ingestor(self) -> None:
        """The simulated ingestor services, a backfilled history and the live event writer."""
        from custom_components.ha_ingestor.api.core.models import Revision  # noqa: PLC0415
        from custom_components.ha_ingestor.const import SERVICE_URL_KEYS  # noqa: PLC0415
        from tests.support.events import Schema  # noqa: PLC0415
        from tests.support.simulator import EventWriter, create_simulator  # noqa: PLC0415

        assert self.influx_url is not None  # noqa: S101
        revision = Revision(self.revision)
        names = [n for n in PREFERRED_PORTS if n != "influxdb"]
        ports = choose_ports(names)
        if revision is Revision.R3:
            # HomeIQ 2.0 maps its Admin API to 8004 and always wants a key.
            ports.pop("admin-api", None)
            if not port_in_use(R3_ADMIN_PORT):
                ports["admin-api"] = R3_ADMIN_PORT
        api_key = R3_DEMO_API_KEY if revision is Revision.R3 else None
        simulator = create_simulator(revision, api_key, influx_url=self.influx_url, ports=ports)
        await simulator.start()
        self.stack.push_async_callback(self._stop_simulator, simulator)
        self.schema = Schema.A if revision is Revision.R1 else Schema.B
        writer = EventWriter(
            self.influx_url,
            self.database,
            self.schema,
            demo_rate(0.0),
            seed=int(time.time()),
            on_write=simulator.record_events,
        )
        # Registered first: stop() also closes the session a cancelled backfill opened.
        self.stack.push_async_callback(writer.stop)
        now = datetime.now(UTC)
        count = int(BACKFILL / timedelta(minutes=1) * BASE_RATE)
        await writer.backfill(count, now - BACKFILL, now)
        await writer.start()
        story = asyncio.create_task(self._story(simulator, writer), name="develop-story")
        self.stack.push_async_callback(_cancel, story)
        log(
            f"simulated ingestor {revision.value.upper()} up ({len(simulator.services)} services,"
            f" Admin API {simulator.admin_api_url}); {count} events of the last"
            f" {BACKFILL / timedelta(hours=1):g} h written, ~{BASE_RATE:g}/min from now on"
        )
        by_service = simulator.service_urls
        self.ingestor_values = {
            "admin_api_url": simulator.admin_api_url,
            **({"api_key": api_key} if api_key else {}),
            **{
                key: by_service[name]
                for key, name in SERVICE_URL_KEYS.items()
                if name in by_service
            },
        }

    async def _stop_simulator(self, simulator: IngestorSimulator) -> None:
        log("stopping the simulated ingestor")
        await simulator.stop()

    async def _story(self, simulator: IngestorSimulator, writer: EventWriter) -> None:
        """Let the event rate and the services' figures drift, so the entities move."""
        rng = random.Random()  # noqa: S311
        started = time.monotonic()
        while True:
            rate = demo_rate(time.monotonic() - started, rng.uniform(-0.1, 0.1))
            writer.rate_per_minute = rate
            simulator.set_figures(
                events_per_minute=round(rate, 1),
                events_per_second=round(rate / 60, 2),
                average_processing_time_ms=round(rng.uniform(1.2, 4.5), 2),
                data_api_avg_query_time_ms=round(rng.uniform(6.0, 20.0), 1),
                queue_size=rng.randint(0, 3000),  # R3's queue-fill sensor moves
            )
            await asyncio.sleep(STORY_STEP)

    def kill_home_assistant(self) -> None:
        """Second Ctrl-C: no more waiting."""
        if self.ha is not None:
            self.ha.kill()

    async def _stop_home_assistant(self) -> None:
        if self.ha is not None:
            await self.ha.stop(HA_STOP_TIMEOUT)

    async def supervise_home_assistant(self) -> int:
        """Start Home Assistant, set it up once, restart it when it asks; its exit code."""
        self.ha = HomeAssistantProcess(
            self.paths.config,
            console_log=None if self.show_ha_output else self.paths.ha_console,
            log=log,
        )
        self.stack.push_async_callback(self._stop_home_assistant)
        first = True
        quick_restarts = 0
        while True:
            log("starting Home Assistant")
            launched = time.monotonic()
            process = await self.ha.start()
            try:
                await self.set_up(first=first)
            except DevelopError:
                if process.returncode is not None:
                    self._print_ha_tail()
                raise
            first = False
            code = await process.wait()
            if code != RESTART_EXIT_CODE:
                self._print_ha_tail()
                msg = f"Home Assistant exited with code {code}"
                raise DevelopError(msg)
            quick_restarts = quick_restarts + 1 if time.monotonic() - launched < 30 else 0  # noqa: PLR2004
            if quick_restarts > MAX_QUICK_RESTARTS:
                msg = "Home Assistant keeps asking for restarts; giving up"
                raise DevelopError(msg)
            log("Home Assistant asked for a restart")

    async def _feed(self) -> None:
        """The delivery check's live events while the demo runs, again after each restart."""
        import aiohttp  # noqa: PLC0415

        assert self.influxdb is not None  # noqa: S101
        assert self.schema is not None  # noqa: S101
        # No total timeout: the websocket stays open; feed_delivery bounds every request.
        timeout = aiohttp.ClientTimeout(total=None, connect=REQUEST_TIMEOUT)
        while True:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                client = HomeAssistantClient(session)
                try:
                    await client.login()
                    log(
                        f"delivery check fed: {len(FEED_ENTITIES)} demo states every"
                        f" {FEED_STEP:g} s, every event ingested over the websocket except"
                        f" every {DROP_EVERY}th of {DROP_ENTITY} (lost on purpose)"
                    )
                    await feed_delivery(client, self.influxdb, self.database, self.schema)
                except (DevelopError, aiohttp.ClientError, OSError, TimeoutError, TypeError) as err:
                    # TypeError: aiohttp's answer to reading a closed websocket.
                    log(
                        f"delivery feed interrupted ({type(err).__name__});"
                        f" again in {FEED_RETRY:g} s"
                    )
                finally:
                    await client.revoke()
            await asyncio.sleep(FEED_RETRY)

    def _print_ha_tail(self) -> None:
        if self.ha is not None and (tail := self.ha.tail()):
            print(tail, file=sys.stderr)

    async def set_up(self, *, first: bool) -> None:
        """Onboard, keep HTTP on 127.0.0.1, configure the integration, show the login."""
        import aiohttp  # noqa: PLC0415

        assert self.ha is not None  # noqa: S101
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = HomeAssistantClient(session)
            try:
                ready = await make_ready(
                    client, self.ha, HA_START_TIMEOUT, country=local_country(os.environ)
                )
                log(f"Home Assistant answers on {HA_URL} ({ready.took:.1f} s after launch)")
                onboarded = ready.onboarded
                if onboarded:
                    log(f"onboarded: created the local user {DEV_USERNAME!r}")
                if ready.country is not None:
                    log(f"country set to {ready.country} (Settings -> System -> General)")
                if ready.promoted:
                    log("HTTP settings (127.0.0.1:8123 only) confirmed")
                # The stored settings rule from now on; the YAML copy would only raise a repair.
                (self.paths.config / "configuration.yaml").write_text(
                    render_configuration(with_http=False), encoding="utf-8"
                )
                if first:
                    # Subscribed before the entry loads: only the events dropped on purpose
                    # count as lost.
                    feed = asyncio.create_task(self._feed(), name="develop-delivery-feed")
                    self.stack.push_async_callback(_cancel, feed)
                    await self.ensure_entry(client)
                    await self.ensure_dashboard(client)
                    self.print_banner()
                    await self.wait_for_live_entities(client)
                await self.remove_onboarding_leftovers(client, settle=onboarded)
                if unexpected := await client.repairs() - UNAVOIDABLE_REPAIRS:
                    names = ", ".join(f"{d}.{i}" for d, i in sorted(unexpected))
                    log(f"Home Assistant shows repairs the demo did not expect: {names}")
            finally:
                await client.revoke()

    async def ensure_entry(self, client: HomeAssistantClient) -> None:
        """One HA Ingestor entry pointing at this run's servers (re-created when they moved)."""
        wanted = self.entry_values()
        stored = self.stored_entry_data()
        for entry in await client.entries():
            data, options = stored.get(entry["entry_id"], ({}, {}))
            if all(data.get(key) == value for key, value in wanted.items() if value):
                log(f"HA Ingestor entry {entry['title']!r} already points at this demo")
                if "delivery_check" not in options:  # an entry of a run before the check
                    await self.set_options(client, entry["entry_id"])
                return
            await client.delete_entry(entry["entry_id"])
            log(f"removed the HA Ingestor entry {entry['title']!r} of an earlier run")
        result = await client.run_flow(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": True},
            wanted,
        )
        if result.get("type") != "create_entry":
            msg = (
                f"the HA Ingestor config flow ended with {result.get('type')}: "
                f"{result.get('reason') or describe_errors(result)}"
            )
            raise DevelopError(msg)
        log(f"HA Ingestor configured (entry {result['result'].get('title')!r})")
        await self.set_options(client, result["result"]["entry_id"])

    async def set_options(self, client: HomeAssistantClient, entry_id: str) -> None:
        """DEMO_OPTIONS through the options flow; the entry's other options stay as they are."""
        options = await client.run_flow(
            "/api/config/config_entries/options/flow", {"handler": entry_id}, DEMO_OPTIONS
        )
        if options.get("type") == "create_entry":
            log(f"HA Ingestor refreshes every {DEMO_UPDATE_INTERVAL} s, delivery check on")
        else:
            log(f"could not set the demo's options: {options.get('type')}")

    async def ensure_dashboard(self, client: HomeAssistantClient) -> None:
        """The "HA Ingestor" dashboard, from examples/dashboard.yaml."""
        config = load_dashboard()
        created = await client.save_dashboard(
            DASHBOARD_URL_PATH, config.get("title", "HA Ingestor"), config, DASHBOARD_ICON
        )
        self.dashboard = dashboard_url(config)
        log(f"dashboard {'created' if created else 'updated'} from {DASHBOARD_FILE.name}")

    async def remove_onboarding_leftovers(
        self, client: HomeAssistantClient, *, settle: bool
    ) -> None:
        """Drop the entries onboarding added that cannot work here (they need the internet)."""
        deadline = time.monotonic() + (ONBOARDING_SETTLE if settle else 0.0)
        while True:
            entries = await client.request("GET", "/api/config/config_entries/entry")
            settled = not any(
                e.get("source") == "onboarding" and e.get("state") in SETTLING_STATES
                for e in entries
            )
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for entry in failed_onboarding_entries(entries):
            await client.delete_entry(entry["entry_id"])
            log(f"removed {entry['title']!r}: onboarding added it, it cannot work offline")

    def entry_values(self) -> dict[str, Any]:
        """What the config flow is given: InfluxQL on the local influxd, the simulated services."""
        return {
            "url": self.influx_url or "",
            "backend": "influxql",
            "bucket": self.database,
            "organization": "ha-ingestor",
            "verify_ssl": False,
            **self.ingestor_values,
        }

    def stored_entry_data(self) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]]:
        """entry_id -> (data, options) of this integration's entries, from HA's store."""
        path = self.paths.config / ".storage" / "core.config_entries"
        try:
            store = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {
            entry["entry_id"]: (entry.get("data", {}), entry.get("options", {}))
            for entry in store.get("data", {}).get("entries", [])
            if entry.get("domain") == DOMAIN
        }

    def print_banner(self) -> None:
        """The URL and the login, once Home Assistant is ready for a browser."""
        lines = [
            "",
            "=" * 72,
            f"  Home Assistant is ready: {self.dashboard}",
            f"  Log in as:  {DEV_USERNAME}  /  {DEV_PASSWORD}",
            "  (a fixed demo login; every server listens on 127.0.0.1 only)",
            "  Settings -> Devices & services -> HA Ingestor -> device 'HA Ingestor'",
            f"  Logs: {self.paths.ha_log}",
            "  Edited the integration? Settings -> System -> Restart (top right):",
            "  scripts/develop starts Home Assistant again.",
            "  Ctrl-C stops everything.",
            "=" * 72,
            "",
        ]
        print("\n".join(lines), flush=True)

    async def wait_for_live_entities(self, client: HomeAssistantClient) -> None:
        """Report the first live value (the newcomer's "it works" moment)."""
        deadline = time.monotonic() + LIVE_TIMEOUT
        entities: list[EntityState] = []
        while time.monotonic() < deadline:
            entities = await client.entity_states()
            showcase = pick_showcase(entities)
            if showcase is not None:
                live = sum(entity.live for entity in entities)
                log(
                    f"live: {showcase.entity_id} = {showcase.state}"
                    f" ({live} sensors with values, {len(entities)} entities)"
                    f" after {self.elapsed()}"
                )
                return
            await asyncio.sleep(1)
        log(f"no HA Ingestor sensor has a value yet ({len(entities)} entities)")
        log(f"see {self.paths.ha_log}")


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until a signal; clean up in every case."""
    demo = Demo(
        Paths(), fresh=args.fresh, revision=args.revision, show_ha_output=args.show_ha_output
    )
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(demo.run())

    stopping_since: float | None = None

    def on_signal(signum: int) -> None:
        nonlocal stopping_since
        if stopping_since is not None:
            # One stop can arrive twice (a supervisor signals the group, scripts/develop
            # passes it on); only a later one means "do not wait for Home Assistant".
            if time.monotonic() - stopping_since > IMPATIENT_AFTER:
                log("stopping now")
                demo.kill_home_assistant()
            return
        stopping_since = time.monotonic()
        log(f"{signal.Signals(signum).name}: stopping everything scripts/develop started")
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await task
    except asyncio.CancelledError:
        log("stopped")
        return 0
    except DevelopError as err:
        log(f"error: {err}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `run [--fresh] [--show-ha-output]` or `requirements`."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the demo (what scripts/develop does)")
    run.add_argument("--fresh", action="store_true", help="forget ./config first")
    run.add_argument(
        "--revision",
        choices=("r1", "r2", "r3"),
        default="r3",
        help="ingestor generation to simulate (r3: HomeIQ 2.0)",
    )
    run.add_argument(
        "--show-ha-output", action="store_true", help="print Home Assistant's console output"
    )
    sub.add_parser("requirements", help="print the demo's missing Python requirements")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        print("\n".join(missing_requirements()))
        return 0
    return asyncio.run(run_demo(args))


if __name__ == "__main__":
    sys.exit(main())
