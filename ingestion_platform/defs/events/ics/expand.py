"""Occurrences of one series (one UID), computed by recurring-ical-events.

recurring-ical-events gives, for each occurrence, its times, the component it comes from and how a
``RANGE=THISANDFUTURE`` override moved it; :class:`Occurrence` keeps these so that a row can be built from
the VEVENT as written and identified by its recurrence id.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

import icalendar
import recurring_ical_events
from recurring_ical_events.util import make_comparable


class Adapter(recurring_ical_events.EventAdapter):
    """recurring-ical-events' view of a VEVENT (times moved into X-WR-TIMEZONE), with the VEVENT as written."""

    def __init__(self, component: icalendar.Event, written: icalendar.Event) -> None:
        super().__init__(component)
        self.written = written

    @property
    def recurrence_id(self) -> Any:
        return self._component["RECURRENCE-ID"].dt

    @property
    def swapped(self) -> bool:
        """Whether the end is before DTSTART (recurring-ical-events then swaps them in its ``span``)."""
        start, end = make_comparable((self.raw_start, self.raw_end))
        return start > end


class Occurrence(recurring_ical_events.Occurrence):
    """An occurrence with the VEVENT it comes from and its recurrence id: the start it had in its series.

    An override yielded as it is has its RECURRENCE-ID. A start of the rule after a ``RANGE=THISANDFUTURE``
    override is moved by that override (``move_recurrences_by``): its recurrence id is the start before the move.
    """

    def __init__(self, adapter: Adapter, start: Any = None, end: Any = None, sequence: int = -1) -> None:
        super().__init__(adapter, start, end, sequence)
        self.event = adapter.written
        self.swapped = adapter.swapped
        if start is None:
            self.recurrence_id = adapter.recurrence_id
        elif adapter.is_modification():
            self.recurrence_id = self.start - adapter.move_recurrences_by
        else:
            self.recurrence_id = self.span_as_written[0]

    @property
    def span_as_written(self) -> tuple[Any, Any]:
        """(start, end) in the feed's order (recurring-ical-events orders them)."""
        return (self.end, self.start) if self.swapped else (self.start, self.end)


class _Series(recurring_ical_events.Series):
    """recurring-ical-events' series of one UID, yielding :class:`Occurrence`."""

    def occurrence(self, adapter: Adapter, start: Any = None, end: Any = None) -> Occurrence:
        return Occurrence(adapter, start, end, sequence=self.sequence)


def occurrences(
    events: Sequence[icalendar.Event],
    start: dt.datetime,
    end: dt.datetime,
    to_standard: Callable[[icalendar.Event], icalendar.Event],
) -> list[Occurrence]:
    """The occurrences of one UID's VEVENTs overlapping ``[start, end)``, as recurring_ical_events.of() finds them.

    ``to_standard`` moves a VEVENT's floating and UTC times into X-WR-TIMEZONE (or returns it unchanged), as
    ``of()`` does for a whole calendar. Raises what recurring-ical-events raises for a broken series.
    """
    series = _Series([Adapter(to_standard(event), event) for event in events])
    return list(series.between(start, end))


def property_of_error(exc: Exception) -> str | None:
    """The property a recurring-ical-events failure is about, when it can be told."""
    if isinstance(exc, recurring_ical_events.BadRuleStringFormat):
        return "RRULE"
    if isinstance(exc, recurring_ical_events.PeriodEndBeforeStart):
        return "RDATE"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0]).upper()
    match = re.search(r"broken property '([A-Za-z0-9-]+)'", str(exc))
    return match.group(1).upper() if match else None
