"""The README's commands run as written from a fresh clone, and it names what the code location declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingestion_platform.definitions import defs

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


def _commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks (continuations, comments and NAME=value lines left out)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        continued = False
        for line in block.splitlines():
            stripped = line.strip()
            was_continued, continued = continued, stripped.endswith("\\")
            if stripped and not was_continued and not stripped.startswith("#"):
                out.append(stripped)
    return out


@pytest.mark.parametrize("doc", ["README.md", "docs/ADDING_A_SOURCE.md"])
def test_every_command_shown_uses_make_or_the_clones_venv(doc: str) -> None:
    commands = _commands((REPO_ROOT / doc).read_text(encoding="utf-8"))
    assert commands
    bare = [
        c
        for c in commands
        # curl: an HTTP client (the sync API examples), not Python or dagster
        if not (c.startswith(("make ", ".venv/bin/", "export ", "curl ")) or re.match(r"^[A-Z][A-Z0-9_]*=", c))
    ]
    assert not bare, f"{doc}: commands that would use the system Python or another dagster: {bare}"


def test_every_make_target_the_readme_uses_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z.-]*):", MAKEFILE, re.M)) | {".env"}
    used = {c.split()[1] for c in _commands(README) if c.startswith("make ")}
    assert used <= targets, used - targets
    assert {"demo", "dev", "test", "backfill"} <= used


def test_the_readme_names_every_asset_group_and_asset() -> None:
    graph = defs().resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for node in graph.asset_nodes:
        groups.setdefault(node.group_name, set()).add(node.key.to_user_string())
    section = README.split("### Asset groups", 1)[1].split("\n## ", 1)[0]
    for group, keys in groups.items():
        row = next((line for line in section.splitlines() if line.startswith(f"| `{group}` |")), None)
        assert row is not None, f"the README's asset groups table lacks {group}"
        assert all(f"`{key}`" in row for key in keys), (group, keys)
    assert "events_monitoring" in groups  # the group of events/import_stats


def test_no_plots_tab_in_dagster_1_13() -> None:
    assert "*Plots* tab" not in README and "Plots tab" not in README
    assert "from *Table* to *Plots*" in README
