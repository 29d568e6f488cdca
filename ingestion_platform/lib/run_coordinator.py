"""Dagster's queued run coordinator, with a ``ingestion/source`` tag on every run it queues.

The run queue limits runs per tag value (``tag_concurrency_limits`` in ``deploy/dagster.yaml``), but
the runs of an asset backfill, of the UI's *Materialize* and of most schedules carry no tag naming
their source: the source is a property of the assets. This coordinator derives it from the run's
asset selection (or, for a run of a whole asset job, its execution plan's assets) before the run is
queued: the first segment of each asset key (``pmu`` for
``pmu/programme``, ``events`` for ``events/ics``), so that one limit per source family holds whoever
launched the run::

    concurrency:
      runs:
        tag_concurrency_limits:
          - key: ingestion/source
            value: {applyLimitPerUniqueValue: true}
            limit: 2

A run over several families gets them joined (``events+pmu``); a run without assets (an op job) is
left untagged. A tag already on the run (set by a schedule or by hand in the launchpad) wins.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRun
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

SOURCE_TAG = "ingestion/source"


def source_of(run: DagsterRun, instance: DagsterInstance) -> str | None:
    """``pmu``, ``events``, ``events+pmu`` ... from the run's asset (and asset check) selection, or for a
    run of a whole asset job (a schedule's, a sensor's) from the assets its execution plan outputs."""
    keys = set(run.asset_selection or ())
    keys |= {check.asset_key for check in run.asset_check_selection or ()}
    if not keys and run.execution_plan_snapshot_id:
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        for step in plan.steps:
            for output in step.outputs:
                properties = output.properties
                if properties is not None and properties.asset_key is not None:
                    keys.add(properties.asset_key)
    families = sorted({key.path[0] for key in keys if key.path})
    return "+".join(families) or None


class SourceTaggedRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that tags each run with its source family (see the module docstring)."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        source = source_of(run, self._instance)
        if source is not None and SOURCE_TAG not in run.tags:
            self._instance.add_run_tags(run.run_id, {SOURCE_TAG: source})
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
