"""Text normalisation shared by the sources: stable keys out of free-text names."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    """``"Étoile Lefèvre"`` -> ``"Etoile Lefevre"`` (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def collapse_spaces(text: str) -> str:
    """Trim and turn every run of whitespace into one space."""
    return _SPACES.sub(" ", text).strip()


def name_key(text: str | None) -> str | None:
    """Upper case, accents stripped, whitespace collapsed; ``None`` for a missing or blank name.

    ``"D.  Thomain"``, ``"D. THOMAIN"`` and ``" d. thomain "`` all give ``"D. THOMAIN"``.
    """
    if text is None:
        return None
    key = collapse_spaces(strip_accents(str(text))).upper()
    return key or None
