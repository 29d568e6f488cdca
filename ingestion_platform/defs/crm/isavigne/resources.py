"""The iSaVigne drop folder as a Dagster resource: where the exports are dropped, and how they are listed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ingestion_platform.defs.crm.isavigne.aliases import kind_of
from ingestion_platform.defs.crm.isavigne.parse import export_day
from ingestion_platform.lib.fetch import FileFetcher, Request
from ingestion_platform.lib.settings import SourceSettings, setting


@dataclass(frozen=True)
class DroppedFile:
    """An export in the drop folder: its request (named by its path relative to the folder), kind and day."""

    request: Request
    kind: str
    day: dt.date
    path: Path


class IsavigneExports(SourceSettings):
    """iSaVigne exports (CSV, .xlsx, .xls) dropped in one folder, named ``<kind>_<day>.<ext>``
    (``clients_2025-03-14.csv``, ``ventes_20250314.xlsx``); subfolders are read too. Drops must be
    written atomically (a temporary name, then a rename)."""

    export_dir: str | None = setting(
        "ISAVIGNE_EXPORT_DIR", "./exports/isavigne", "folder where iSaVigne exports are dropped (CSV, .xlsx, .xls)"
    )

    @property
    def provider(self) -> str:
        return f"file drop {self.resolved().export_dir}"

    def fetcher(self) -> FileFetcher:
        return FileFetcher(Path(self.resolved().export_dir))

    def dropped(self, kind: str | None = None) -> list[DroppedFile]:
        """The exports in the folder (of ``kind``), in name order; files of no known kind are ignored."""
        fetcher = self.fetcher()
        if not fetcher.root.is_dir():
            return []
        found = []
        for request in fetcher.glob("**/*"):
            file_kind = kind_of(request.name)
            if file_kind is None or (kind is not None and file_kind != kind):
                continue
            if request.name.rsplit("/", 1)[-1].startswith((".", "~$")):  # temporary and lock files
                continue
            path = fetcher.root / request.name
            day = export_day(request.name, path.stat().st_mtime)
            if day is not None:
                found.append(DroppedFile(request, file_kind, day, path))
        return found


@dg.definitions
def isavigne_resources() -> dg.Definitions:
    return dg.Definitions(resources={"isavigne_exports": IsavigneExports()})
