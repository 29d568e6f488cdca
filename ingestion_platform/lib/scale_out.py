"""Scale-out on Celery: the settings shared by the runs' executor and the worker processes.

With ``INGESTION_EXECUTOR=celery`` (``definitions.executor``) a run's process submits each step as a
Celery task to the broker (RabbitMQ, ``DAGSTER_CELERY_BROKER_URL``) and waits for the results; the
steps run in ``dagster-celery worker`` processes, on this machine or others, that import the same
code location and share the Dagster instance (``DAGSTER_HOME``, storage on PostgreSQL), the
warehouse and ``INGESTION_DATA_DIR``. ``ingestion_platform.prod`` starts such workers; on other machines
``dagster-celery worker start -A dagster_celery.app -y <worker yaml>`` with :func:`worker_config`.

The Celery settings common to both sides (:data:`CELERY_APP_SETTINGS`):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a step's message is acknowledged when the step
  ends, not when a worker takes it. A worker that dies mid-step (killed, OOM, machine lost) gives its
  step back to the broker and another worker runs it again (loads are idempotent), instead of the
  run waiting forever for a result that will never come.
* ``worker_prefetch_multiplier`` 1: a worker reserves no step beyond the ones it runs, so a step
  never waits behind a busy worker while another is idle.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.execution.retries import RetryMode

from ingestion_platform.lib.settings import run_setting

BROKER_URL = run_setting(
    "DAGSTER_CELERY_BROKER_URL",
    "amqp://guest:guest@127.0.0.1:5672//",
    "Celery broker of the celery executor and its workers (RabbitMQ), read when a run or a worker starts",
)
CELERY_APP_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}
BACKEND = "rpc://"


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor, its broker read from ``DAGSTER_CELERY_BROKER_URL`` when the run starts.

    The run config may still set any field of the celery executor (``broker``, ``config_source``,
    ``retries`` ...); what it leaves out comes from here.
    """
    from dagster_celery import celery_executor as base
    from dagster_celery.executor import CeleryExecutor

    def create(init_context: dg.InitExecutorContext) -> CeleryExecutor:
        config = init_context.executor_config
        return CeleryExecutor(
            broker=config.get("broker") or BROKER_URL.read(),
            backend=config.get("backend") or BACKEND,
            config_source={**CELERY_APP_SETTINGS, **(config.get("config_source") or {})},
            include=config.get("include"),
            retries=RetryMode.from_config(config["retries"]),
        )

    return dg.ExecutorDefinition(
        name="celery",
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=create,
        description="dagster-celery's executor: each step is a Celery task run by a worker (INGESTION_EXECUTOR=celery)",
    )


def worker_config(broker: str, concurrency: int) -> dict[str, Any]:
    """The ``-y`` YAML of ``dagster-celery worker start``: the executor's broker and settings, and
    ``concurrency`` steps at once in this worker."""
    settings = {**CELERY_APP_SETTINGS, "worker_concurrency": concurrency}
    return {"execution": {"config": {"broker": broker, "backend": BACKEND, "config_source": settings}}}
