"""A real InfluxDB 1.x server (`influxd`) on a free loopback port, for tests and the demo."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

START_TIMEOUT = 20.0


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_influxd() -> str:
    """Path of the influxd binary (INFLUXD overrides PATH)."""
    path = os.environ.get("INFLUXD") or shutil.which("influxd") or "/usr/bin/influxd"
    if not Path(path).exists():
        msg = "influxd not found: scripts/test builds an environment that has it"
        raise RuntimeError(msg)
    return path


@dataclass
class InfluxDBServer:
    """One running influxd with a throw-away data directory.

    `stop()` and `start()` keep the data, so a test can kill the server mid-run and bring
    the same data back on the same port.
    """

    data_dir: Path
    http_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # With auth on, the first request must be `CREATE USER ... WITH ALL PRIVILEGES`.
    auth_enabled: bool = False
    # Self-monitoring into `_internal` (influxd's default is on, every 10 s); off unless asked
    # for, so the other tests' servers write nothing of their own.
    monitor_interval: str | None = None
    # Largest `/write` body in bytes (influxd's default is 25,000,000; 0 means no limit): the
    # scale benchmark writes bigger batches.
    max_body_size: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.http_port}"

    def _write_config(self) -> Path:
        config = self.data_dir / "influxdb.conf"
        config.write_text(
            f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.data_dir}/meta"
[data]
  dir = "{self.data_dir}/data"
  wal-dir = "{self.data_dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.http_port}"
  log-enabled = false
  auth-enabled = {"true" if self.auth_enabled else "false"}
{"" if self.max_body_size is None else f"  max-body-size = {self.max_body_size}"}
[monitor]
  store-enabled = {"true" if self.monitor_interval else "false"}
  store-interval = "{self.monitor_interval or "10s"}"
[continuous_queries]
  enabled = false
""",
            encoding="utf-8",
        )
        return config

    def start(self) -> None:
        """Start influxd and wait until /ping answers 204."""
        if self.process is not None:
            return
        config = self._write_config()
        log = (self.data_dir / "influxd.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [find_influxd(), "-config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"influxd exited ({self.process.returncode}): {self.data_dir}/influxd.log"
                raise RuntimeError(msg)
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response,  # noqa: S310
            ):
                if response.status == 204:
                    return
            time.sleep(0.05)
        self.stop()
        msg = f"influxd did not answer /ping within {START_TIMEOUT} s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop influxd (the data stays)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def query(
        self, q: str, database: str | None = None, credentials: tuple[str, str] | None = None
    ) -> dict[str, object]:
        """Run InfluxQL over HTTP (set-up helper for tests, not the code under test).

        With `credentials` (user, password) a statement error raises, as set-up must not fail.
        """
        import base64  # noqa: PLC0415
        import json  # noqa: PLC0415

        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/query", data=urllib.parse.urlencode(params).encode()
        )
        if credentials is not None:
            pair = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {pair}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            result: dict[str, object] = json.loads(response.read())
        results = result.get("results")
        if credentials is not None and isinstance(results, list) and "error" in results[0]:
            msg = f"{q[:40]} failed: {results[0]['error']}"
            raise RuntimeError(msg)
        return result

    def create_database(self, name: str) -> None:
        """CREATE DATABASE (idempotent)."""
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        result = self.query(f'CREATE DATABASE "{escaped}"')
        # influxd answers 200 with the error inside (e.g. "invalid name" for `/` or `\`).
        results = result.get("results")
        for statement in results if isinstance(results, list) else []:
            if isinstance(statement, dict) and "error" in statement:
                msg = f"CREATE DATABASE failed: {statement['error']}"
                raise RuntimeError(msg)

    @contextlib.contextmanager
    def scratch_database(self, prefix: str) -> Iterator[str]:
        """A database of one test's own, dropped afterwards."""
        name = f"{prefix}_{os.urandom(4).hex()}"
        self.create_database(name)
        try:
            yield name
        finally:
            self.query(f'DROP DATABASE "{name}"')

    def write(self, database: str, lines: str | list[str], precision: str = "ns") -> None:
        """Write line protocol into a database."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        params = urllib.parse.urlencode({"db": database, "precision": precision})
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/write?{params}", data=body.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                if response.status != 204:
                    msg = f"write answered {response.status}"
                    raise RuntimeError(msg)
        except urllib.error.HTTPError as err:
            msg = f"write failed: {err.code} {err.read()[:500]!r}"
            raise RuntimeError(msg) from err


@contextlib.contextmanager
def running_auth_influxdb(
    data_dir: Path, password: str, monitor_interval: str | None = None
) -> Iterator[InfluxDBServer]:
    """A started server with auth on: `admin` (all privileges), database `events`, `reader`
    (READ on `events`) and `outsider` (no rights), all with `password`."""
    server = InfluxDBServer(data_dir, auth_enabled=True, monitor_interval=monitor_interval)
    server.start()
    try:
        for query in (
            f"CREATE USER admin WITH PASSWORD '{password}' WITH ALL PRIVILEGES",
            'CREATE DATABASE "events"',
            f"CREATE USER reader WITH PASSWORD '{password}'",
            'GRANT READ ON "events" TO "reader"',
            f"CREATE USER outsider WITH PASSWORD '{password}'",
        ):
            server.query(query, credentials=("admin", password))
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_influxdb(
    monitor_interval: str | None = None, max_body_size: int | None = None
) -> Iterator[InfluxDBServer]:
    """Context manager: a started server in a temporary directory, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="influxd-") as tmp:
        server = InfluxDBServer(
            Path(tmp), monitor_interval=monitor_interval, max_body_size=max_body_size
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
