"""Backfill of lost events: time, peak memory, requests and bytes, on a real recorder and influxd.

    scripts/bench-delivery backfill [--events 100000] [--entities 1000] [--out benchmarks]

(`python -m benchmarks.delivery backfill ...` inside the `current` environment.)

A real Home Assistant core with its recorder (SQLite in a temporary directory) records
`--events` state changes of `--entities` entities (realistic attributes); InfluxDB (a real
influxd 1.x, InfluxQL) holds none of them: every one was lost. Then the backfill
(`custom_components/ha_ingestor/backfill.py`, the action's own function) runs over the span:

1. dry run, timed; 2. dry run under tracemalloc (peak); 3. real run under tracemalloc;
4. the database emptied, real run timed; 5. the rerun, timed (writes nothing).

Timed runs are never traced (tracemalloc slows Python code several times). The results go to
`backfill.json` and `backfill.md` in `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from custom_components.ha_ingestor.backfill import BackfillResult

DATABASE = "bench_backfill"
# Events the recorder may have queued before the firing waits for it.
_BACKLOG = 10_000


async def _home_assistant(config_dir: str) -> HomeAssistant:
    """A started core with the recorder on SQLite, set up as bootstrap would."""
    from homeassistant import config_entries, loader  # noqa: PLC0415
    from homeassistant.core import HomeAssistant  # noqa: PLC0415
    from homeassistant.helpers.recorder import async_initialize_recorder  # noqa: PLC0415
    from homeassistant.setup import async_setup_component  # noqa: PLC0415

    hass = HomeAssistant(config_dir)
    loader.async_setup(hass)
    async_initialize_recorder(hass)
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    await hass.async_start()
    recorder = {"db_url": f"sqlite:///{config_dir}/home-assistant_v2.db", "commit_interval": 1}
    if not await async_setup_component(hass, "recorder", {"recorder": recorder}):
        msg = "the recorder did not set up"
        raise RuntimeError(msg)
    return hass


async def _record(hass: HomeAssistant, events: int, entities: int) -> tuple[datetime, datetime]:
    """`events` state changes, round robin over the entities; the span that holds them."""
    from homeassistant.helpers.recorder import get_instance  # noqa: PLC0415

    instance = get_instance(hass)
    await instance.async_db_ready
    start = datetime.now(UTC)
    for i in range(events):
        entity = i % entities
        hass.states.async_set(
            f"sensor.bench_{entity:04d}",
            str(i),  # a new state every time: each one is a change
            {
                "unit_of_measurement": "°C",
                "device_class": "temperature",
                "state_class": "measurement",
                "friendly_name": f"Bench sensor {entity}",
            },
        )
        if entity == entities - 1:
            await asyncio.sleep(0.002)  # one entity's changes never share a millisecond
            if instance.backlog > _BACKLOG:
                # Paced as a real home is: a recorder far behind drops events.
                await instance.async_block_till_done()
    await hass.async_block_till_done()
    await instance.async_block_till_done()
    return start - timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=1)


async def _run(
    hass: HomeAssistant, url: str, span: tuple[datetime, datetime], *, dry_run: bool, traced: bool
) -> tuple[BackfillResult, float, float | None]:
    import aiohttp  # noqa: PLC0415

    from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend  # noqa: PLC0415
    from custom_components.ha_ingestor.backfill import async_backfill  # noqa: PLC0415

    async with aiohttp.ClientSession() as session:
        backend = InfluxQLBackend(session, url, DATABASE, timeout=300)
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        result = await async_backfill(hass, backend, DATABASE, *span, dry_run=dry_run)
        seconds = time.perf_counter() - started
        peak = None
        if traced:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return result, seconds, peak


def _figures(result: BackfillResult, seconds: float, peak: float | None) -> dict[str, Any]:
    figures = result.as_dict() | {"seconds": round(seconds, 3)}
    if peak is not None:
        figures["peak_mib"] = round(peak, 1)
    return figures


async def _measure(events: int, entities: int) -> dict[str, Any]:
    from tests.support.influxdb_server import running_influxdb  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as config_dir:
        hass = await _home_assistant(config_dir)
        try:
            recording = time.perf_counter()
            span = await _record(hass, events, entities)
            recorded = time.perf_counter() - recording
            with running_influxdb() as server:
                server.create_database(DATABASE)
                runs: dict[str, Any] = {}
                runs["dry"] = _figures(
                    *await _run(hass, server.url, span, dry_run=True, traced=False)
                )
                runs["dry_traced"] = _figures(
                    *await _run(hass, server.url, span, dry_run=True, traced=True)
                )
                runs["real_traced"] = _figures(
                    *await _run(hass, server.url, span, dry_run=False, traced=True)
                )
                server.query(f'DROP DATABASE "{DATABASE}"')
                server.create_database(DATABASE)
                runs["real"] = _figures(
                    *await _run(hass, server.url, span, dry_run=False, traced=False)
                )
                runs["rerun"] = _figures(
                    *await _run(hass, server.url, span, dry_run=False, traced=False)
                )
                counted: Any = server.query(
                    "SELECT COUNT(state_value) FROM home_assistant_events", DATABASE
                )
                stored = counted["results"][0]["series"][0]["values"][0][1]
        finally:
            await hass.async_stop()
    return {
        "events": events,
        "entities": entities,
        "recorded_seconds": round(recorded, 1),
        "stored_after": stored,
        "runs": runs,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    rows = [
        "| Run | Time (s) | Peak (MiB) | Requests | Bytes sent | Missing | Written | Skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "dry": "dry run",
        "dry_traced": "dry run, traced",
        "real": "real run",
        "real_traced": "real run, traced",
        "rerun": "rerun",
    }
    for key in ("dry", "dry_traced", "real", "real_traced", "rerun"):
        run = runs[key]
        cells = (
            names[key],
            f"{run['seconds']:.2f}",
            str(run.get("peak_mib", "")),
            str(run["requests"]),
            f"{run['bytes_sent']:,}",
            f"{run['missing']:,}",
            f"{run['written']:,}",
            f"{run['skipped']:,}",
        )
        rows.append("| " + " | ".join(cells) + " |")
    intro = (
        f"{results['events']:,} lost events of {results['entities']:,} entities, recorded by a "
        "real Home Assistant recorder (SQLite), none in InfluxDB (a real influxd 1.x, "
        "InfluxQL). `scripts/bench-delivery backfill` (benchmarks/backfill.py); measured "
        f"{results['measured_at']}. Timed runs are not traced; the traced runs give the "
        "peak of Python allocations (tracemalloc)."
    )
    outro = (
        f"Points in InfluxDB after the real run: {results['stored_after']:,}. Recording the "
        f"events took {results['recorded_seconds']} s (not part of the backfill)."
    )
    return "\n".join(("# Backfill benchmark", "", intro, "", *rows, "", outro, ""))


def main(argv: list[str] | None = None) -> int:
    """Measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = asyncio.run(_measure(args.events, args.entities))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backfill.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = _markdown(results)
    (args.out / "backfill.md").write_text(text, encoding="utf-8")
    print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
