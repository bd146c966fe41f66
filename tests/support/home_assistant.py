"""A real Home Assistant process, and the REST and WebSocket calls that set it up.

Shared by scripts/develop (the demo) and the browser test: both start `python -m
homeassistant` on 127.0.0.1, onboard it over REST with a local user, confirm its HTTP
settings, and then drive flows or read states as that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

    import aiohttp

# Decoded JSON from Home Assistant's APIs.
type Json = Any

REPO: Final = Path(__file__).resolve().parent.parent.parent
DOMAIN: Final = "ha_ingestor"
HOST: Final = "127.0.0.1"

RESTART_EXIT_CODE: Final = 100
START_TIMEOUT: Final = 180.0
STOP_TIMEOUT: Final = 60.0
REQUEST_TIMEOUT: Final = 30.0

ONBOARDING_STEPS: Final = ("user", "core_config", "analytics", "integration")
# The country onboarding's core_config step leaves unset when no browser answers it (the
# frontend guesses one from the browser): without one, Home Assistant raises a repair.
FALLBACK_COUNTRY: Final = "US"
# Repairs a local demo cannot avoid (domain, issue id): Home Assistant run from a Python
# virtual environment is the deprecated "Core" installation method.
UNAVOIDABLE_REPAIRS: Final = frozenset({("homeassistant", "deprecated_method")})


class HomeAssistantSetupError(Exception):
    """Home Assistant could not be started or set up; the message says why (never a secret)."""


class FormError(HomeAssistantSetupError):
    """A flow form asks for something the caller does not know."""


def _no_log(_message: str) -> None:
    """Default status sink: silent."""


# --- configuration ---------------------------------------------------------------------------


def configuration_yaml(
    *,
    header: str,
    integrations: Iterable[str],
    logs: Mapping[str, str],
    http: tuple[str, int] | None,
) -> str:
    """configuration.yaml: the integrations to load, log levels and, optionally, `http:`.

    `http` only while Home Assistant has no stored HTTP settings: 2026.x moves the section
    into its store on the first start as a *pending* configuration (to be promoted with
    `HomeAssistantClient.promote_http_config`), and reports it as ignored on later starts.
    """
    lines = [f"# {header}", *(f"{name}:" for name in integrations)]
    lines += ["logger:", "  default: warning", "  logs:"]
    lines += [f"    {logger}: {level}" for logger, level in logs.items()]
    if http is not None:
        host, port = http
        lines += ["http:", f"  server_host: {host}", f"  server_port: {port}"]
    return "\n".join(lines) + "\n"


def local_country(environ: Mapping[str, str]) -> str:
    """The territory of the user's locale (`de_DE.UTF-8` -> `DE`), else FALLBACK_COUNTRY."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        language, _, territory = environ.get(name, "").partition(".")[0].partition("_")
        if language and len(territory) == 2 and territory.isalpha():
            return territory.upper()
    return FALLBACK_COUNTRY


def http_store_document(host: str, port: int) -> dict[str, Any] | None:
    """Home Assistant's stored HTTP settings for `host`:`port`, confirmed and YAML-migrated.

    Written before the first start, they replace an `http:` section, which 2026.x would
    migrate into this store and report as deprecated YAML in a repair. Built with Home
    Assistant's own schema, so every setting gets its default. None where Home Assistant has
    no such store (before 2026.x): there `http:` in configuration.yaml is the way.
    """
    try:
        from homeassistant.components.http import config as http_config  # noqa: PLC0415
        from homeassistant.util import dt as dt_util  # noqa: PLC0415
    except ImportError:
        return None
    settings = http_config.HTTP_STORAGE_SCHEMA({"server_host": host, "server_port": port})
    stable = {
        **settings,
        "created_at": dt_util.utcnow().isoformat(),
        "error": None,
        "error_message": None,
    }
    return {
        "version": http_config.STORAGE_VERSION,
        "minor_version": http_config.STORAGE_MINOR_VERSION,
        "key": http_config.STORAGE_KEY,
        "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
    }


def http_store_path(config: Path) -> Path:
    """Where Home Assistant keeps its HTTP settings."""
    return config / ".storage" / "http"


def store_http_settings(config: Path, host: str, port: int) -> bool:
    """Write the HTTP settings into Home Assistant's store; False where it has none."""
    document = http_store_document(host, port)
    if document is None:
        return False
    path = http_store_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return True


def link_custom_components(config: Path, target: Path) -> None:
    """Point <config>/custom_components at this checkout's (or any) custom_components."""
    link = config / "custom_components"
    if link.is_symlink() and link.readlink() != target:
        link.unlink()
    if not link.is_symlink():
        if link.exists():
            msg = f"{link} is not the link to {target} that is needed; move it away"
            raise HomeAssistantSetupError(msg)
        link.symlink_to(target, target_is_directory=True)


# --- flows -----------------------------------------------------------------------------------


def fill_form(schema: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to a flow form (its serialised `data_schema`).

    A field takes our value when we have one, else the form's default, else its suggested
    value; optional fields without any are left out. Sections nest their fields.
    """
    answer: dict[str, Any] = {}
    for item in schema:
        name = item["name"]
        if item.get("type") == "expandable":
            nested = values.get(name)
            inner = nested if isinstance(nested, dict) else values
            answer[name] = fill_form(item.get("schema", []), inner)
            continue
        suggested = (item.get("description") or {}).get("suggested_value")
        if name in values:
            answer[name] = values[name]
        elif "default" in item:
            answer[name] = item["default"]
        elif suggested is not None:
            answer[name] = suggested
        elif item.get("required"):
            msg = f"the form asks for {name!r}, which is not filled in"
            raise FormError(msg)
    return answer


def describe_errors(result: Mapping[str, Any]) -> str:
    """A flow step's errors as text (field -> error key); never the submitted values."""
    errors = result.get("errors") or {}
    return ", ".join(f"{key}: {value}" for key, value in errors.items()) or "none"


# --- REST and WebSocket ----------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """The local user onboarding creates (loopback-only instances: a fixed login is fine)."""

    name: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class EntityState:
    """One entity of the integration: registry key and state."""

    entity_id: str
    unique_id: str
    state: str

    @property
    def live(self) -> bool:
        """A sensor with a real value: what "it works" looks like."""
        return self.entity_id.startswith("sensor.") and self.state not in {
            "unknown",
            "unavailable",
            "",
        }


@dataclass
class HomeAssistantClient:
    """REST and WebSocket calls to a Home Assistant, as `user` once logged in."""

    session: aiohttp.ClientSession
    # An aiohttp test client takes relative paths: base_url "".
    base_url: str
    user: User | None = None
    # Appended to a refused login's message: how to get out of it.
    login_hint: str = ""
    # Whose values a refused flow step names, in its message.
    answers_from: str = "the given"
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def client_id(self) -> str:
        """IndieAuth: a client id is a URL, and a redirect URI on the same host needs no lookup."""
        return f"{self.base_url}/"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    def _user(self) -> User:
        if self.user is None:
            msg = "no user to onboard or log in with"
            raise HomeAssistantSetupError(msg)
        return self.user

    async def request(self, method: str, path: str, payload: Json = None) -> Json:
        """One JSON request; HTTP errors become HomeAssistantSetupError (status and path)."""
        async with self.session.request(
            method, f"{self.base_url}{path}", json=payload, headers=self._headers
        ) as response:
            text = await response.text()
            if response.status >= 400:
                msg = f"{method} {path} answered {response.status}: {text[:300]}"
                raise HomeAssistantSetupError(msg)
            return json.loads(text) if text else None

    async def wait_until_up(self, process_alive: Callable[[], bool], limit: float) -> float:
        """Poll /api/onboarding until it answers; returns the seconds it took."""
        import aiohttp  # noqa: PLC0415

        started = time.monotonic()
        while time.monotonic() - started < limit:
            if not process_alive():
                msg = "Home Assistant exited during start-up"
                raise HomeAssistantSetupError(msg)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                # Any answer will do: Home Assistant registers every route before it listens.
                async with self.session.get(f"{self.base_url}/api/onboarding") as response:
                    if response.status < 500:
                        return time.monotonic() - started
            await asyncio.sleep(0.25)
        msg = f"Home Assistant did not answer on {self.base_url} within {limit:.0f} s"
        raise HomeAssistantSetupError(msg)

    async def _token(self, data: Mapping[str, str]) -> None:
        async with self.session.post(f"{self.base_url}/auth/token", data=dict(data)) as response:
            if response.status != 200:
                msg = f"/auth/token answered {response.status}"
                raise HomeAssistantSetupError(msg)
            tokens = await response.json()
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens.get("refresh_token", self.refresh_token)

    async def _exchange(self, code: str) -> None:
        await self._token(
            {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        )

    async def onboarding_steps(self) -> dict[str, bool]:
        """Step -> done; every step is done when the onboarding API is gone (404)."""
        async with self.session.get(f"{self.base_url}/api/onboarding") as response:
            if response.status == 404:
                return dict.fromkeys(ONBOARDING_STEPS, True)
            if response.status != 200:
                msg = f"GET /api/onboarding answered {response.status}"
                raise HomeAssistantSetupError(msg)
            return {step["step"]: step["done"] for step in await response.json()}

    async def onboard_or_login(self) -> bool:
        """Finish onboarding with the user, or log in as it; True if it onboarded now."""
        user = self._user()
        steps = await self.onboarding_steps()
        onboarded_now = False
        if not steps.get("user"):
            result = await self.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": user.name,
                    "username": user.username,
                    "password": user.password,
                    "language": "en",
                },
            )
            await self._exchange(result["auth_code"])
            onboarded_now = True
        else:
            await self.login()
        for step in ("core_config", "analytics"):
            if not steps.get(step):
                await self.request("POST", f"/api/onboarding/{step}", {})
        if not steps.get("integration"):
            await self.request(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": self.client_id},
            )
        return onboarded_now

    async def login(self) -> None:
        """The login flow a browser goes through, with the user's password."""
        user = self._user()
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": user.username, "password": user.password},
        )
        if result.get("type") != "create_entry":
            msg = (
                f"cannot log in as {user.username!r} (errors: {describe_errors(result)}); "
                f"was its password changed?{f' {self.login_hint}' if self.login_hint else ''}"
            )
            raise HomeAssistantSetupError(msg)
        await self._exchange(result["result"])

    async def revoke(self) -> None:
        """Drop this client's refresh token, so logins do not pile up in the user's profile."""
        if self.refresh_token is None:
            return
        token, self.refresh_token = self.refresh_token, None
        # Best effort: Home Assistant may already be gone.
        with contextlib.suppress(Exception):
            async with self.session.post(f"{self.base_url}/auth/revoke", data={"token": token}):
                pass
        self.access_token = None

    @contextlib.asynccontextmanager
    async def connect_websocket(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """Home Assistant's WebSocket API, authenticated with this client's access token."""
        async with self.session.ws_connect(f"{self.base_url}/api/websocket") as ws:
            hello = await ws.receive_json()
            if hello.get("type") != "auth_required":
                msg = f"unexpected WebSocket greeting: {hello.get('type')}"
                raise HomeAssistantSetupError(msg)
            await ws.send_json({"type": "auth", "access_token": self.access_token})
            auth = await ws.receive_json()
            if auth.get("type") != "auth_ok":
                msg = "WebSocket authentication failed"
                raise HomeAssistantSetupError(msg)
            yield ws

    async def websocket(self, commands: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Send commands over one authenticated WebSocket; their result messages, in order."""
        results: list[Mapping[str, Any]] = []
        async with self.connect_websocket() as ws:
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while True:
                    message = await ws.receive_json()
                    if message.get("id") == number and message.get("type") == "result":
                        results.append(message)
                        break
        return results

    async def promote_http_config(self) -> bool:
        """Confirm the pending HTTP settings; False when nothing was pending."""
        (result,) = await self.websocket([{"type": "http/config/promote"}])
        if result.get("success"):
            return True
        error = result.get("error") or {}
        if "No pending" in str(error.get("message", "")):
            return False
        msg = f"http/config/promote failed: {error}"
        raise HomeAssistantSetupError(msg)

    async def save_dashboard(
        self, url_path: str, title: str, config: Mapping[str, Any], icon: str | None = None
    ) -> bool:
        """Store `config` as a storage-mode dashboard, created first if absent; True if created."""
        (listed,) = await self.websocket([{"type": "lovelace/dashboards/list"}])
        created = not any(d.get("url_path") == url_path for d in listed.get("result") or [])
        commands: list[dict[str, Any]] = []
        if created:
            commands.append(
                {
                    "type": "lovelace/dashboards/create",
                    "url_path": url_path,
                    "title": title,
                    "show_in_sidebar": True,
                    "require_admin": False,
                    **({"icon": icon} if icon else {}),
                }
            )
        commands.append({"type": "lovelace/config/save", "url_path": url_path, "config": config})
        for command, result in zip(commands, await self.websocket(commands), strict=True):
            if not result.get("success"):
                msg = f"{command['type']} failed: {result.get('error')}"
                raise HomeAssistantSetupError(msg)
        return created

    async def recovery_mode(self) -> bool:
        """Whether Home Assistant runs in recovery mode (it loads no custom integration)."""
        return bool((await self.request("GET", "/api/config")).get("recovery_mode"))

    async def wait_until_running(self, limit: float = START_TIMEOUT) -> None:
        """Until Home Assistant has started every integration (its `started` event is past)."""
        deadline = time.monotonic() + limit
        while (await self.request("GET", "/api/config")).get("state") != "RUNNING":
            if time.monotonic() > deadline:
                msg = f"Home Assistant did not finish starting within {limit:.0f} s"
                raise HomeAssistantSetupError(msg)
            await asyncio.sleep(0.25)

    async def ensure_country(self, country: str) -> bool:
        """Set the country where none is set (as the onboarding frontend does); True if set."""
        if (await self.request("GET", "/api/config")).get("country"):
            return False
        (result,) = await self.websocket([{"type": "config/core/update", "country": country}])
        if not result.get("success"):
            msg = f"config/core/update failed: {result.get('error')}"
            raise HomeAssistantSetupError(msg)
        return True

    async def repairs(self) -> set[tuple[str, str]]:
        """(domain, issue id) of every repair shown and not ignored."""
        (result,) = await self.websocket([{"type": "repairs/list_issues"}])
        issues = (result.get("result") or {}).get("issues", [])
        return {(i["domain"], i["issue_id"]) for i in issues if not i.get("ignored")}

    async def delete_entry(self, entry_id: str) -> None:
        """Remove a config entry (and its devices and entities)."""
        await self.request("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    async def entries(self, domain: str = DOMAIN) -> list[Mapping[str, Any]]:
        """The config entries of one integration."""
        entries = await self.request("GET", f"/api/config/config_entries/entry?domain={domain}")
        return [entry for entry in entries if entry.get("domain") == domain]

    async def run_flow(
        self, start_path: str, start_payload: Mapping[str, Any], values: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Drive a config or options flow through its forms; returns the final result."""
        step_path = start_path.rsplit("/", 1)[0] if start_path.endswith("/flow") else start_path
        result = await self.request("POST", start_path, dict(start_payload))
        for _ in range(10):
            if result.get("type") != "form":
                return dict(result)
            step = result.get("step_id")
            answer = fill_form(result.get("data_schema") or [], values)
            result = await self.request("POST", f"{step_path}/flow/{result['flow_id']}", answer)
            if result.get("type") == "form" and result.get("step_id") == step:
                # The same form again: our answer was refused.
                msg = (
                    f"flow step {step!r} refused {self.answers_from} values:"
                    f" {describe_errors(result)}"
                )
                raise HomeAssistantSetupError(msg)
        msg = f"flow did not finish: {result.get('type')} {result.get('step_id')}"
        raise HomeAssistantSetupError(msg)

    async def entity_states(self, domain: str = DOMAIN) -> list[EntityState]:
        """Every enabled entity of one integration with its registry key and state."""
        (registry,) = await self.websocket([{"type": "config/entity_registry/list"}])
        ours = {
            entry["entity_id"]: str(entry.get("unique_id", ""))
            for entry in registry.get("result", [])
            if entry.get("platform") == domain and not entry.get("disabled_by")
        }
        states = await self.request("GET", "/api/states")
        return [
            EntityState(s["entity_id"], ours[s["entity_id"]], s["state"])
            for s in states
            if s["entity_id"] in ours
        ]

    async def devices(self, domain: str = DOMAIN) -> list[Mapping[str, Any]]:
        """The device registry entries that belong to one integration's config entries."""
        entry_ids = {entry["entry_id"] for entry in await self.entries(domain)}
        (registry,) = await self.websocket([{"type": "config/device_registry/list"}])
        return [
            device
            for device in registry.get("result", [])
            if entry_ids & set(device.get("config_entries", []))
        ]


# --- the process -----------------------------------------------------------------------------


@dataclass
class HomeAssistantProcess:
    """`python -m homeassistant` on one configuration directory, in its own session."""

    config: Path
    # Where its stdout/stderr go; None: this process's own.
    console_log: Path | None = None
    log: Callable[[str], None] = _no_log
    process: asyncio.subprocess.Process | None = None

    @property
    def log_file(self) -> Path:
        """Home Assistant's own log file."""
        return self.config / "home-assistant.log"

    @property
    def alive(self) -> bool:
        """Started and not yet exited."""
        return self.process is not None and self.process.returncode is None

    def command(self) -> list[str]:
        """The command line: this interpreter, no package installs at start-up."""
        return [
            sys.executable,
            "-m",
            "homeassistant",
            "--config",
            str(self.config),
            "--skip-pip",
            "--log-no-color",
        ]

    async def start(self) -> asyncio.subprocess.Process:
        """Launch it (a new process each call; the previous one must have exited)."""
        output = None if self.console_log is None else self.console_log.open("ab")
        try:
            # Its own session: a terminal's Ctrl-C reaches only the caller, which stops it in order.
            self.process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT if output else None,
                start_new_session=True,
                cwd=self.config,
            )
        finally:
            if output is not None:
                output.close()
        return self.process

    async def wait(self) -> int:
        """Its exit code, once it exits."""
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, limit: float = STOP_TIMEOUT) -> None:
        """SIGTERM (Home Assistant saves its state), SIGKILL if it hangs."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.log("stopping Home Assistant")
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), limit)
        except TimeoutError:
            self.log(f"Home Assistant did not stop within {limit:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def kill(self) -> None:
        """No more waiting."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def tail(self, count: int = 25) -> str:
        """The last lines of its console output and of its log file."""
        parts = []
        for path in (self.console_log, self.log_file):
            if path is not None and path.is_file():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:]
                if lines:
                    parts.append(f"--- last lines of {path} ---\n" + "\n".join(lines))
        return "\n".join(parts)


@dataclass(frozen=True)
class Readiness:
    """What `make_ready` did."""

    took: float
    onboarded: bool
    promoted: bool
    # The country set now; None when one was set before.
    country: str | None = None


async def make_ready(
    client: HomeAssistantClient,
    process: HomeAssistantProcess,
    limit: float = START_TIMEOUT,
    *,
    country: str = FALLBACK_COUNTRY,
) -> Readiness:
    """Wait until it answers, onboard or log in, refuse recovery mode, confirm HTTP settings.

    A Home Assistant without a country gets `country`.
    """
    took = await client.wait_until_up(lambda: process.alive, limit)
    onboarded = await client.onboard_or_login()
    country_set = await client.ensure_country(country)
    if await client.recovery_mode():
        msg = (
            "Home Assistant started in recovery mode (no custom integrations);"
            f" the reason is in {process.log_file}"
        )
        raise HomeAssistantSetupError(msg)
    promoted = await client.promote_http_config()
    return Readiness(
        took, onboarded=onboarded, promoted=promoted, country=country if country_set else None
    )


@dataclass
class RunningHomeAssistant:
    """A started, onboarded Home Assistant and a client logged in as its user."""

    url: str
    user: User
    process: HomeAssistantProcess
    client: HomeAssistantClient
    readiness: Readiness


def write_configuration(
    config: Path,
    *,
    integrations: Sequence[str],
    logs: Mapping[str, str],
    http: tuple[str, int] | None,
) -> None:
    """<config>/configuration.yaml for `running_home_assistant`."""
    config.mkdir(parents=True, exist_ok=True)
    (config / "configuration.yaml").write_text(
        configuration_yaml(
            header="Written by tests/support/home_assistant.py",
            integrations=integrations,
            logs=logs,
            http=http,
        ),
        encoding="utf-8",
    )


@contextlib.asynccontextmanager
async def running_home_assistant(  # noqa: PLR0913
    config: Path,
    port: int,
    user: User,
    *,
    integrations: Sequence[str] = ("config",),
    logs: Mapping[str, str] | None = None,
    custom_components: Path = REPO / "custom_components",
    limit: float = START_TIMEOUT,
) -> AsyncIterator[RunningHomeAssistant]:
    """A Home Assistant in `config` on 127.0.0.1:`port`, onboarded; stopped when the block ends."""
    import aiohttp  # noqa: PLC0415

    logs = dict(logs or {})
    stored = store_http_settings(config, HOST, port)
    write_configuration(
        config, integrations=integrations, logs=logs, http=None if stored else (HOST, port)
    )
    link_custom_components(config, custom_components)
    process = HomeAssistantProcess(config, console_log=config / "console.log")
    url = f"http://{HOST}:{port}"
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    ) as session:
        client = HomeAssistantClient(session, url, user)
        try:
            await process.start()
            try:
                readiness = await make_ready(client, process, limit)
            except HomeAssistantSetupError as err:
                msg = f"{err}\n{process.tail()}"
                raise HomeAssistantSetupError(msg) from err
            # The stored settings rule from now on; the YAML copy would only raise a repair.
            write_configuration(config, integrations=integrations, logs=logs, http=None)
            yield RunningHomeAssistant(url, user, process, client, readiness)
        finally:
            await client.revoke()
            await process.stop()
