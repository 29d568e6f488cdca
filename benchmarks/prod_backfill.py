"""The production topology's figures: a 7-day PMU backfill on 1 vs 2 Celery workers, and the daemon's
time from a schedule tick to the run's start.

    .venv/bin/python benchmarks/prod_backfill.py [--rounds 1]     # make bench-prod

For each round and each worker count (1, then 2), ``ingestion_platform.prod`` brings the topology up on
fresh PostgreSQL databases (``INGESTION_BENCH_DATABASE_URL``'s server, else the local one) with the
offline PMU days 2025-03-13 .. 19 (``ingestion_platform_tests/prod/harness.py``), and
``PMU_DAYS_PER_RUN=1``: the backfill is 7 runs of 4 steps each, so that steps of several runs can
wait for a worker. The backfill is launched through GraphQL, as the UI does, and timed from the
launch to the backfill's COMPLETED_SUCCESS, and from the first run's start to the last run's end
(without the backfill daemon's pick-up). ``PMU_MORNING_CRON='* * * * *'`` makes the morning schedule
fire each minute: for its run, tick (the cron time) -> run created (the daemon's schedule loop) ->
run started (the queue, the launch). Printed: the figures per worker count and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from ingestion_platform_tests.prod.harness import DAYS, PMU_KEYS, Prod, running_topology, tags_of

PG_DEFAULT = "postgresql://root@127.0.0.1:5432/test"


def admin_engine() -> sa.Engine:
    url = sa.make_url(os.environ.get("INGESTION_BENCH_DATABASE_URL") or PG_DEFAULT)
    return sa.create_engine(url.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")


def measure_backfill(prod: Prod) -> dict[str, float]:
    launched = time.time()
    backfill_id = prod.backfill(DAYS, PMU_KEYS)
    backfill = prod.backfill_done(backfill_id)
    done = time.time()
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    runs = prod.run_times([r["runId"] for r in prod.backfill_runs(backfill_id)])
    assert len(runs) == len(DAYS) and all(r["status"] == "SUCCESS" for r in runs), runs
    first_start = min(r["startTime"] for r in runs)
    last_end = max(r["endTime"] for r in runs)
    return {"launch_to_done_s": done - launched, "runs_wall_s": last_end - first_start}


def measure_schedule(prod: Prod) -> dict[str, float]:
    run = prod.finished_run(
        "the run of pmu_morning_schedule",
        lambda r: tags_of(r).get("dagster/schedule_name") == "pmu_morning_schedule",
    )
    prod.stop_schedule("pmu_morning_schedule")  # one run per minute otherwise, beside the backfill
    (times,) = prod.run_times([run["runId"]])
    ticks = prod.client.graphql(
        """{ scheduleOrError(scheduleSelector: {repositoryLocationName: "ingestion_platform",
             repositoryName: "__repository__", scheduleName: "pmu_morning_schedule"}) { __typename
             ... on Schedule { scheduleState { ticks(limit: 20) { timestamp runIds status } } } } }"""
    )["scheduleOrError"]["scheduleState"]["ticks"]
    (tick,) = [t for t in ticks if run["runId"] in t["runIds"]]
    return {
        "tick_to_created_s": times["creationTime"] - tick["timestamp"],
        "created_to_started_s": times["startTime"] - times["creationTime"],
        "tick_to_started_s": times["startTime"] - tick["timestamp"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (1 worker, 2 workers)")
    args = parser.parse_args()
    admin = admin_engine()
    figures: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    schedule: list[dict[str, float]] = []
    env = {"PMU_DAYS_PER_RUN": "1", "PMU_MORNING_CRON": "* * * * *"}
    for round_ in range(1, args.rounds + 1):
        for workers in (1, 2):
            with (
                tempfile.TemporaryDirectory(prefix="bench_prod_") as tmp,
                running_topology(Path(tmp), admin, workers=workers, env=env) as prod,
            ):
                schedule.append(measure_schedule(prod))
                figures[workers].append(measure_backfill(prod))
            print(f"round {round_}, {workers} worker(s): {figures[workers][-1]}  schedule: {schedule[-1]}", flush=True)
    admin.dispose()

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"\n7-day PMU backfill (7 runs x 4 steps on Celery), medians of {args.rounds} round(s):")
    for key in ("launch_to_done_s", "runs_wall_s"):
        one, two = median(figures[1], key), median(figures[2], key)
        print(f"  {key:18} 1 worker {one:7.1f} s   2 workers {two:7.1f} s   1/2 ratio {one / two:5.2f}x")
    print(f"\nschedule tick -> run, medians of {len(schedule)} scheduled run(s):")
    for key in ("tick_to_created_s", "created_to_started_s", "tick_to_started_s"):
        values = [s[key] for s in schedule]
        print(f"  {key:22} {statistics.median(values):6.1f} s   [{min(values):.1f}-{max(values):.1f}]")


if __name__ == "__main__":
    main()
