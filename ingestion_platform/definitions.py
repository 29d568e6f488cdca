"""The code location: every source folder under ``defs/`` registers itself.

Only global policy lives here; adding a source never edits this file.
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
