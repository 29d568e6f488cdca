"""The local ``.env``: ``.env.example`` with the sources pointed at the shipped samples, and how it is read.

``make .env`` (a prerequisite of ``make demo`` and ``make dev``) runs
``python -m ingestion_platform.cli local-env``, which writes ``.env`` = ``.env.example`` where only the
lines of the source settings (:func:`sample_settings`) are replaced by ``NAME=file:///...`` values: the
absolute ``file://`` URLs of the samples in this checkout (``defs/pmu/sample``, ``defs/events/sample``),
and the absolute path of the iSaVigne sample exports (``defs/crm/isavigne/sample``).
Nothing else differs, so every other setting keeps the example's value or stays commented out.

When ``.env`` already exists it is never overwritten silently (see :func:`write_local_env`): it is
rewritten only with ``--force``; when ``.env.example`` is newer and ``.env`` is not what it would
generate (local edits, or a changed example), ``.env`` is kept and the fresh version is written to
``.env.new`` for the user to compare.

Dagster commands read ``.env`` from their working directory and its values win over the shell's
(``dagster._cli.utils``); :func:`load_dotenv` does the same for ``python -m ingestion_platform.cli``, so
both see the same settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

PACKAGE_DIR = Path(__file__).resolve().parent
PMU_SAMPLE = PACKAGE_DIR / "defs" / "pmu" / "sample"
EVENTS_SAMPLE = PACKAGE_DIR / "defs" / "events" / "sample"
_ENTRY = r"^#?[ \t]*{name}="


def sample_settings(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """The source settings that replay the shipped samples, in ``.env.example`` order.

    The Eventbrite organization and the iCalendar feeds are read from the sample folders (the
    organization folder under ``eventbrite/v3/organizations``, every ``ics/*.ics`` as a feed named by
    its file name), so a sample regenerated with other content needs no change here.
    """
    pmu = package_dir / "defs" / "pmu" / "sample"
    events = package_dir / "defs" / "events" / "sample"
    organizations = sorted(p.name for p in (events / "eventbrite" / "v3" / "organizations").iterdir() if p.is_dir())
    feeds = [{"name": p.stem, "url": p.as_uri()} for p in sorted((events / "ics").glob("*.ics"))]
    isavigne = package_dir / "defs" / "crm" / "isavigne" / "sample"
    if not (pmu / "rest").is_dir() or not organizations or not feeds or not any(isavigne.glob("clients_*")):
        raise FileNotFoundError(f"the shipped samples are missing under {package_dir}")
    return {
        "PMU_API_BASE_URL": pmu.as_uri(),
        "EVENTBRITE_API_URL": (events / "eventbrite" / "v3").as_uri(),
        "EVENTBRITE_ORGANIZATION_IDS": ",".join(organizations),
        "MONTREAL_CKAN_URL": (events / "montreal").as_uri(),
        "ICS_FEEDS": json.dumps(feeds, ensure_ascii=False),
        "ISAVIGNE_EXPORT_DIR": str(isavigne),  # a drop folder: a path
    }


def render(template: str, settings: Mapping[str, str]) -> str:
    """``template`` with the first ``NAME=`` or ``# NAME=`` line of each setting replaced by ``NAME=value``.

    A setting the template does not list is an error (``.env`` lists what ``.env.example`` lists).
    """
    lines = template.splitlines(keepends=True)
    for name, value in settings.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"{name}: a value on one line is expected")
        pattern = re.compile(_ENTRY.format(name=re.escape(name)))
        index = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
        if index is None:
            raise ValueError(f"the template has no line for {name} (NAME= or # NAME=)")
        ending = "\r\n" if lines[index].endswith("\r\n") else "\n"
        lines[index] = f"{name}={value}{ending}"
    return "".join(lines)


@dataclass(frozen=True)
class Outcome:
    """What :func:`write_local_env` did: ``created``, ``rewritten``, ``up to date`` or ``kept``."""

    status: str
    message: str


def write_local_env(template: Path, target: Path, *, force: bool = False, package_dir: Path = PACKAGE_DIR) -> Outcome:
    """Write ``target`` (``.env``) from ``template`` (``.env.example``) with the sample settings.

    * missing: written (``created``);
    * ``force``: written over whatever is there (``rewritten``);
    * already what it would be: only touched, so ``make`` sees it newer than the template (``up to date``);
    * different and at least as new as the template: the user's file, left alone (``kept``);
    * different and older than the template (the example changed, or it was edited): left alone, the fresh
      version is written next to it as ``.env.new`` and the message says how to resolve it (``kept``).
    """
    fresh = render(template.read_text(encoding="utf-8"), sample_settings(package_dir))
    if force or not target.exists():
        status = "rewritten" if target.exists() else "created"
        target.write_text(fresh, encoding="utf-8")
        return Outcome(status, f"{target.name}: {status} from {template.name}, sources replay the shipped samples")
    current = target.read_text(encoding="utf-8")
    if current == fresh:
        os.utime(target)
        return Outcome("up to date", f"{target.name}: up to date")
    if target.stat().st_mtime >= template.stat().st_mtime:
        return Outcome("kept", f"{target.name}: kept (it differs from what {template.name} gives: your edits)")
    spare = target.with_name(target.name + ".new")
    spare.write_text(fresh, encoding="utf-8")
    return Outcome(
        "kept",
        f"{target.name}: kept, although {template.name} is newer; the regenerated file is {spare.name}: compare "
        f"them (diff {target.name} {spare.name}), then `mv {spare.name} {target.name}` or `touch {target.name}`",
    )


def load_dotenv(directory: Path | None = None) -> list[str]:
    """Set the variables of ``<directory>/.env`` (default: the working directory) in ``os.environ``, over
    the shell's values, as the Dagster CLI does; the names set, sorted. No file: nothing happens."""
    path = (directory or Path.cwd()) / ".env"
    if not path.is_file():
        return []
    values = {name: value for name, value in dotenv_values(path).items() if value is not None}
    os.environ.update(values)
    return sorted(values)
