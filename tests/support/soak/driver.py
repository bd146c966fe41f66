"""The soak driver: a real influxd, the simulated ingestor and a real Home Assistant, under faults.

One `Soak.run()` starts everything (in `work`), sets the integration up over REST with the
delivery check on and a 15 s refresh, feeds Home Assistant's bus into influxd as the ingestor
does (tests/support/delivery_ingestor.py), then repeats the fault cycle of `schedule` until
its time is up. After every fault a checkpoint compares the entities with what the simulator
and influxd say is true; all along it samples Home Assistant's RSS, file descriptors, asyncio
tasks and timers (through the `soak_probe` integration) and reads its log. Everything it
started is stopped in `finally`, whatever happens; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from custom_components.ha_ingestor.api.core.models import Period, Revision
from custom_components.ha_ingestor.const import DEFAULT_PERIOD, SERVICE_URL_KEYS
from tests.support.delivery_ingestor import DeliveryIngestor
from tests.support.events import MEASUREMENT, Schema
from tests.support.home_assistant import (
    DOMAIN,
    HOST,
    HomeAssistantClient,
    HomeAssistantProcess,
    HomeAssistantSetupError,
    User,
    make_ready,
    store_http_settings,
    write_configuration,
)
from tests.support.influxdb_server import InfluxDBServer, free_port
from tests.support.simulator import ADMIN_API, EventWriter, Fault, create_simulator
from tests.support.soak import measure
from tests.support.soak.schedule import (
    BURST_RATE,
    SLOW_DELAY,
    TRICKLE_PER_MINUTE,
    FaultKind,
    Step,
    cycle_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tests.support.simulator import IngestorSimulator

PROBE: Final = Path(__file__).resolve().parent / "soak_probe"
REPO: Final = Path(__file__).resolve().parents[3]
USER: Final = User("Soak", "soak", "soak-password")
DATABASE: Final = "home_assistant_events"
API_KEY: Final = "soak-admin-key"
UPDATE_INTERVAL: Final = 15
OPTIONS: Final = {"update_interval": UPDATE_INTERVAL, "delivery_check": True}
INTEGRATIONS: Final = ("config", "recorder", "soak_probe")
LOGS: Final = {
    f"custom_components.{DOMAIN}": "info",
    # Home Assistant always loads camera and ffmpeg; without cameras here, their complaints
    # about the missing ffmpeg binary and libturbojpeg are noise (as in scripts/develop).
    "haffmpeg": "critical",
    "homeassistant.components.camera.img_util": "critical",
}

START_TIMEOUT: Final = 180.0
REQUEST_TIMEOUT: Final = 30.0
# The simulated ingestor's history and live rate (events per minute).
BACKFILL: Final = timedelta(hours=2)
WRITER_RATE: Final = 60.0
# The bus the delivery check watches: a few states every FEED_STEP seconds.
FEED_ENTITIES: Final = ("sensor.soak_feed_temperature", "sensor.soak_feed_power")
FEED_STEP: Final = 2.0
BURST_ENTITIES: Final = 20
BURST_WORKERS: Final = 16
# A checkpoint waits at most this long for a refresh that read its new figure.
CHECKPOINT_WAIT: Final = 3 * UPDATE_INTERVAL + 10.0
# The reading of a figure is at most this much older than its state's last_reported: the
# refresh's own time plus the ingestor's 5 s batches.
REFRESH_SLACK: Final = timedelta(seconds=15)
# How long the first checkpoint waits for every entity to have a value.
SETTLE_TIMEOUT: Final = 120.0
# Home Assistant's access tokens live 30 minutes: logged in again well before.
RELOGIN_EVERY: Final = 900.0
STATUS_OK: Final = "healthy"
# The queue-fill percentage is the simulator's queue over its size: exact but for rounding.
FILL_TOLERANCE: Final = 0.05
# A refresh under way when a checkpoint sets its figure ends within this (checkpoints are calm).
INFLIGHT: Final = timedelta(seconds=3)


def _say(message: str) -> None:
    sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Sample:
    """One look at Home Assistant."""

    t: float  # seconds since the run started
    incarnation: int  # which Home Assistant process (a restart starts the next)
    since_start: float  # seconds since this process started
    rss_mib: float | None
    fds: int | None
    tasks: int | None
    tasks_ours: int | None
    timers: int | None
    timers_ours: int | None
    threads: int | None
    log_lines: dict[str, int]
    tracebacks: int


@dataclass(frozen=True)
class Checkpoint:
    """The entities against the truth, after one step."""

    t: float
    after: str
    checked: int
    mismatches: list[str]
    waited_s: float

    @property
    def right(self) -> bool:
        """Every figure as the simulator and influxd say."""
        return not self.mismatches


@dataclass
class Episode:
    """One fault, and what the integration logged from its start to the checkpoint after."""

    kind: str
    started: float
    ended: float = 0.0
    down: list[str] = field(default_factory=list)
    up: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def logged_once_each_way(self) -> bool:
        """No message twice, and a way back logged whenever a way down was."""
        return not self.repeated and bool(self.down) == bool(self.up)


def _kind_of(line: measure.LogLine) -> str:
    words = " ".join(line.message.split()[:4])
    return f"{line.level} [{line.logger.rsplit('.', 1)[-1]}] {words}"


def _is_up(line: measure.LogLine) -> bool:
    text = line.message.lower()
    return line.level == "INFO" and any(w in text for w in ("again", "recovered", "back"))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Soak:
    """One soak run; `run()` returns its results as plain JSON."""

    work: Path
    minutes: float
    revision: Revision = Revision.R3
    say: Callable[[str], None] = _say
    sample_every: float = 20.0
    # None: the cycle `cycle_for(minutes)` chooses.
    cycle: tuple[Step, ...] | None = None
    started: float = field(default_factory=time.monotonic)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    influxdb: InfluxDBServer | None = None
    simulator: IngestorSimulator | None = None
    writer: EventWriter | None = None
    ha: HomeAssistantProcess | None = None
    session: aiohttp.ClientSession | None = None
    client: HomeAssistantClient | None = None
    port: int = 0
    incarnation: int = 0
    ha_started: float = 0.0
    logged_in: float = 0.0
    entity_ids: dict[str, str] = field(default_factory=dict)  # unique_id -> entity_id
    samples: list[Sample] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    feed_restarts: int = 0
    start_settle_s: float | None = None
    feed_events: int = 0
    burst: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _logs: measure.LogCounter | None = None
    _figure_round: int = 0
    _wall_started: float = field(default_factory=time.time)

    # --- paths and clock --------------------------------------------------------------------

    @property
    def config(self) -> Path:
        """Home Assistant's configuration directory."""
        return self.work / "config"

    @property
    def url(self) -> str:
        """Home Assistant's base URL."""
        return f"http://{HOST}:{self.port}"

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def _http(self) -> tuple[aiohttp.ClientSession, HomeAssistantClient]:
        assert self.session is not None
        assert self.client is not None
        return self.session, self.client

    @property
    def logs(self) -> measure.LogCounter:
        """The log reader (exists once the run started)."""
        assert self._logs is not None
        return self._logs

    # --- the run ----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Everything, in order; the results even when a step failed."""
        self.work.mkdir(parents=True, exist_ok=True)
        self._logs = measure.LogCounter(self.config / "home-assistant.log")
        deadline = self.started + self.minutes * 60
        # The run's own hard limit: set-up, the schedule, one last checkpoint and the stop.
        limit = self.minutes * 60 + 2 * START_TIMEOUT + 600
        try:
            async with self.stack, asyncio.timeout(limit):
                await self._start_everything()
                background = [
                    asyncio.create_task(self._sampler(), name="soak-sampler"),
                    asyncio.create_task(self._log_reader(), name="soak-log-reader"),
                    asyncio.create_task(self._feed(), name="soak-feed"),
                ]
                for task in background:
                    self.stack.push_async_callback(_cancel, task)
                await self._await_every_entity()
                await self._checkpoint("start")
                await self._schedule(deadline)
                await self._sample()
                rows = await self._recorder_rows()
        except (HomeAssistantSetupError, RuntimeError, OSError, TimeoutError) as err:
            self.errors.append(f"{type(err).__name__}: {err}")
            self.say(f"soak stopped early: {err}")
            rows = None
        finally:
            # Whatever was appended before Home Assistant stopped.
            self.logs.poll()
        return self._results(rows)

    async def _schedule(self, deadline: float) -> None:
        cycle = self.cycle or cycle_for(self.minutes)
        index = 0
        while True:
            step = cycle[index % len(cycle)]
            fits = time.monotonic() + step.hold + step.settle + CHECKPOINT_WAIT <= deadline
            if index >= len(cycle) and not fits:
                break
            await self._step(step)
            index += 1

    async def _step(self, step: Step) -> None:
        episode = Episode(step.kind.value, self.now())
        self.say(f"fault: {step.kind.value} for {step.hold:g} s")
        await self._fault(step, episode)
        episode.ended = self.now()
        await asyncio.sleep(step.settle)
        await self._checkpoint(step.kind.value)
        self._judge(episode)
        self.episodes.append(episode)

    def _judge(self, episode: Episode) -> None:
        """The integration's log lines from the fault's start to now."""
        since = self.started + episode.started
        seen: dict[str, int] = {}
        for line in self.logs.ours:
            if line.read_at < since:
                continue
            if line.level == "INFO" and not _is_up(line):
                continue
            kind = _kind_of(line)
            seen[kind] = seen.get(kind, 0) + 1
            (episode.up if _is_up(line) else episode.down).append(
                f"{line.level} {line.message[:200]}"
            )
        episode.repeated = [kind for kind, count in seen.items() if count > 1]

    # --- starting and stopping ----------------------------------------------------------------

    async def _start_everything(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        self.stack.push_async_callback(self.session.close)
        await self._start_influxdb()
        await self._start_simulator()
        await self._start_writer()
        self._prepare_config()
        self.stack.push_async_callback(self._stop_ha)
        await self._start_ha()
        await self._set_up_entry()

    async def _start_influxdb(self) -> None:
        server = InfluxDBServer(self.work / "influxdb")
        shutil.rmtree(server.data_dir, ignore_errors=True)
        server.data_dir.mkdir(parents=True)
        await asyncio.to_thread(server.start)
        self.stack.callback(server.stop)
        await asyncio.to_thread(server.create_database, DATABASE)
        self.influxdb = server
        self.say(f"influxd up at {server.url}")

    async def _start_simulator(self, ports: Mapping[str, int] | None = None) -> None:
        assert self.influxdb is not None
        api_key = API_KEY if self.revision is Revision.R3 else None
        simulator = create_simulator(
            self.revision, api_key, influx_url=self.influxdb.url, ports=ports
        )
        await simulator.start()
        self.simulator = simulator
        if ports is None:
            self.stack.push_async_callback(self._stop_simulator)
        self.say(
            f"simulated ingestor {self.revision.value} up ({len(simulator.services)} services)"
        )

    async def _stop_simulator(self) -> None:
        if self.simulator is not None:
            await self.simulator.stop()

    def _record(self, events: Sequence[Any]) -> None:
        if self.simulator is not None:
            self.simulator.record_events(events)

    async def _start_writer(self) -> None:
        assert self.influxdb is not None
        writer = EventWriter(
            self.influxdb.url,
            DATABASE,
            Schema.A if self.revision is Revision.R1 else Schema.B,
            WRITER_RATE,
            seed=int(time.time()),
            on_write=self._record,
        )
        self.stack.push_async_callback(writer.stop)
        now = datetime.now(UTC)
        count = int(BACKFILL / timedelta(minutes=1) * WRITER_RATE)
        await writer.backfill(count, now - BACKFILL, now)
        await writer.start()
        self.writer = writer

    def _prepare_config(self) -> None:
        shutil.rmtree(self.config, ignore_errors=True)
        components = self.config / "custom_components"
        components.mkdir(parents=True)
        (components / DOMAIN).symlink_to(REPO / "custom_components" / DOMAIN)
        (components / "soak_probe").symlink_to(PROBE)
        self.port = free_port()
        stored = store_http_settings(self.config, HOST, self.port)
        write_configuration(
            self.config,
            integrations=INTEGRATIONS,
            logs=LOGS,
            http=None if stored else (HOST, self.port),
        )

    async def _start_ha(self) -> None:
        session, _ = (self.session, None)
        assert session is not None
        self.ha = HomeAssistantProcess(self.config, console_log=self.config / "console.log")
        self.client = HomeAssistantClient(session, self.url, USER)
        await self.ha.start()
        self.ha_started = time.monotonic()
        self.incarnation += 1
        try:
            await make_ready(self.client, self.ha, START_TIMEOUT)
        except HomeAssistantSetupError as err:
            msg = f"{err}\n{self.ha.tail()}"
            raise HomeAssistantSetupError(msg) from err
        self.logged_in = time.monotonic()
        # The stored settings rule from now on; the YAML copy would only raise a repair.
        write_configuration(self.config, integrations=INTEGRATIONS, logs=LOGS, http=None)
        self.say(f"Home Assistant #{self.incarnation} up at {self.url}")

    async def _stop_ha(self) -> None:
        if self.ha is not None:
            await self.ha.stop()
        if self.client is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                await self.client.revoke()

    async def _set_up_entry(self) -> None:
        _, client = self._http()
        assert self.simulator is not None
        assert self.influxdb is not None
        # Onboarding adds cloud integrations that cannot work offline: they only add noise.
        for entry in await client.request("GET", "/api/config/config_entries/entry"):
            if entry.get("source") == "onboarding":
                await client.delete_entry(entry["entry_id"])
        by_service = self.simulator.service_urls
        result = await client.run_flow(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": True},
            {
                "url": self.influxdb.url,
                "backend": "influxql",
                "bucket": DATABASE,
                "organization": "ha-ingestor",
                "verify_ssl": False,
                "admin_api_url": self.simulator.admin_api_url,
                **({"api_key": self.simulator.api_key} if self.simulator.api_key else {}),
                **{k: by_service[n] for k, n in SERVICE_URL_KEYS.items() if n in by_service},
            },
        )
        if result.get("type") != "create_entry":
            msg = f"the config flow ended with {result.get('type')}: {result}"
            raise HomeAssistantSetupError(msg)
        entry_id = result["result"]["entry_id"]
        options = await client.run_flow(
            "/api/config/config_entries/options/flow", {"handler": entry_id}, OPTIONS
        )
        if options.get("type") != "create_entry":
            msg = f"the options flow ended with {options.get('type')}: {options}"
            raise HomeAssistantSetupError(msg)
        self.say(f"entry set up: refresh every {UPDATE_INTERVAL} s, delivery check on")

    # --- background: samples, the log, the bus --------------------------------------------------

    async def _sampler(self) -> None:
        while True:
            await asyncio.sleep(self.sample_every)
            try:
                await self._sample()
            except (HomeAssistantSetupError, aiohttp.ClientError, OSError, TimeoutError) as err:
                self.errors.append(f"sample at {self.now():.0f} s: {type(err).__name__}")

    async def _ensure_login(self) -> None:
        _, client = self._http()
        if time.monotonic() - self.logged_in > RELOGIN_EVERY:
            await client.login()
            self.logged_in = time.monotonic()

    async def _sample(self) -> None:
        if self.ha is None or self.ha.process is None or not self.ha.alive:
            return
        pid = self.ha.process.pid
        stats: Mapping[str, Any] = {}
        with contextlib.suppress(HomeAssistantSetupError, aiohttp.ClientError, TimeoutError):
            await self._ensure_login()
            _, client = self._http()
            (answer,) = await client.websocket([{"type": "soak_probe/stats"}])
            stats = answer.get("result") or {}
        rss = measure.rss_bytes(pid)
        self.logs.poll()
        self.samples.append(
            Sample(
                t=round(self.now(), 1),
                incarnation=self.incarnation,
                since_start=round(time.monotonic() - self.ha_started, 1),
                rss_mib=None if rss is None else round(rss / measure.MIB, 2),
                fds=measure.open_fds(pid),
                tasks=stats.get("tasks"),
                tasks_ours=stats.get("tasks_ours"),
                timers=stats.get("timers"),
                timers_ours=stats.get("timers_ours"),
                threads=stats.get("threads"),
                log_lines=dict(self.logs.levels),
                tracebacks=self.logs.tracebacks,
            )
        )

    async def _log_reader(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.logs.poll()

    async def _feed(self) -> None:
        """Home Assistant's bus into influxd, as the ingestor does; again after every break."""
        assert self.influxdb is not None
        schema = Schema.A if self.revision is Revision.R1 else Schema.B
        count = 0
        while True:
            try:
                _, client = self._http()
                async with client.connect_websocket() as ws:
                    ingestor = DeliveryIngestor(ws, self.influxdb, DATABASE, schema=schema)
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        await ingestor.start()
                    try:
                        while ingestor.running:
                            for entity_id in FEED_ENTITIES:
                                count += 1
                                state = {"state": str(count % 97), "attributes": {}}
                                async with asyncio.timeout(REQUEST_TIMEOUT):
                                    await client.request("POST", f"/api/states/{entity_id}", state)
                                self.feed_events += 1
                            await asyncio.sleep(FEED_STEP)
                    finally:
                        await ingestor.stop()
            except (
                HomeAssistantSetupError,
                aiohttp.ClientError,
                OSError,
                TimeoutError,
                TypeError,  # aiohttp's answer to reading a closed websocket
                AssertionError,  # a subscription refused while Home Assistant stops
            ):
                self.feed_restarts += 1
            await asyncio.sleep(3.0)

    # --- faults -------------------------------------------------------------------------------

    async def _fault(self, step: Step, episode: Episode) -> None:  # noqa: C901
        simulator = self.simulator
        assert simulator is not None
        match step.kind:
            case FaultKind.INFLUXD_KILLED:
                assert self.influxdb is not None
                process = self.influxdb.process
                if process is not None:
                    process.kill()
                    await asyncio.to_thread(process.wait, 10)
                self.influxdb.process = None
                await asyncio.sleep(step.hold)
                await asyncio.to_thread(self.influxdb.start)
            case FaultKind.SERVICES_500 | FaultKind.SERVICES_GARBLED | FaultKind.SERVICES_SLOW:
                fault = {
                    FaultKind.SERVICES_500: Fault.SERVER_ERROR,
                    FaultKind.SERVICES_GARBLED: Fault.GARBLED,
                    FaultKind.SERVICES_SLOW: Fault.SLOW,
                }[step.kind]
                delay = SLOW_DELAY if fault is Fault.SLOW else 0.0
                for service in simulator.services:
                    await simulator.set_fault(service, fault, delay=delay)
                await asyncio.sleep(step.hold)
                await simulator.clear_faults()
            case FaultKind.ADMIN_429:
                limits = (
                    getattr(simulator, "rate_per_minute", None),
                    getattr(simulator, "burst", 0),
                )
                if limits[0] is None:
                    episode.notes["skipped"] = "only R3 has a rate limit"
                    await asyncio.sleep(step.hold)
                    return
                self._set_rate_limit(simulator, TRICKLE_PER_MINUTE, 1)
                await asyncio.sleep(step.hold)
                self._set_rate_limit(simulator, *limits)
                episode.notes["answered_429"] = sum(
                    r.status == 429 for r in simulator.requests_to(ADMIN_API)
                )
            case FaultKind.ADMIN_KEY_REFUSED:
                await simulator.set_fault(ADMIN_API, Fault.UNAUTHORIZED)
                await asyncio.sleep(step.hold)
                await simulator.clear_fault(ADMIN_API)
                episode.notes["reauth_flows"] = await self._reauth_flows()
            case FaultKind.SIMULATOR_RESTARTED:
                ports = {
                    name: int(url.rsplit(":", 1)[1]) for name, url in simulator.service_urls.items()
                }
                before = simulator.figures.session_events
                await simulator.stop()
                await asyncio.sleep(step.hold)
                await self._start_simulator(ports)
                assert self.simulator is not None
                episode.notes["session_events"] = [before, self.simulator.figures.session_events]
            case FaultKind.HA_RESTARTED:
                await self._stop_ha()
                self.logs.rotated()
                await self._start_ha()
            case FaultKind.BURST:
                self.burst = await self._burst(step.hold)
                episode.notes.update(self.burst)

    @staticmethod
    def _set_rate_limit(simulator: IngestorSimulator, per_minute: float, burst: int) -> None:
        simulator.rate_per_minute = per_minute  # type: ignore[attr-defined]
        simulator.burst = burst  # type: ignore[attr-defined]
        # Fresh buckets: the new limit holds from the next request on.
        simulator._buckets.clear()  # type: ignore[attr-defined]

    async def _reauth_flows(self) -> int:
        _, client = self._http()
        with contextlib.suppress(HomeAssistantSetupError, aiohttp.ClientError, TimeoutError):
            (answer,) = await client.websocket([{"type": "config_entries/flow/progress"}])
            return sum(
                1
                for flow in answer.get("result") or []
                if flow.get("handler") == DOMAIN
                and flow.get("context", {}).get("source") == "reauth"
            )
        return -1

    async def _burst(self, hold: float) -> dict[str, Any]:
        """BURST_RATE state changes per second for `hold` seconds, over REST, paced."""
        _, client = self._http()
        begin = time.monotonic()
        end = begin + hold
        counters = {"next": 0, "sent": 0, "failed": 0}

        async def worker() -> None:
            while True:
                n = counters["next"]
                counters["next"] += 1
                due = begin + n / BURST_RATE
                if due >= end:
                    return
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                entity_id = f"sensor.soak_burst_{n % BURST_ENTITIES}"
                try:
                    await client.request("POST", f"/api/states/{entity_id}", {"state": str(n)})
                    counters["sent"] += 1
                except (HomeAssistantSetupError, aiohttp.ClientError, TimeoutError):
                    counters["failed"] += 1

        await asyncio.gather(*(worker() for _ in range(BURST_WORKERS)))
        took = time.monotonic() - begin
        return {
            "state_changes": counters["sent"],
            "failed": counters["failed"],
            "seconds": round(took, 1),
            "per_second": round(counters["sent"] / took, 1) if took else 0.0,
        }

    # --- checkpoints ----------------------------------------------------------------------------

    async def _states(self) -> dict[str, Mapping[str, Any]]:
        """unique_id -> state object of every enabled entity of ours."""
        _, client = self._http()
        (registry,) = await client.websocket([{"type": "config/entity_registry/list"}])
        self.entity_ids = {
            str(entry.get("unique_id", "")): entry["entity_id"]
            for entry in registry.get("result", [])
            if entry.get("platform") == DOMAIN and not entry.get("disabled_by")
        }
        by_entity = dict(self.entity_ids)
        states = {s["entity_id"]: s for s in await client.request("GET", "/api/states")}
        return {uid: states[eid] for uid, eid in by_entity.items() if eid in states}

    async def _await_every_entity(self) -> None:
        """Before the first checkpoint: the storage figures come a little after the entry."""
        began = time.monotonic()
        while time.monotonic() - began < SETTLE_TIMEOUT:
            states = await self._states()
            if states and all(s["state"] != "unavailable" for s in states.values()):
                break
            await asyncio.sleep(2.0)
        self.start_settle_s = round(time.monotonic() - began, 1)

    @staticmethod
    def _find(states: Mapping[str, Mapping[str, Any]], suffix: str) -> Mapping[str, Any] | None:
        return next((s for uid, s in states.items() if uid.endswith(suffix)), None)

    async def _checkpoint(self, after: str) -> None:
        """Set a figure only the simulator knows, wait for a refresh that read it, compare."""
        simulator = self.simulator
        assert simulator is not None
        self._figure_round += 1
        queue = (self._figure_round * 1237) % 9000 + 100
        simulator.set_figures(queue_size=queue)
        set_at = datetime.now(UTC)
        began = time.monotonic()
        states: dict[str, Mapping[str, Any]] = {}
        mismatches: list[str] = []
        refreshed = False
        try:
            await self._ensure_login()
            while time.monotonic() - began < CHECKPOINT_WAIT:
                states = await self._states()
                fill = self._find(states, "_ingestion_queue_fill")
                if fill is not None and self._read_after(fill, set_at, queue):
                    refreshed = True
                    break
                await asyncio.sleep(1.0)
            if refreshed:
                checked, mismatches = await self._compare(states, queue)
            else:
                checked, mismatches = 0, [f"no refresh within {CHECKPOINT_WAIT:g} s"]
        except (HomeAssistantSetupError, aiohttp.ClientError, OSError, TimeoutError) as err:
            checked, mismatches = 0, [f"checkpoint failed: {type(err).__name__}: {err}"]
        checkpoint = Checkpoint(
            round(self.now(), 1), after, checked, mismatches, round(time.monotonic() - began, 1)
        )
        self.checkpoints.append(checkpoint)
        verdict = "right" if checkpoint.right else f"WRONG: {'; '.join(mismatches)}"
        self.say(f"checkpoint after {after}: {checked} figures {verdict}")

    def _read_after(self, fill: Mapping[str, Any], set_at: datetime, queue: int) -> bool:
        """Whether a refresh that began after `set_at` wrote the queue-fill sensor.

        A refresh already under way at `set_at` may still write the old figure; one that
        ends INFLIGHT later began after it. The new figure itself also proves it.
        """
        assert self.simulator is not None
        reported = _reported(fill)
        wanted = queue / self.simulator.figures.queue_maxsize * 100
        if reported >= set_at and abs(_number(fill["state"]) - wanted) <= FILL_TOLERANCE:
            return True
        return reported >= set_at + INFLIGHT

    async def _compare(
        self, states: Mapping[str, Mapping[str, Any]], queue: int
    ) -> tuple[int, list[str]]:
        assert self.simulator is not None
        mismatches: list[str] = []
        checked = 0

        def expect(suffix: str, wanted: str) -> None:
            nonlocal checked
            state = self._find(states, suffix)
            checked += 1
            if state is None:
                mismatches.append(f"no entity *{suffix}")
            elif state["state"] != wanted:
                mismatches.append(f"{state['entity_id']} = {state['state']!r}, want {wanted!r}")

        # What the simulator says: the queue it reports, every service healthy.
        fill = self._find(states, "_ingestion_queue_fill")
        wanted_fill = queue / self.simulator.figures.queue_maxsize * 100
        checked += 1
        if fill is None or not abs(_number(fill["state"]) - wanted_fill) <= FILL_TOLERANCE:
            got = None if fill is None else fill["state"]
            mismatches.append(f"queue fill {got!r}, want {wanted_fill:.2f}")
        for service in self.simulator.services:
            expect(f"_{service}_status", STATUS_OK)
        expect("_influxdb_connected", "on")
        expect("_admin_api_connected", "on")
        expect("_data_source", "influxdb")
        # What influxd says: events and entities in the period, at the moment of the refresh.
        for suffix, distinct in (("_events_in_period", False), ("_active_entities", True)):
            state = self._find(states, suffix)
            checked += 1
            if state is None:
                mismatches.append(f"no entity *{suffix}")
                continue
            low, high = await self._influx_band(_reported(state), distinct=distinct)
            value = _number(state["state"])
            if not low <= value <= high:
                mismatches.append(
                    f"{state['entity_id']} = {state['state']}, influxd: {low}..{high}"
                )
        unavailable = sorted(s["entity_id"] for s in states.values() if s["state"] == "unavailable")
        checked += 1
        if unavailable:
            mismatches.append(f"unavailable: {', '.join(unavailable[:5])}")
        return checked, mismatches

    async def _influx_band(self, reported: datetime, *, distinct: bool) -> tuple[int, int]:
        """What influxd held at the refresh: at least the inner window, at most the outer."""
        period = Period(DEFAULT_PERIOD).duration
        high = reported
        low = reported - REFRESH_SLACK
        inner = await self._count(high - period, low, distinct=distinct)
        outer = await self._count(low - period, high, distinct=distinct)
        return inner, outer

    async def _count(self, start: datetime, stop: datetime, *, distinct: bool) -> int:
        assert self.influxdb is not None
        query = (
            f"SELECT COUNT(state_value) FROM {MEASUREMENT} WHERE time >= '{_rfc3339(start)}'"  # noqa: S608
            f" AND time < '{_rfc3339(stop)}'{' GROUP BY entity_id' if distinct else ''}"
        )
        if self.revision is Revision.R1:
            query = query.replace("state_value", "state")
        answer = await asyncio.to_thread(self.influxdb.query, query, DATABASE)
        series = answer["results"][0].get("series", [])  # type: ignore[index]
        if distinct:
            return sum(1 for s in series if s["values"][0][1])
        return int(series[0]["values"][0][1]) if series else 0

    # --- the recorder and the results -----------------------------------------------------------

    async def _recorder_rows(self) -> measure.RecorderRows:
        # The recorder commits every 5 s: what the last seconds changed is in the file.
        await asyncio.sleep(6)
        return await asyncio.to_thread(
            measure.recorder_rows,
            self.config / "home-assistant_v2.db",
            sorted(self.entity_ids.values()),
            self._wall_started,
        )

    def _results(self, rows: measure.RecorderRows | None) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "revision": self.revision.value,
            "update_interval_s": UPDATE_INTERVAL,
            "ran_s": round(self.now(), 1),
            "incarnations": self.incarnation,
            "start_settle_s": self.start_settle_s,
            "samples": [asdict(s) for s in self.samples],
            "checkpoints": [asdict(c) | {"right": c.right} for c in self.checkpoints],
            "episodes": [
                asdict(e) | {"logged_once_each_way": e.logged_once_each_way} for e in self.episodes
            ],
            "log": {
                "levels": dict(self.logs.levels),
                "ours": dict(self.logs.our_levels),
                "tracebacks": self.logs.tracebacks,
                "our_tracebacks": self.logs.our_tracebacks,
                "traceback_loggers": self.logs.tracebacks_seen,
            },
            "recorder": None if rows is None else asdict(rows),
            "entities": len(self.entity_ids),
            "feed": {"events": self.feed_events, "restarts": self.feed_restarts},
            "writer": {
                "written": 0 if self.writer is None else self.writer.written,
                "failed_writes": 0 if self.writer is None else self.writer.failed_writes,
            },
            "errors": self.errors,
        }


def _reported(state: Mapping[str, Any]) -> datetime:
    text = state.get("last_reported") or state.get("last_updated") or "1970-01-01T00:00:00+00:00"
    return datetime.fromisoformat(str(text))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
