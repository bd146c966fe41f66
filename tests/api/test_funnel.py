"""The delivery funnel's arithmetic: steps between readings, restarts, unknown stages."""

from __future__ import annotations

from custom_components.ha_ingestor.api.core.funnel import (
    LOST_BEFORE_INGESTOR,
    LOST_IN_INGESTOR,
    LOST_WRITING,
    MAX_STEPS,
    STAGE_UNKNOWN,
    Funnel,
    StageTotals,
)

PERIOD = 3600.0


def _totals(received: int, filtered: int, processed: int, failed: int = 0) -> StageTotals:
    return StageTotals(received=received, filtered=filtered, processed=processed, failed=failed)


def _fire(funnel: Funnel, entity_id: str, n: int) -> None:
    for _ in range(n):
        funnel.count(entity_id)


def test_each_stage_gets_exactly_its_losses() -> None:
    funnel = Funnel()
    _fire(funnel, "light.before", 5)  # no reading yet: not counted
    funnel.observe(100.0, _totals(1000, 50, 900))
    _fire(funnel, "light.a", 20)
    _fire(funnel, "sensor.b", 10)
    funnel.count_removal()
    # 30 fired + 1 removal; 2 never reached the ingestor, the removal was dropped while
    # validating, 4 filtered, 3 lost in the processor (1 of them a failure), 5 not written.
    funnel.observe(160.0, _totals(1000 + 29, 54, 900 + 21, 1))
    assert funnel.settled(159.0) is None
    assert funnel.settled(160.0) == (100.0, 160.0)
    span = funnel.compare(160.0, {"light.a": 12, "sensor.b": 4}, 170.0, PERIOD)

    assert (span.fired, span.stored, span.lost, span.extra) == (30, 16, 14, 0)
    assert span.stages() == {
        LOST_BEFORE_INGESTOR: 2,
        LOST_IN_INGESTOR: 3,
        LOST_WRITING: 5,
        "filtered": 4,
    }
    assert span.lost_unfiltered == 10
    assert span.stage == LOST_WRITING
    assert span.top_lost == (("light.a", 8), ("sensor.b", 6))
    # The stages add up to what InfluxDB lacks.
    assert sum(v or 0 for v in span.stages().values()) == span.lost


def test_a_total_that_falls_is_a_restart_and_that_stage_unknown() -> None:
    funnel = Funnel()
    funnel.observe(0.0, _totals(500, 0, 480))
    _fire(funnel, "light.a", 10)
    # The ingestor restarted: all its totals start again from 0.
    funnel.observe(60.0, _totals(10, 0, 10))
    span = funnel.compare(60.0, {"light.a": 10}, 60.0, PERIOD)
    assert span.stages() == {
        LOST_BEFORE_INGESTOR: None,
        LOST_IN_INGESTOR: None,
        LOST_WRITING: None,
        "filtered": 0,  # 0 then 0: nothing fell, nothing filtered
    }
    assert span.lost == 0
    # The next span counts from the new totals.
    _fire(funnel, "light.a", 4)
    funnel.observe(120.0, _totals(14, 0, 12))
    span = funnel.compare(120.0, {"light.a": 2}, 120.0, PERIOD)
    assert span.stages()[LOST_IN_INGESTOR] == 2
    assert span.stage == LOST_IN_INGESTOR


def test_a_stage_without_a_counter_is_unknown() -> None:
    funnel = Funnel()
    # R1: received known, no processor totals, no filter.
    funnel.observe(0.0, StageTotals(received=7, filtered=0))
    _fire(funnel, "light.a", 6)
    funnel.observe(60.0, StageTotals(received=10, filtered=0))
    span = funnel.compare(60.0, {"light.a": 2}, 60.0, PERIOD)
    assert span.stages() == {
        LOST_BEFORE_INGESTOR: 3,
        LOST_IN_INGESTOR: None,
        LOST_WRITING: None,
        "filtered": 0,
    }
    assert span.stage == LOST_BEFORE_INGESTOR
    # Nothing known at all: the loss is still counted, its stage is unknown.
    funnel = Funnel()
    funnel.observe(0.0, StageTotals())
    _fire(funnel, "light.a", 3)
    funnel.observe(60.0, StageTotals())
    span = funnel.compare(60.0, {}, 60.0, PERIOD)
    assert (span.lost, span.stage, span.lost_unfiltered) == (3, STAGE_UNKNOWN, None)


def test_steps_merge_into_one_span_and_in_flight_events_even_out() -> None:
    funnel = Funnel()
    funnel.observe(0.0, _totals(0, 0, 0))
    _fire(funnel, "light.a", 10)
    # 3 events still in the ingestor's batch at this reading: processed in the next step.
    funnel.observe(60.0, _totals(10, 0, 7))
    _fire(funnel, "light.a", 10)
    funnel.observe(120.0, _totals(20, 0, 20))
    assert funnel.settled(130.0) == (0.0, 120.0)
    span = funnel.compare(130.0, {"light.a": 20}, 130.0, PERIOD)
    assert (span.fired, span.lost, span.start, span.end) == (20, 0, 0.0, 120.0)
    assert span.stages()[LOST_IN_INGESTOR] == 0


def test_totals_over_the_period_and_the_steps_are_bounded() -> None:
    funnel = Funnel()
    funnel.observe(0.0, _totals(0, 0, 0))
    received = 0
    for i in range(1, MAX_STEPS * 2):
        _fire(funnel, "light.a", 2)
        received += 1  # one of the two never reaches the ingestor
        funnel.observe(i * 60.0, _totals(received, 0, received))
    assert len(funnel._steps) == MAX_STEPS  # the bound itself
    end = (MAX_STEPS * 2 - 1) * 60.0
    span = funnel.compare(end, {"light.a": received}, end, PERIOD * 24)
    assert span.start == 0.0
    assert span.stages()[LOST_BEFORE_INGESTOR] == received
    assert funnel.totals()[LOST_BEFORE_INGESTOR] == received
    # A span older than the period no longer counts; one within it does.
    funnel.observe(end + 60.0, _totals(received, 0, received))
    funnel.compare(end + 60.0, {}, end + 60.0 + PERIOD, PERIOD)
    assert funnel.totals()[LOST_BEFORE_INGESTOR] == 0
    # Nothing compared within the period: nothing known.
    assert Funnel().totals()[LOST_BEFORE_INGESTOR] is None


def test_a_stale_reading_is_ignored() -> None:
    funnel = Funnel()
    funnel.observe(10.0, _totals(0, 0, 0))
    _fire(funnel, "light.a", 1)
    funnel.observe(10.0, _totals(5, 0, 5))  # the same reading again
    funnel.observe(20.0, _totals(1, 0, 1))
    span = funnel.compare(20.0, {"light.a": 1}, 20.0, PERIOD)
    assert (span.fired, span.received, span.lost) == (1, 1, 0)
