"""Run a pipeline from its YAML in a Dagster defs sandbox, on a given warehouse and data directory."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster.components.testing import create_defs_folder_sandbox

from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource


@dataclass
class Outcome:
    result: dg.ExecuteInProcessResult
    metadata: dict[str, Any]
    checks: dict[str, bool]

    @property
    def error(self) -> str:
        for event in self.result.all_events:
            data = event.event_specific_data
            if event.is_step_failure and getattr(data, "error", None) is not None:
                return data.error.to_string()
        return ""


@contextlib.contextmanager
def pipeline_defs(yaml_text: str, files: Mapping[str, bytes] | None = None) -> Iterator[tuple[dg.Definitions, Path]]:
    """The definitions of one pipeline folder holding ``defs.yaml`` (and ``files`` beside it)."""
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / "pipe"
        folder.mkdir(parents=True)
        (folder / "defs.yaml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
        for name, body in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(body)
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_component, defs):
            yield defs, folder


def run_job(
    defs: dg.Definitions,
    job_name: str,
    *,
    warehouse_url: str,
    data_dir: Path,
    partition_key: str | None = None,
    replay: bool = False,
) -> dict[str, Outcome]:
    """Run the pipeline's job in process; the outcome of each stream (by op name)."""
    resources = {
        "warehouse": WarehouseResource(database_url=warehouse_url),
        "raw_store": RawStoreResource(data_dir=str(data_dir)),
    }
    full = dg.Definitions.merge(defs, dg.Definitions(resources=resources))
    job = full.resolve_job_def(job_name)
    run_config = None
    if replay:
        run_config = {"ops": {node.name: {"config": {"reprocess_from_raw": True}} for node in job.graph.nodes}}
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=partition_key,
        raise_on_error=False,
        run_config=run_config,
    )
    outcomes = {}
    for node in job.graph.nodes:
        mats = result.asset_materializations_for_node(node.name)
        metadata = {k: v.value for m in mats for k, v in m.metadata.items()}
        checks = {
            c.check_name: c.passed
            for c in result.get_asset_check_evaluations()
            if c.asset_key.path[-1] == node.name.split("__")[-1]
        }
        outcomes[node.name.split("__")[-1]] = Outcome(result, metadata, checks)
    return outcomes
