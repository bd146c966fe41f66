"""The soak's short version: scripts/soak's driver for about two minutes, in the suite.

The same driver as the 60-minute run (tests/support/soak), run as its own process like
scripts/soak runs it (a real Home Assistant, influxd and the simulated R3 ingestor), with
the short fault cycle: influxd killed and restarted, the Admin API's key refused and
restored, the simulator restarted. Then the pure parts of the measuring, on files made here.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.soak import report
from tests.support.soak.measure import LogCounter, pooled_slope_per_hour, recorder_rows
from tests.support.soak.schedule import SHORT_CYCLE, FaultKind

REPO: Final = Path(__file__).resolve().parent.parent
# The schedule's two minutes, Home Assistant's start and set-up, the stop: well inside.
RUN_TIMEOUT: Final = 420
# Loose: a real leak of the integration over two minutes shows far above this.
RSS_GROWTH_BOUND_MIB: Final = 40.0


@pytest.fixture(scope="module")
def short_soak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short run for every assertion below (it takes about three minutes)."""
    pytest.importorskip("hass_frontend")  # without it Home Assistant loads no custom integration
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "tests.support.soak",
            "--minutes",
            "2",
            "--out",
            str(out),
            "--no-plot",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert out.is_file(), completed.stdout[-3000:] + completed.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    results["stdout"] = completed.stdout
    assert (out.with_suffix(".md")).is_file()
    return results


def test_the_short_soak_ran_its_whole_cycle(short_soak: dict[str, Any]) -> None:
    assert short_soak["errors"] == [], short_soak["stdout"][-3000:]
    kinds = [episode["kind"] for episode in short_soak["episodes"]]
    assert kinds[: len(SHORT_CYCLE)] == [step.kind.value for step in SHORT_CYCLE]
    assert short_soak["samples"], "Home Assistant was never sampled"


def test_no_traceback_of_ours(short_soak: dict[str, Any]) -> None:
    log = short_soak["log"]
    assert log["our_tracebacks"] == 0, log["traceback_loggers"]
    assert log["ours"].get("CRITICAL", 0) == 0


def test_each_outage_is_logged_once_each_way(short_soak: dict[str, Any]) -> None:
    episodes = short_soak["episodes"]
    assert all(e["logged_once_each_way"] for e in episodes), [
        (e["kind"], e["down"], e["up"], e["repeated"]) for e in episodes
    ]
    (influxd, *_) = (e for e in episodes if e["kind"] == FaultKind.INFLUXD_KILLED.value)
    # InfluxDB gone is the outage a user must read about, and its end too.
    assert influxd["down"], influxd
    assert influxd["up"], influxd


def test_every_checkpoint_is_right(short_soak: dict[str, Any]) -> None:
    checkpoints = short_soak["checkpoints"]
    assert len(checkpoints) == len(short_soak["episodes"]) + 1
    assert all(c["checked"] > 0 for c in checkpoints)
    wrong = [(c["after"], c["mismatches"]) for c in checkpoints if not c["right"]]
    assert wrong == []


def test_rss_growth_is_bounded(short_soak: dict[str, Any]) -> None:
    samples = [s for s in short_soak["samples"] if s["rss_mib"] is not None]
    first, last = samples[0], samples[-1]
    assert first["incarnation"] == last["incarnation"] == 1
    assert last["rss_mib"] - first["rss_mib"] < RSS_GROWTH_BOUND_MIB, (first, last)
    assert all(s["fds"] is not None and s["tasks"] is not None for s in samples)


# --- the measuring, on files made here -------------------------------------------------------


def test_log_counter_reads_appends_levels_tracebacks_and_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "home-assistant.log"
    ours = "[custom_components.ha_ingestor]"
    log.write_text(
        f"2026-12-07 23:10:00.123 WARNING (MainThread) {ours} InfluxDB at x did not answer\n"
        "2026-12-07 23:10:01.000 ERROR (MainThread) [homeassistant.setup] Setup failed\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1\n'
        "2026-12-07 23:10:02.0",
        encoding="utf-8",
    )
    counter = LogCounter(log)
    new = counter.poll()
    assert [line.level for line in new] == ["WARNING"]
    assert counter.levels == {"WARNING": 1, "ERROR": 1}
    assert (counter.tracebacks, counter.our_tracebacks) == (1, 0)
    with log.open("a", encoding="utf-8") as handle:  # the half line is completed
        handle.write(f"00 INFO (MainThread) {ours} InfluxDB answers again\n")
    assert [line.message for line in counter.poll()] == ["InfluxDB answers again"]
    counter.rotated()  # a restart that appends to the same file: nothing read twice
    assert counter.poll() == []
    assert counter.our_levels == {"WARNING": 1, "INFO": 1}
    log.rename(tmp_path / "home-assistant.log.1")
    log.write_text(f"2026-12-07 23:11:00.000 ERROR (MainThread) {ours} boom\n", encoding="utf-8")
    assert [line.message for line in counter.poll()] == ["boom"]
    assert counter.our_levels == {"WARNING": 1, "INFO": 1, "ERROR": 1}


def _recorder(path: Path, rows: list[tuple[str, str, float, str]]) -> None:
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE states_meta (metadata_id INTEGER PRIMARY KEY, entity_id TEXT);"
        "CREATE TABLE state_attributes (attributes_id INTEGER PRIMARY KEY, shared_attrs TEXT);"
        "CREATE TABLE states (state_id INTEGER PRIMARY KEY, metadata_id INTEGER, state TEXT,"
        " last_updated_ts REAL, attributes_id INTEGER);"
    )
    ids: dict[str, int] = {}
    for number, (entity_id, state, updated, attrs) in enumerate(rows, start=1):
        meta = ids.setdefault(entity_id, len(ids) + 1)
        connection.execute("INSERT OR IGNORE INTO states_meta VALUES (?, ?)", (meta, entity_id))
        connection.execute("INSERT INTO state_attributes VALUES (?, ?)", (number, attrs))
        connection.execute(
            "INSERT INTO states VALUES (?, ?, ?, ?, ?)", (number, meta, state, updated, number)
        )
    connection.commit()
    connection.close()


def test_recorder_rows_tell_state_changes_from_attribute_changes(tmp_path: Path) -> None:
    database = tmp_path / "home-assistant_v2.db"
    alert = "binary_sensor.ha_ingestor_slow_processing"
    _recorder(
        database,
        [
            (alert, "off", 10.0, '{"value": 1.0}'),
            (alert, "off", 20.0, '{"value": 1.5}'),  # only the attribute moved
            (alert, "on", 30.0, '{"value": 9.0}'),
            ("sensor.someone_else", "1", 30.0, "{}"),
        ],
    )
    rows = recorder_rows(database, [alert])
    assert (rows.total, rows.first, rows.state_changes, rows.attribute_only) == (3, 1, 1, 1)
    assert rows.changed_attributes == {"value": 1}
    assert rows.attribute_only_by_entity == {alert: 1}
    assert rows.per_minute == [3]
    # Rows before `since` are context for the next row, not counted.
    assert recorder_rows(database, [alert], since=15.0).total == 2


def test_pooled_slope_ignores_the_level_each_restart_resets() -> None:
    first = [(t, 300 + t / 3600) for t in range(0, 1800, 60)]  # 1 MiB/h
    second = [(t, 200 + t / 3600) for t in range(1800, 3600, 60)]  # lower after a restart
    assert pooled_slope_per_hour([first, second]) == pytest.approx(1.0)
    assert pooled_slope_per_hour([first[:2]]) is None


def test_summary_counts_what_the_goals_need() -> None:
    results: dict[str, Any] = {
        "minutes": 2,
        "ran_s": 3600.0,
        "update_interval_s": 15,
        "samples": [
            {
                "t": t,
                "incarnation": 1,
                "since_start": t,
                "rss_mib": 300.0,
                "fds": 40,
                "tasks": 100,
                "timers": 30,
                "timers_ours": 5,
            }
            for t in range(0, 600, 20)
        ],
        "checkpoints": [{"right": True, "checked": 12}, {"right": False, "checked": 12}],
        "episodes": [
            {"kind": "influxd_killed", "down": ["W"], "up": ["I"], "logged_once_each_way": True},
            {"kind": "services_500", "down": [], "up": [], "logged_once_each_way": True},
        ],
        "log": {"tracebacks": 0, "our_tracebacks": 0, "levels": {}, "ours": {}},
        "recorder": {
            "total": 500,
            "attribute_only": 240,
            "changed_attributes": {"value": 240},
            "attribute_only_by_entity": {"binary_sensor.x": 200, "sensor.y": 40},
            "per_minute": [100, 5, 6, 7, 382],
        },
        "errors": [],
    }
    summary = report.summarize(results)
    assert summary["rss"]["mib_per_hour"] == pytest.approx(0.0)
    assert (summary["checkpoints"], summary["checkpoints_right"]) == (2, 1)
    assert summary["recorder_rows_per_day"] == 12000
    assert summary["recorder_rows_per_day_median_minute"] == 7 * 1440
    assert summary["episodes_silent"] == ["services_500"]
    # 240 refreshes in the hour: a row at most refreshes is one row every refresh or so.
    assert summary["entities_with_a_row_every_refresh"] == ["binary_sensor.x"]
