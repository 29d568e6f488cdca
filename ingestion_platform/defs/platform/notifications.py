"""Failure notifications for every asset of the code location: one message per run and destination.

* ``notify_run_failures`` (``run_failure_sensor`` over every job of the code location, the asset
  job ``__ASSET_JOB`` of the UI's materialisations included): a failed run sends its failed steps
  (with their assets and errors), the failed checks it evaluated and its partitions.
* ``notify_failed_checks`` (a sensor with a cursor over the finished runs that did not fail, i.e.
  ``RUN_SUCCESS`` and ``RUN_CANCELED`` status changes): a run whose asset-check evaluations
  (``ASSET_CHECK_EVALUATION`` records, WARN or ERROR) failed sends them in one message. It waits
  for the run to finish, so all the checks of a run are in one message; a run that failed is the
  other sensor's, which includes that run's failed checks: a run is reported by exactly one of them.
  Each tick it also retries the undelivered messages of the outbox (``lib.notify.Outbox``).

Both read the checks the platform evaluates inside the asset steps (``lib.checks.evaluate_checks``),
which are ordinary ``ASSET_CHECK_EVALUATION`` events of the run. Routing: the settings give the
global channels; an asset's ``ingestion/notify`` metadata (a JSON object with ``webhook_url``,
``slack_webhook_url``, ``email_to``) replaces them, key by key, for that asset's problems. Each
destination receives one message per run holding the problems of the assets routed to it.

A channel that is down never breaks a run or a sensor: delivery errors are logged, recorded in the
outbox and retried at later ticks of ``notify_failed_checks``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.event_api import RunStatusChangeRecordsFilter

from ingestion_platform.lib import notify
from ingestion_platform.lib.notify import Destination, Outbox, Problem, Route, RunReport
from ingestion_platform.lib.settings import sensor_status
from ingestion_platform.lib.warehouse import WarehouseResource

log = logging.getLogger(__name__)

#: run status changes read per tick and status (the next tick goes on from the cursor)
FETCH_LIMIT = 100
#: a tick stops starting deliveries after this many seconds (the rest waits for the next tick)
TICK_BUDGET_S = 40.0
FINISHED_NOT_FAILED = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_CANCELED)
_RUN_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.RUN_FAILURE,
}


# -- what went wrong in a run -----------------------------------------------------------------------
def run_partitions(run: dg.DagsterRun) -> tuple[str, ...]:
    tags = run.tags
    if tags.get("dagster/partition"):
        return (tags["dagster/partition"],)
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return (start if start == end else f"{start}...{end}",)
    return ()


def _events(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    out: list[dg.EventLogEntry] = []
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=_RUN_EVENTS, limit=1000)
        out.extend(r.event_log_entry for r in page.records)
        if not page.has_more:
            return out
        cursor = page.cursor


def _check_error(evaluation: Any) -> str:
    meta = evaluation.metadata or {}

    def value(key: str) -> Any:
        item = meta.get(key)
        return getattr(item, "value", item)

    parts = []
    if value("failing_rows") is not None:
        checked = value("checked_rows")
        parts.append(f"{value('failing_rows')} failing" + (f" of {checked} checked" if checked is not None else ""))
    sample = value("sample")
    if isinstance(sample, list) and sample:
        parts.append(f"e.g. {json.dumps(sample[0], default=str, ensure_ascii=False)}")
    if evaluation.description:
        parts.append(evaluation.description)
    return notify.cut("; ".join(parts) or "check failed", 600)


def _error_text(error: Any) -> str:
    """``Class: message`` of the user's error under Dagster's wrappers (``DagsterExecutionStepExecutionError``)."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    cls = error.cls_name or "Error"
    message = (error.message or "").strip()
    # the message may repeat the class, qualified: "ingestion_platform.lib.http.HttpError: GET ..."
    message = re.sub(rf"^(?:[\w.]+\.)?{re.escape(cls)}: ", "", message)
    return f"{cls}: {message}"


def report_of_run(instance: dg.DagsterInstance, run: dg.DagsterRun, run_error: str | None = None) -> RunReport:
    """The failed steps, failed checks (WARN and ERROR) and run failure of ``run``, from its event log."""
    step_assets: dict[str, list[str]] = {}
    problems: list[Problem] = []
    run_failure = run_error
    partitions = run_partitions(run)
    partition = partitions[0] if len(partitions) == 1 else None
    for entry in _events(instance, run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED and event.asset_key:
            step_assets.setdefault(event.step_key or "", []).append(event.asset_key.to_user_string())
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            text = _error_text(error) if error is not None else (event.message or "step failed")
            assets = tuple(dict.fromkeys(step_assets.get(event.step_key or "", [])))
            problems.append(Problem("step_failure", assets, notify.cut(text), partition, step=event.step_key))
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.passed:
                continue
            problems.append(
                Problem(
                    "check_failed",
                    (evaluation.asset_key.to_user_string(),),
                    _check_error(evaluation),
                    evaluation.partition or partition,
                    check=evaluation.check_name,
                    severity=evaluation.severity.value,
                )
            )
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and run_failure is None:
            run_failure = event.message or entry.user_message
    if run.status == dg.DagsterRunStatus.FAILURE and not any(p.kind == "step_failure" for p in problems):
        planned = [a for assets in step_assets.values() for a in assets]
        selected = [k.to_user_string() for k in run.asset_selection or ()]
        assets = tuple(sorted(set(planned or selected)))
        problems.insert(0, Problem("run_failure", assets, notify.cut(run_failure or "the run failed"), partition))
    return RunReport(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status.value,
        run_url=notify.run_url(run.run_id),
        partitions=partitions,
        problems=tuple(problems),
    )


# -- routes -----------------------------------------------------------------------------------------
class Router:
    """The route of each asset: the global channels with its ``ingestion/notify`` keys replacing theirs."""

    def __init__(self, repository_def: dg.RepositoryDefinition | None) -> None:
        self.default = notify.global_route()
        self.overrides: dict[str, dict[str, Any]] = {}
        if repository_def is None:
            return
        graph = repository_def.asset_graph
        for key in graph.get_all_asset_keys():
            value = (graph.get(key).metadata or {}).get(notify.METADATA_KEY)
            if value is None:
                continue
            name = key.to_user_string()
            try:
                self.overrides[name] = notify.parse_override(value, name)
            except notify.NotifyConfigError as exc:  # a bad route falls back to the global channels
                log.warning("%s; its notifications use the global channels", exc)

    def route_of(self, asset: str) -> Route:
        override = self.overrides.get(asset)
        return self.default.overridden(override) if override else self.default

    def known(self) -> dict[str, Destination]:
        """Every destination configured now, by key (to find the target of an outbox row)."""
        routes = [self.default, *(self.default.overridden(o) for o in self.overrides.values())]
        return {d.key: d for r in routes for d in r.destinations()}


# -- sending ----------------------------------------------------------------------------------------
def _outbox(warehouse: WarehouseResource | None) -> Outbox | None:
    if warehouse is None:
        return None
    try:
        return Outbox(warehouse.get())
    except Exception as exc:  # the warehouse is down: deliver anyway, without the outbox
        log.error("notification outbox unavailable (%s): delivering without a record", type(exc).__name__)
        return None


def notify_run(
    report: RunReport,
    router: Router,
    outbox: Outbox | None,
    delivery: notify.Delivery,
    done: notify.Attempted,
    deadline: float,
) -> None:
    """Record and send one message per destination of ``report`` (nothing if it has no problem)."""
    if not report.problems:
        return
    for destination, message in notify.messages_by_destination(report, router.route_of, router.default):
        row = None
        if outbox is not None:
            try:
                row_id = outbox.enqueue(report.run_id, destination, message)
            except Exception as exc:
                log.error("notification outbox unavailable (%s): delivering without a record", type(exc).__name__)
            else:
                if row_id is None:  # this run was already notified to this destination
                    continue
                row = {"id": row_id, "rounds": 0}
        if time.monotonic() > deadline and row is not None:
            done.pending.append(f"{report.run_id} -> {destination.label} (next tick)")
            continue
        notify.attempt(outbox, row, destination, message, delivery, done)


def retry_due(
    outbox: Outbox | None, router: Router, delivery: notify.Delivery, done: notify.Attempted, deadline: float
):
    """Retry the outbox's messages whose delay has passed."""
    if outbox is None:
        return
    try:
        due = outbox.due()
    except Exception as exc:
        log.error("notification outbox unavailable: %s", type(exc).__name__)
        return
    known = router.known()
    for row in due:
        if row["id"] in done.tried:  # tried a moment ago, in this tick
            continue
        if time.monotonic() > deadline:
            done.pending.append(f"{row['run_id']} -> {row['destination']} (next tick)")
            continue
        destination = known.get(row["destination_key"])
        report = RunReport.from_json(row["payload"])
        if destination is None:
            error = f"{row['destination']}: no longer configured"
            status = outbox.failed({**row, "rounds": notify.MAX_ROUNDS - 1}, 0, error)
            done.failed.append(f"{row['run_id']} -> {error} ({status})")
            continue
        notify.attempt(outbox, row, destination, report, delivery, done)


# -- the sensors ------------------------------------------------------------------------------------
@dg.run_failure_sensor(
    name="notify_run_failures",
    description=(
        "A failed run of any job of the code location (the UI's asset job included) sends one message per "
        "destination: run link, assets, partitions, failed steps and failed checks (webhook, Slack, e-mail)."
    ),
    minimum_interval_seconds=30,
    default_status=sensor_status(),
    # Every run of the instance is seen and ``belongs_here`` keeps this location's, the runs launched in
    # process by the CLI included (they have no origin, which Dagster's own matching requires).
    monitor_all_code_locations=True,
)
def notify_run_failures(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> dg.SkipReason:
    deadline = time.monotonic() + TICK_BUDGET_S
    done = notify.Attempted()
    if not belongs_here(context.instance, context.dagster_run, context.repository_def):
        return dg.SkipReason(f"run {context.dagster_run.run_id} is not a run of this code location")
    run = context.instance.get_run_by_id(context.dagster_run.run_id) or context.dagster_run
    if run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED):
        # marked failed, then finished after all (run monitoring that lost the run's process): its
        # ending is the other sensor's, which reports its failed checks
        return dg.SkipReason(f"run {run.run_id} ended {run.status.value}: notify_failed_checks reports it")
    try:
        report = report_of_run(context.instance, run, context.failure_event.message)
        notify_run(
            report, Router(context.repository_def), _outbox(warehouse), notify.Delivery.from_settings(), done, deadline
        )
    except Exception as exc:  # e.g. a bad setting: logged, never a failed sensor that blocks the others
        context.log.error(f"notifications of run {context.dagster_run.run_id}: {type(exc).__name__}: {exc}")
        return dg.SkipReason(f"not notified: {type(exc).__name__}: {exc}")
    for line in done.pending + done.failed:
        context.log.warning(f"not delivered: {line}")
    return dg.SkipReason(f"run {context.dagster_run.run_id}: {done.summary()}")


def _latest_status_ids(instance: dg.DagsterInstance) -> dict[str, int]:
    out = {}
    for event_type in FINISHED_NOT_FAILED:
        records = instance.fetch_run_status_changes(event_type, limit=1).records
        out[event_type.value] = records[0].storage_id if records else -1
    return out


def _finished_runs(instance: dg.DagsterInstance, cursor: Mapping[str, int]) -> tuple[list[str], dict[str, int]]:
    """Run ids that finished without failing since ``cursor``, and the cursor after them."""
    run_ids: list[str] = []
    after = dict(cursor)
    for event_type in FINISHED_NOT_FAILED:
        records = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after.get(event_type.value, -1)),
            limit=FETCH_LIMIT,
            ascending=True,
        ).records
        for record in records:
            run_ids.append(record.event_log_entry.run_id)
            after[event_type.value] = record.storage_id
    return list(dict.fromkeys(run_ids)), after


def belongs_here(
    instance: dg.DagsterInstance, run: dg.DagsterRun, repository_def: dg.RepositoryDefinition | None
) -> bool:
    """The run is one of this code location's: every asset (or check) it selected, else every asset
    it planned, is declared here; for a run of ops only, its job is.

    Decided from the run itself, not from its origin: a run launched in process by the CLI
    (``dagster asset materialize``, ``make demo``) has no origin, and Dagster's own matching of a
    run-status sensor to its code location would skip it.
    """
    if repository_def is None:
        return True
    graph = repository_def.asset_graph
    if run.asset_selection:
        return all(graph.has(key) for key in run.asset_selection)
    if run.asset_check_selection:
        return all(graph.has(key.asset_key) for key in run.asset_check_selection)
    planned = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000
    ).records
    keys = {r.event_log_entry.dagster_event.asset_key for r in planned if r.event_log_entry.dagster_event}
    keys.discard(None)
    if keys:
        return all(graph.has(key) for key in keys)
    return repository_def.has_job(run.job_name)


@dg.sensor(
    name="notify_failed_checks",
    description=(
        "Finished runs that did not fail but had failed asset checks (WARN or ERROR) send one message per "
        "destination; every tick also retries the messages not delivered yet (platform.notification)."
    ),
    minimum_interval_seconds=60,
    default_status=sensor_status(),
)
def notify_failed_checks(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    deadline = time.monotonic() + TICK_BUDGET_S
    done = notify.Attempted()
    instance = context.instance
    if not context.cursor:  # first tick: start from now, never notify the history of the instance
        cursor = _latest_status_ids(instance)
        return dg.SensorResult(cursor=json.dumps(cursor), skip_reason=f"started at run status changes {cursor}")
    run_ids, cursor = _finished_runs(instance, json.loads(context.cursor))
    reported = 0
    try:
        router = Router(context.repository_def)
        outbox = _outbox(warehouse)
        delivery = notify.Delivery.from_settings()
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            if run is None or not belongs_here(instance, run, context.repository_def):
                continue
            report = report_of_run(instance, run)
            reported += bool(report.problems)
            notify_run(report, router, outbox, delivery, done, deadline)
        retry_due(outbox, router, delivery, done, deadline)
    except Exception as exc:  # e.g. a bad setting: logged; the cursor still moves on
        context.log.error(f"notifications: {type(exc).__name__}: {exc}")
        return dg.SensorResult(cursor=json.dumps(cursor), skip_reason=f"{type(exc).__name__}: {exc}")
    for line in done.pending + done.failed:
        context.log.warning(f"not delivered: {line}")
    reason = f"{len(run_ids)} finished run(s), {reported} with failed checks; {done.summary()}"
    return dg.SensorResult(cursor=json.dumps(cursor), skip_reason=reason)


@dg.definitions
def notification_sensors() -> dg.Definitions:
    return dg.Definitions(sensors=[notify_run_failures, notify_failed_checks])
