"""The watched upload folder ``CARBON_UPLOAD_DIR``: a CSV dropped there becomes a sync job and its run.

Layout: ``<module>/<year>/<name>.csv`` (data entries of a module and year) and
``factors/<factor_type>/<name>.csv`` (emission factors; the year is today's). Files must be written
atomically (a temporary name, then a rename); names starting with ``.`` are ignored. The sensor's
cursor holds each file's size and modification time, so a file is synced once, and again when
replaced. The file is copied to the API upload store (``$INGESTION_DATA_DIR/uploads/carbon``) before
its job is created: the sync reads that raw copy, whatever happens to the drop later.
"""

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import dagster as dg

from ingestion_platform.defs.carbon import layouts
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.providers import GENERIC
from ingestion_platform.defs.carbon.resources import CarbonSettings
from ingestion_platform.defs.carbon.source import DATA_ENTRIES, EMISSION_FACTORS, SYNC_JOB_TAG
from ingestion_platform.lib.settings import sensor_status
from ingestion_platform.lib.warehouse import WarehouseResource

data_entries_sync_job = dg.define_asset_job("carbon_data_entries_sync", selection=[DATA_ENTRIES])
factors_sync_job = dg.define_asset_job("carbon_factors_sync", selection=[EMISSION_FACTORS])


def _drops(root: Path) -> list[tuple[Path, str]]:
    """(path, fingerprint) of the CSV files of the drop folder's layout."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("*/*/*.csv")):
        if path.name.startswith("."):
            continue
        stat = path.stat()
        found.append((path, f"{stat.st_size}-{stat.st_mtime_ns}"))
    return found


def _request(path: Path, root: Path, jobs: SyncJobs, carbon: CarbonSettings, store: Path) -> dg.RunRequest | None:
    group, sub = path.relative_to(root).parts[:2]
    copy = store / uuid.uuid4().hex / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)  # stored raw before anything parses it
    who = f"upload sensor ({path.relative_to(root)})"
    if group == "factors":
        year = dt.date.today().year
        job_id = jobs.create(
            module_id=GENERIC,
            target_type="factors",
            provider_type="csv_upload",
            year=year,
            inventory_id=None,
            factor_type_id=sub,
            config={"file": str(copy)},
            created_by=who,
        )
        return dg.RunRequest(
            job_name=factors_sync_job.name,
            run_key=f"carbon-job-{job_id}",
            tags={SYNC_JOB_TAG: str(job_id), "dagster/max_retries": "0"},
            run_config={"ops": {"carbon__emission_factors": {"config": {"job_id": job_id}}}},
        )
    if group not in layouts.MODULES or not sub.isdigit():
        return None
    year = int(sub)
    job_id = jobs.create(
        module_id=group,
        target_type="data_entries",
        provider_type="csv_upload",
        year=year,
        inventory_id=carbon.inventory_id(year),
        config={"file": str(copy)},
        created_by=who,
    )
    tags = {
        SYNC_JOB_TAG: str(job_id),
        "dagster/max_retries": "0",
        "dagster/asset_partition_range_start": f"{year}-01-01",
        "dagster/asset_partition_range_end": f"{year}-12-31",
    }
    return dg.RunRequest(
        job_name=data_entries_sync_job.name,
        run_key=f"carbon-job-{job_id}",
        tags=tags,
        run_config={"ops": {"carbon__data_entries": {"config": {"job_id": job_id}}}},
    )


@dg.sensor(jobs=[data_entries_sync_job, factors_sync_job], default_status=sensor_status(), minimum_interval_seconds=30)
def carbon_upload_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, carbon: CarbonSettings):
    """A CSV dropped in CARBON_UPLOAD_DIR (<module>/<year>/*.csv, factors/<factor_type>/*.csv): a sync job
    and its run."""
    root = carbon.drop_dir()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    jobs = SyncJobs(warehouse.get())
    requests, skipped = [], []
    for path, fingerprint in _drops(root):
        key = str(path.relative_to(root))
        if seen.get(key) == fingerprint:
            continue
        request = _request(path, root, jobs, carbon, carbon.api_upload_dir())
        seen[key] = fingerprint
        if request is None:
            skipped.append(key)
        else:
            requests.append(request)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no new file in {root}" + (f"; not of the layout: {skipped}" if skipped else ""))
    return requests
