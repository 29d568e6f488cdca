"""The ``Pipeline`` component: a folder ``ingestion_platform/defs/pipelines/<name>/`` whose ``defs.yaml``
says ``type: ingestion_platform.components.pipeline.Pipeline`` becomes one asset per stream (with its
checks), a job and an optional schedule. docs/PIPELINES.md documents every attribute.

Mistakes Dagster's schema validation cannot see (a stream left without an extract once the defaults
are applied, ``upsert`` without a key) are raised here with the file, the line and the field, the way
Dagster reports schema errors, so ``dg check defs`` names them too.
"""

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
from dagster_shared.yaml_utils import parse_yaml_with_source_position

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.runner import StreamRun
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.settings import run_setting, schedule_status
from ingestion_platform.lib.warehouse import WarehouseResource

KEY_PREFIX = "pipelines"
NOTIFY_METADATA = "ingestion/notify"

# The settings the shipped example pipelines read (their defs.yaml name them in *_env attributes).
EMISSION_FACTORS_CSV = run_setting(
    "PIPELINES_EMISSION_FACTORS_CSV",
    "",
    "example pipeline emission_factors: the CSV to read (default: ../shared/carbon/... beside the repository)",
)
S3_ENDPOINT = run_setting("PIPELINES_S3_ENDPOINT", "", "S3 loads: endpoint URL of an S3-compatible server (empty: AWS)")
S3_ACCESS_KEY = run_setting("PIPELINES_S3_ACCESS_KEY", "", "S3 loads: access key id", secret=True)
S3_SECRET_KEY = run_setting("PIPELINES_S3_SECRET_KEY", "", "S3 loads: secret access key", secret=True)
S3_BUCKET = run_setting("PIPELINES_S3_BUCKET", "ingestion", "example pipeline pmu_runners: the S3 bucket")


class PipelineConfig(dg.Config):
    """Run configuration of every pipeline asset."""

    reprocess_from_raw: bool = False
    """Rebuild the outputs from the payloads the raw store holds for the partition, without extracting."""


class PipelineDefinitionError(ValueError):
    """A pipeline file that cannot become definitions: names the file, the line and the field."""


class Pipeline(dg.Component, dg.Resolvable, dg.Model):
    """A declarative pipeline: streams of extract -> transform -> load (docs/PIPELINES.md)."""

    name: str
    description: str = ""
    group: str = "pipelines"
    owners: list[str] = ["team:data-platform"]
    partitions: schema.Partitions | None = None
    schedule: schema.Schedule | None = None
    notifications: schema.Notifications | None = None
    defaults: schema.StreamOptions | None = None
    streams: list[schema.Stream]

    @pydantic.field_validator("name", "group")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(schema.NAME, value):
            raise ValueError(f"{value!r} is not a name (lower case letter, then lower case, digits, _)")
        return value

    @pydantic.field_validator("streams")
    @classmethod
    def _streams(cls, value: list[schema.Stream]) -> list[schema.Stream]:
        if not value:
            raise ValueError("a pipeline has at least one stream")
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two streams are named {twice}")
        return value

    # -- loading: validated by this very model, so an error names the exact line --------------------
    @classmethod
    def get_model_cls(cls) -> type[pydantic.BaseModel]:
        """The YAML is validated against this class itself (not the template-friendly model Dagster
        derives, whose unions make pydantic report every nested error at the line of ``streams:``):
        every error names the file, the line and the field. ``{{ }}`` templates are allowed in text
        values and rendered in ``load``."""
        return cls

    @classmethod
    def load(cls, attributes: pydantic.BaseModel | None, context: dg.ComponentLoadContext) -> "Pipeline":
        if attributes is None:
            raise PipelineDefinitionError(f"{Path(context.path) / 'defs.yaml'}: a pipeline needs attributes")
        raw = attributes.model_dump(by_alias=True, exclude_unset=True)
        rendered = context.resolution_context.at_path("attributes").resolve_value(raw)
        if rendered == raw:
            return attributes  # type: ignore[return-value]
        try:
            return cls.model_validate(rendered)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            path = ["attributes", *first["loc"]]
            raise PipelineDefinitionError(
                _where(Path(context.path), path[:-1], str(path[-1])) + f"{first['msg']} (after rendering templates)"
            ) from None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        folder = Path(context.path)
        streams = [
            self._checked(folder, index, schema.effective(self.defaults, s)) for index, s in enumerate(self.streams)
        ]
        partitions = None
        if self.partitions is not None:
            partitions = dg.DailyPartitionsDefinition(
                start_date=self.partitions.start,
                end_offset=self.partitions.end_offset,
                timezone=self.partitions.timezone,
            )
        assets = [self._asset(folder, stream, partitions) for stream in streams]
        job = dg.define_asset_job(f"pipeline_{self.name}", selection=dg.AssetSelection.assets(*assets))
        schedules = []
        if self.schedule is not None:
            schedules.append(_schedule(f"pipeline_{self.name}_schedule", job, self.schedule, partitions))
        return dg.Definitions(assets=assets, jobs=[job], schedules=schedules)

    # -- validation with the file and line ---------------------------------------------------------
    def _checked(self, folder: Path, index: int, stream: schema.Stream) -> schema.Stream:
        problem = schema.stream_problem(stream)
        if problem is not None:
            field, why = problem
            raise PipelineDefinitionError(_where(folder, ["attributes", "streams", index], field) + why)
        return stream

    # -- one asset per stream ----------------------------------------------------------------------
    def _asset(
        self, folder: Path, stream: schema.Stream, partitions: dg.DailyPartitionsDefinition | None
    ) -> dg.AssetsDefinition:
        key = dg.AssetKey([KEY_PREFIX, self.name, stream.name])
        pipeline = self.name
        kinds = {"python", stream.source.type} | {target.type for target in stream.targets}
        notify = self.notifications.model_dump(exclude_none=True) if self.notifications else {}
        checks = [
            dg.AssetCheckSpec(
                check.check_name,
                asset=key,
                blocking=check.blocking,
                description=f"{check.kind} ({check.severity})",
            )
            for check in stream.checks or []
        ]
        names = [c.name for c in checks]
        if len(names) != len(set(names)):
            raise PipelineDefinitionError(
                _where(folder, ["attributes", "streams", self._index(stream)], "checks")
                + f"two checks of the stream share a name in {names}: give them a name"
            )

        @dg.asset(
            key=key,
            description=stream.description or self.description or f"Pipeline {pipeline}, stream {stream.name}",
            group_name=self.group,
            partitions_def=partitions,
            backfill_policy=dg.BackfillPolicy.multi_run(1) if partitions is not None else None,
            owners=list(self.owners),
            kinds=kinds,
            tags={"pipeline": pipeline},
            check_specs=checks,
            metadata={
                "pipeline": dg.MetadataValue.text(pipeline),
                "pipeline_file": dg.MetadataValue.path(str(folder / "defs.yaml")),
                "mode": dg.MetadataValue.text(stream.mode or "append"),
                "schema_policy": dg.MetadataValue.text(stream.schema_policy or "evolve"),
                "loads": dg.MetadataValue.json(
                    [load.model_dump(by_alias=True, exclude_none=True) for load in stream.load or []]
                ),
                NOTIFY_METADATA: dg.MetadataValue.json(notify),
            },
        )
        def _pipeline_asset(
            context: dg.AssetExecutionContext,
            config: PipelineConfig,
            warehouse: WarehouseResource,
            raw_store: RawStoreResource,
        ):
            partition_key, window = None, None
            if context.has_partition_key:
                partition_key = context.partition_key
                span = context.partition_time_window
                window = (span.start.date(), span.end.date())
            run = StreamRun(
                pipeline=pipeline,
                stream=stream,
                asset_key=key.to_user_string(),
                base=folder,
                warehouse=warehouse.get(),
                raw_store=raw_store.get(),
                run_id=context.run.run_id,
                partition_key=partition_key,
                window=window,
                replay=config.reprocess_from_raw,
                log=context.log,
            )
            metadata, results = run.run()
            context.log.info(
                "%s %s: %s row(s) out, %s rejected",
                key.to_user_string(),
                partition_key or "",
                metadata["rows_out"].value,
                run.rejected,
            )
            yield dg.MaterializeResult(metadata=metadata)
            failed = []
            for result in results:
                yield result
                spec = next(c for c in stream.checks or [] if c.check_name == result.check_name)
                if not result.passed and spec.blocking and spec.severity == "error":
                    failed.append(result.check_name)
            if failed:
                raise dg.Failure(f"blocking check(s) failed: {', '.join(failed)}")

        return _pipeline_asset

    def _index(self, stream: schema.Stream) -> int:
        return next(i for i, s in enumerate(self.streams) if s.name == stream.name)


def _schedule(
    name: str, job: Any, spec: schema.Schedule, partitions: dg.DailyPartitionsDefinition | None
) -> dg.ScheduleDefinition:
    """At each tick of ``spec.cron``: the job, on the last complete day when the stream is partitioned."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        default_status=schedule_status(),
        description=f"{spec.cron} ({spec.timezone}); partitioned: the last complete day",
    )
    def _tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if partitions is None:
            return dg.RunRequest()
        key = partitions.get_last_partition_key(current_time=context.scheduled_execution_time)
        if key is None:
            return dg.SkipReason("no complete partition yet")
        return dg.RunRequest(run_key=key, partition_key=key)

    return _tick


def _where(folder: Path, path: list[Any], field: str) -> str:
    """``<file>:<line> - <field path>: `` of a field of ``defs.yaml`` (the stream's line when the field
    comes from defaults or is missing)."""
    file = folder / "defs.yaml"
    shown = ".".join(str(p) for p in [*path[1:], field])
    try:
        tree = parse_yaml_with_source_position(file.read_text(encoding="utf-8"), str(file)).source_position_tree
        node = tree
        for part in path:
            node = node.children[part]
        position = node.position
        child = node.children.get(field.split(".")[0]) if hasattr(node, "children") else None
        if child is not None:
            position = child.position
        return f"{file}:{position.start.line} - {shown}: "
    except (OSError, KeyError, AttributeError, TypeError):
        return f"{file} - {shown}: "
