"""When events are loaded.

* ``events_refresh_schedule`` (05:00 America/Toronto): one run over yesterday .. today +
  ``EVENTS_REFRESH_DAYS`` (default 30) days: every source is fetched once for the whole range.
* ``events_stats_after_refresh``: after any successful run that materialised an events source,
  refreshes ``events/import_stats``.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from ingestion_platform.defs.events.assets import (
    DUPLICATES,
    EVENTBRITE,
    ICS,
    IMPORT_STATS,
    MONTREAL,
    SOURCE_ASSETS,
    TIMEZONE,
)
from ingestion_platform.lib.settings import run_setting, schedule_status, sensor_status

ZONE = ZoneInfo(TIMEZONE)
# Read at each schedule evaluation.
REFRESH_DAYS = run_setting("EVENTS_REFRESH_DAYS", 30, "days ahead (today included) loaded by the daily refresh")

events_refresh_job = dg.define_asset_job(
    "events_refresh_job",
    selection=dg.AssetSelection.assets(EVENTBRITE, MONTREAL, ICS, DUPLICATES),
    description="Fetch every events source once and load the days of the run's range; then deduplicate.",
)
events_stats_job = dg.define_asset_job(
    "events_stats_job",
    selection=dg.AssetSelection.assets(IMPORT_STATS),
    description="Refresh the per-source import statistics.",
)


def refresh_range(now: dt.datetime) -> tuple[str, str]:
    """Yesterday .. today + EVENTS_REFRESH_DAYS - 1, as local partition keys."""
    today, days = now.astimezone(ZONE).date(), REFRESH_DAYS.read()
    return (today - dt.timedelta(days=1)).isoformat(), (today + dt.timedelta(days=days - 1)).isoformat()


@dg.schedule(
    job=events_refresh_job,
    cron_schedule="0 5 * * *",
    execution_timezone=TIMEZONE,
    default_status=schedule_status(),
)
def events_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The coming weeks (and yesterday, for late changes) in one run."""
    first, last = refresh_range(context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"events-refresh-{first}",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "events/trigger": "daily",
        },
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=events_stats_job,
    default_status=sensor_status(),
    minimum_interval_seconds=60,
)
def events_stats_after_refresh(context: dg.RunStatusSensorContext):
    """A successful run that touched an events source refreshes the import statistics."""
    run = context.dagster_run
    selection = set(run.asset_selection or ())
    if not selection:  # e.g. a whole-job run: look at what the run materialised
        events = context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        selection = {e.dagster_event.asset_key for e in events if e.dagster_event is not None}
    if not selection & set(SOURCE_ASSETS):
        return dg.SkipReason("the run did not materialise an events source")
    return dg.RunRequest(run_key=f"stats-after-{context.dagster_run.run_id}")
