"""Checks of the iSaVigne assets (the cross-source CRM checks are in ``defs/crm/checks.py``)."""

from __future__ import annotations

from ingestion_platform.defs.crm.source import ISAVIGNE, ISAVIGNE_ASSETS, PARTITIONS
from ingestion_platform.lib.checks import dead_letter_check

CHECKS = [dead_letter_check(asset=key, source=ISAVIGNE.name, partitions_def=PARTITIONS) for key in ISAVIGNE_ASSETS]
"""Unresolved dead letters (lines or files that could not be read) of each asset's days: a warning."""
