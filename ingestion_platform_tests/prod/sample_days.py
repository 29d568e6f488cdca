"""More offline PMU days than the three shipped ones, written by the sample's own generator.

``ingestion_platform/defs/pmu/sample/generate.py`` builds a day from its meetings and races, its
date and a seed (every value of the day comes from the seeded generator, every timestamp from the
date). ``write_days(root, days)`` writes the shipped days as they are and any other day from the
meetings and races of a shipped day (the 13th, 14th, 15th in turn), with its own date and seed: a
day of the same shape and different horses' figures, times and dividends, under ``root`` in the
layout of the shipped sample (``PMU_API_BASE_URL=file://<root>``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from ingestion_platform_tests.pmu_helpers import SAMPLE_DIR


@cache
def generator() -> ModuleType:
    path = Path(SAMPLE_DIR) / "generate.py"
    spec = importlib.util.spec_from_file_location("pmu_sample_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sample_day(day: dt.date):
    gen = generator()
    shipped = gen.sample_days()
    for known in shipped:
        if known.date == day:
            return known
    template = shipped[day.toordinal() % len(shipped)]
    seed = int(f"{day:%Y%m%d}")
    return gen.SampleDay(day, seed, template.meetings, template.races, template.captured)


def write_days(root: Path, days: list[dt.date]) -> int:
    """Write the files of ``days`` under ``root``; the number of files."""
    files: dict[str, object] = {}
    for day in days:
        files.update(generator().build_day(sample_day(day)))
    for rel, payload in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(files)
