"""The code location: every source folder under ``defs/`` registers itself.

Only global policy lives here; adding a source never edits this file. The policy is the executor
of runs whose run config does not choose one (the UI's runs, schedules, sensors, backfills): Dagster's
own ``in_process`` / ``multiprocess`` executor, with ``in_process`` as the default instead of
``multiprocess`` (``INGESTION_EXECUTOR`` changes the default; a run can still pick either in its
run config, ``execution: config: multiprocess: {}``). Production may set ``celery``: each step is
then a task of dagster-celery's executor, run by Celery workers (``lib/scale_out.py``).
A run of one day is a chain of a few steps
(programme -> participants -> performances) whose API calls are already concurrent inside each
step, and each asset evaluates its checks in its own step; the multiprocess executor would start
one process per step, each importing the code location again, which costs more than the work. Days
run in parallel as separate runs instead (the multi-run backfill policy and the instance's run queue).
"""

from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, MULTI_PROC_CONFIG

from ingestion_platform.lib import scale_out
from ingestion_platform.lib.settings import definition_setting

MODES = ("in_process", "multiprocess", "celery")


def executor() -> dg.ExecutorDefinition:
    """Dagster's in-process/multiprocess executor, defaulting to ``INGESTION_EXECUTOR``; or, with
    ``INGESTION_EXECUTOR=celery``, the Celery executor of ``lib.scale_out`` (steps on Celery workers)."""
    mode = str(
        definition_setting(
            "INGESTION_EXECUTOR",
            "in_process",
            "Default executor of runs that do not choose one: in_process (one process per run), multiprocess, "
            "or celery (each step on a Celery worker; production scale-out)",
        )
    ).strip()
    if mode not in MODES:
        raise ValueError(f"INGESTION_EXECUTOR must be one of {MODES}, not {mode!r}")
    if mode == "celery":
        return scale_out.celery_executor()
    base = dg.multi_or_in_process_executor
    return dg.ExecutorDefinition(
        name=f"{mode}_by_default",
        config_schema=dg.Field(
            dg.Selector({"in_process": IN_PROC_CONFIG, "multiprocess": MULTI_PROC_CONFIG}),
            default_value={mode: {}},
        ),
        requirements=base.get_requirements,
        executor_creation_fn=base.executor_creation_fn,
        description=f"Dagster's in_process or multiprocess executor; {mode} unless the run config chooses.",
    )


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(loaded, dg.Definitions(executor=executor()))
