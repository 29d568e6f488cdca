"""When PMU data is loaded.

* ``pmu_morning_schedule`` (09:00 Europe/Paris, ``PMU_MORNING_CRON``): today's programme, participants and the runners'
  past performances, as soon as the day's cards are final.
* ``pmu_results_schedule`` (23:30 Europe/Paris): today's programme and participants again (race
  statuses, arrival order, times) and the rapports of the races that are official by then.
* ``pmu_late_rapports_sensor`` (every 30 min): races of the last days that started more than an
  hour ago and still have no rapports (results not official at 23:30, stewards' enquiries) get a
  results run for their day; it asks at most once per ``PMU_LATE_RAPPORTS_EVERY_H`` hours per day.
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.pmu import tables
from ingestion_platform.defs.pmu.assets import PARTICIPANTS, PERFORMANCES, PROGRAMME, RAPPORTS
from ingestion_platform.lib.settings import definition_setting, run_setting, schedule_status, sensor_status
from ingestion_platform.lib.warehouse import WarehouseResource

PARIS = ZoneInfo("Europe/Paris")
# Read at each sensor evaluation.
LATE_RAPPORTS_DAYS = run_setting(
    "PMU_LATE_RAPPORTS_DAYS", 3, "days back (today included) the late-rapports sensor looks"
)
# The morning schedule's cron; another cron (e.g. ``*/2 * * * *``) makes it fire within minutes: the production
# end-to-end test uses that to see the daemon launch a scheduled run (the run key keeps one run per day).
MORNING_CRON = definition_setting("PMU_MORNING_CRON", "0 9 * * *", "cron of pmu_morning_schedule (Europe/Paris)")
LATE_RAPPORTS_EVERY_H = run_setting(
    "PMU_LATE_RAPPORTS_EVERY_H", 2.0, "hours between two late-rapports runs of the same day"
)

pmu_day_job = dg.define_asset_job(
    "pmu_day_job",
    selection=dg.AssetSelection.assets(PROGRAMME, PARTICIPANTS, PERFORMANCES),
    description="Programme, participants and performance history of one day (morning run).",
)

pmu_results_job = dg.define_asset_job(
    "pmu_results_job",
    selection=dg.AssetSelection.assets(PROGRAMME, PARTICIPANTS, RAPPORTS),
    description="Programme, participants (results) and rapports of one day (evening run).",
)


def _paris_day(context: dg.ScheduleEvaluationContext) -> str:
    return context.scheduled_execution_time.astimezone(PARIS).date().isoformat()


@dg.schedule(
    job=pmu_day_job,
    cron_schedule=MORNING_CRON,
    execution_timezone="Europe/Paris",
    default_status=schedule_status(),
)
def pmu_morning_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Today's cards: programme, participants, performances."""
    day = _paris_day(context)
    return dg.RunRequest(run_key=f"morning-{day}", partition_key=day, tags={"pmu/trigger": "morning"})


@dg.schedule(
    job=pmu_results_job,
    cron_schedule="30 23 * * *",
    execution_timezone="Europe/Paris",
    default_status=schedule_status(),
)
def pmu_results_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Today's results and rapports once races are official."""
    day = _paris_day(context)
    return dg.RunRequest(run_key=f"results-{day}", partition_key=day, tags={"pmu/trigger": "results"})


def races_missing_rapports(warehouse: WarehouseResource, now: dt.datetime, days: list[dt.date]) -> dict[str, int]:
    """Per day: races started over an hour before ``now``, not cancelled, without rapports."""
    race, bet = tables.race, tables.race_bet
    has_rapports = sa.exists().where(
        bet.c.program_date == race.c.program_date,
        bet.c.meeting_num == race.c.meeting_num,
        bet.c.race_num == race.c.race_num,
    )
    stmt = (
        sa.select(race.c.program_date, sa.func.count().label("missing"))
        .where(
            race.c.program_date.in_(days),
            sa.not_(race.c.is_cancelled),
            race.c.starts_at < now - dt.timedelta(hours=1),
            ~has_rapports,
        )
        .group_by(race.c.program_date)
    )
    wh = warehouse.get()
    wh.ensure_tables([race, bet])
    return {str(r["program_date"]): int(r["missing"]) for r in wh.fetch(stmt)}


@dg.sensor(
    job=pmu_results_job,
    minimum_interval_seconds=1800,
    default_status=sensor_status(),
)
def pmu_late_rapports_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    """Re-runs the results of recent days whose finished races still lack rapports."""
    lookback_days = LATE_RAPPORTS_DAYS.read()
    request_every = dt.timedelta(hours=LATE_RAPPORTS_EVERY_H.read())
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(PARIS).date()
    days = [today - dt.timedelta(days=i) for i in range(lookback_days)]
    last_asked: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    missing = races_missing_rapports(warehouse, now, days)
    requests = []
    for day, count in sorted(missing.items()):
        previous = last_asked.get(day)
        if previous and now - dt.datetime.fromisoformat(previous) < request_every:
            continue
        last_asked[day] = now.isoformat()
        requests.append(
            dg.RunRequest(
                run_key=f"late-rapports-{day}-{now:%Y%m%dT%H%M}",
                partition_key=day,
                tags={"pmu/trigger": "late-rapports", "pmu/missing_rapports": str(count)},
            )
        )
    keep = {d.isoformat() for d in days}
    cursor = json.dumps({d: t for d, t in last_asked.items() if d in keep}, sort_keys=True)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
