"""The events sources' declarations: partitions, the three sources, asset keys and load contracts.

Kept apart from the assets so the checks (``events.checks``) and the assets (``events.assets``, which
declare those checks as specs) both import it.
"""

import dagster as dg

from ingestion_platform.defs.events import tables
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.settings import definition_setting
from ingestion_platform.lib.source import Source

TIMEZONE = "America/Toronto"
HORIZON_DAYS = definition_setting("EVENTS_HORIZON_DAYS", 60, "Days ahead of today the events partitions reach")
PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=definition_setting("EVENTS_START_DATE", "2024-01-01", "First events daily partition (YYYY-MM-DD)"),
    timezone=TIMEZONE,
    end_offset=HORIZON_DAYS,  # upcoming days can be refreshed before they happen
)


def _source(name: str, pool: str, description: str) -> Source:
    return Source(
        name=name,
        group="events",
        partitions=PARTITIONS,
        fetch_unit="window",
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
        tags={"family": "events"},
        description=description,
    )


EVENTBRITE_SOURCE = _source("eventbrite", "eventbrite_api", "Eventbrite v3 organization events")
MONTREAL_SOURCE = _source("montreal", "montreal_open_data", "Ville de Montréal open data (CKAN datastore)")
ICS_SOURCE = _source("ics", "ics_feeds", "iCalendar feeds (ICS_FEEDS)")

EVENTBRITE = dg.AssetKey(["events", "eventbrite"])
MONTREAL = dg.AssetKey(["events", "montreal"])
ICS = dg.AssetKey(["events", "ics"])
DUPLICATES = dg.AssetKey(["events", "duplicates"])
IMPORT_STATS = dg.AssetKey(["events", "import_stats"])
SOURCE_ASSETS = (EVENTBRITE, MONTREAL, ICS)

# The loading contract: Montréal and iCalendar replace each day of their own rows after a complete
# fetch; Eventbrite never deletes (vanished events go through event_absence and a grace period).
_SOURCE_DAY = {"day_column": "start_date", "scope_columns": ("source",)}
EVENTBRITE_LOAD = (TableContract(tables.event, "upsert", day_column="start_date"), TableContract(tables.event_absence))
MONTREAL_LOAD = (TableContract(tables.event, "replace_window", **_SOURCE_DAY),)
ICS_LOAD = (TableContract(tables.event, "replace_window", **_SOURCE_DAY),)
DUPLICATES_LOAD = (
    TableContract(tables.event_duplicate, "replace_window", day_column="start_date"),
    TableContract(tables.event_cluster, "replace_window", day_column="start_date"),
)
