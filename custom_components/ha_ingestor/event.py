"""The delivery check's window event: fires once per settled span that lost events.

Its attributes say the span, how many events it lost, the entities that lost most and the
stage that lost them (docs/architecture.md#the-delivery-funnel), so an automation can act on a
loss as it is found rather than poll `events_lost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import callback

from .coordinators.delivery import DeliveryData
from .entity import HaIngestorEntity, HaIngestorEntityDescription, async_add_platform_entities

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api.core.funnel import FunnelSpan
    from .runtime import HaIngestorConfigEntry

PARALLEL_UPDATES = 0

EVENT_LOSS: Final = "loss"


@dataclass(frozen=True, kw_only=True)
class HaIngestorEventEntityDescription[DataT](
    HaIngestorEntityDescription[DataT], EventEntityDescription
):
    """An event of a coordinator's data: `value_fn` picks what may fire it (None: nothing)."""


DeliveryEvent = HaIngestorEventEntityDescription[DeliveryData]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def lost_in(span: FunnelSpan) -> int:
    """The span's lost events, less those filtered on purpose (all of them while unknown)."""
    unfiltered = span.lost_unfiltered
    return span.lost if unfiltered is None else unfiltered


def loss_attributes(span: FunnelSpan) -> dict[str, Any]:
    """What the event says of its span."""
    return {
        "start": _iso(span.start),
        "end": _iso(span.end),
        "count": lost_in(span),
        "events_fired": span.fired,
        "stage": span.stage,
        **span.stages(),
        "entities_lost_most": [{"entity_id": e, "lost": n} for e, n in span.top_lost],
    }


DELIVERY_EVENTS: Final[tuple[DeliveryEvent, ...]] = (
    DeliveryEvent(
        key="delivery_loss",
        translation_key="delivery_loss",
        event_types=[EVENT_LOSS],
        # Not the source: every event looks lost, none is claimed.
        value_fn=lambda d: None if d.report.not_source else d.span,
    ),
)


class HaIngestorEvent(HaIngestorEntity[Any], EventEntity):
    """Fires when its coordinator's latest data holds a span with loss, once per span."""

    entity_description: HaIngestorEventEntityDescription[Any]
    _fired_end: float | None = None

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        span: FunnelSpan | None = None
        if (data := self.entity_data) is not None:
            span = self.entity_description.value_fn(data)
        if span is not None and span.end != self._fired_end and lost_in(span) > 0:
            self._fired_end = span.end
            self._trigger_event(EVENT_LOSS, loss_attributes(span))
        super()._handle_coordinator_update()


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001  (the signature Home Assistant calls)
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the delivery check's window event (only where the check runs)."""
    async_add_platform_entities(
        entry,
        async_add_entities,
        HaIngestorEvent,
        statistics=(),
        services=(),
        storage=(),
        delivery=DELIVERY_EVENTS,
    )
