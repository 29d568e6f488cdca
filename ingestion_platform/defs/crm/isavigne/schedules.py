"""The drop-folder sensor: a run for each new or changed iSaVigne export.

The cursor (JSON) maps each file's path to ``[size, mtime_ns, sha256]``. A file whose size and
modification time are unchanged is not read again; one whose content hash changed (or a new file)
gets a run of the asset of its kind for its export day (from the name, else its modification time in
Europe/Paris), with the hash in the run key: the same content never runs twice, a corrected export
dropped under the same name runs again. Files of unknown kind are ignored; a day outside the
partitions is skipped with a log line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from ingestion_platform.defs.crm.isavigne.assets import ASSET_OF_KIND
from ingestion_platform.defs.crm.isavigne.resources import IsavigneExports
from ingestion_platform.defs.crm.source import ISAVIGNE_ASSETS, PARTITIONS
from ingestion_platform.lib.settings import sensor_status


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dg.sensor(
    name="isavigne_exports_sensor",
    asset_selection=dg.AssetSelection.assets(*ISAVIGNE_ASSETS),
    minimum_interval_seconds=60,
    default_status=sensor_status(),
    description="A run of the asset of its kind, for its export day, per new or changed file of ISAVIGNE_EXPORT_DIR.",
)
def isavigne_exports_sensor(
    context: dg.SensorEvaluationContext, isavigne_exports: IsavigneExports
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, list] = {}
    requests = []
    for dropped in isavigne_exports.dropped():
        name = dropped.request.name
        stat = dropped.path.stat()
        before = seen.get(name)
        if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
            current[name] = before
            continue
        digest = file_hash(dropped.path)
        current[name] = [stat.st_size, stat.st_mtime_ns, digest]
        if before and before[2] == digest:
            continue  # touched, same content
        day = dropped.day.isoformat()
        if not PARTITIONS.has_partition_key(day):
            context.log.info("%s: export day %s is not a partition of the crm group, skipped", name, day)
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{name}:{digest}",
                partition_key=day,
                asset_selection=[ASSET_OF_KIND[dropped.kind]],
                tags={"isavigne/file": name, "isavigne/sha256": digest},
            )
        )
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not requests:
        yield dg.SkipReason(f"no new or changed export in {isavigne_exports.resolved().export_dir}")
        return
    yield from requests
