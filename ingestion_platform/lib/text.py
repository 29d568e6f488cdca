"""Text normalisation shared by the sources: clean text, mojibake repair, stable keys and matching forms.

The one place for it: parsers import these instead of writing their own.

* :func:`fold` — accents stripped (NFKD, combining marks dropped) *and* Latin letters that Unicode does not
  decompose transliterated: ``œ`` → ``oe``, ``æ`` → ``ae``, ``ß`` → ``ss``, ``ø`` → ``o``, ``ł`` → ``l``,
  ``đ`` → ``d``, ``þ`` → ``th``. Non-Latin scripts, punctuation and symbols are left alone.
* :func:`clean_text` — NFC, line breaks unified and kept, whitespace runs collapsed, ``None`` when blank.
* :func:`repair_mojibake` — UTF-8 read as Windows-1252/Latin-1 (``"MontrÃ©al"``) back to ``"Montréal"``.
* :func:`name_key` — upper case, folded, whitespace collapsed: people's and horses' keys.
* :func:`normalise_title` — case folded, folded, punctuation and French/English stop words dropped: the form
  titles and venues are compared in (``"Voyage au cœur"`` and ``"Voyage au coeur"`` → ``"voyage coeur"``).

Libraries (maintained ones instead of hand-written tables):

* ``anyascii`` for the letters NFKD leaves alone. Chosen over ``text-unidecode``: ISC licence (text-unidecode is
  Artistic/GPL), still released (text-unidecode's last release is 1.3, 2019), newer Unicode tables, and a
  per-character API, which lets :func:`fold` touch only Latin letters (we do not want ``"🎉"`` → ``":tada:"``
  in a title, nor two Chinese titles made equal by their pinyin).
* ``ftfy`` (``fix_encoding`` only: it does not uncurl quotes, unescape HTML or change widths) for mojibake. Over the
  recorded Eventbrite and Montréal payloads and ICS feeds (``/work/shared/events``) it changes nothing: correct
  French text (``"l’œil"``, ``"Côte-des-Neiges–Notre-Dame-de-Grâce"``) is left as it is.

PMU horse keys and ``idCheval`` (what the recordings in ``/work/shared/pmu/*/`` show, checked before ``name_key``
started folding ligatures; ``test_pmu_conformance`` keeps checking it):

* 730 runners carry ``idCheval`` (2025-26 captures; the 2018 and 2024 ones have none). In every one it is
  ``nom-nomMere-nomPere`` upper-cased with nothing else changed: apostrophes and dots are kept as sent
  (``"NOM DE D'LA"``, ``"DENISE F.BOKO"``, no space added), lower-case foreign dams and sires are upper-cased
  (``"S.J.'s Caviar"`` → ``"S.J.'S CAVIAR"``, ``"Deesse d'Inverne"`` → ``"DEESSE D'INVERNE"``).
* No horse name in any recording (``nom``, ``nomMere``, ``nomPere``, ``nomPereMere``, 2018 to 2026) has a
  non-ASCII character: no accent, no ``Œ``/``Æ``/``ß``/``Ø``. The API sends horse names in plain ASCII capitals
  (French registered names carry no accents); accents only appear in people's names (``driver`` ``"T. ROSÉN"``,
  ``eleveur``, ``proprietaire``). So the recordings cannot show how ``idCheval`` would spell a ``Œ``, and
  folding changes no key computed from them: every computed ``NAME-DAM-SIRE`` equals ``idCheval``.
* Should a ligature ever come, ``pmu.parse`` keys the horse by ``name_key(idCheval)``: the key is ``...OE...``
  whether the API writes ``Œ`` or ``OE``, and a response without ``idCheval`` computes the same key from the
  names, so the horse keeps one key across days (``pmu_horse_id`` keeps ``idCheval`` verbatim). Before this
  change such a name kept its ``Œ`` (``ß`` already became ``SS`` through ``str.upper``).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import ftfy
from anyascii import anyascii

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+")

# Only encoding repair: quotes, HTML entities, widths, line breaks and normalisation are not ftfy's business here.
_MOJIBAKE_ONLY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_encoding=True,
    restore_byte_a0=True,  # "à" read as cp1252 is "Ã" + NO-BREAK SPACE, often turned into a plain space
    replace_lossy_sequences=False,  # never put U+FFFD into a text that did not have one
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

STOP_WORDS: frozenset[str] = frozenset(
    {
        # English
        *("a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "the", "to", "with"),
        # French (after folding: à → a; elisions l', d' split off as words)
        *("au", "aux", "avec", "d", "dans", "de", "des", "du", "en", "et", "l", "la", "le", "les"),
        *("ou", "par", "pour", "sur", "un", "une"),
    }
)
"""French and English function words that :func:`normalise_title` drops by default."""


def fold(text: str) -> str:
    """Accents stripped and undecomposable Latin letters spelled out; case kept.

    ``"Étoile Lefèvre"`` → ``"Etoile Lefevre"``, ``"Œuvre"`` → ``"Oeuvre"``, ``"CŒUR"`` → ``"COEUR"``,
    ``"Straße"`` → ``"Strasse"``, ``"Ærø"`` → ``"Aero"``. Characters of other scripts, punctuation, symbols and
    emoji are kept as they are (``"’"`` stays ``"’"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    letters = [c for c in decomposed if not unicodedata.combining(c)]
    if all(c.isascii() for c in letters):
        return "".join(letters)
    out = []
    for i, c in enumerate(letters):
        if c.isascii() or not c.isalpha() or not unicodedata.name(c, "").startswith("LATIN "):
            out.append(c)
            continue
        spelled = anyascii(c) or c
        if len(spelled) > 1 and c.isupper() and _upper_neighbour(letters, i):
            spelled = spelled.upper()  # "CŒUR" → "COEUR", not "COeUR"; "Œuvre" → "Oeuvre"
        out.append(spelled)
    return "".join(out)


def _upper_neighbour(letters: list[str], i: int) -> bool:
    before = letters[i - 1] if i > 0 else ""
    after = letters[i + 1] if i + 1 < len(letters) else ""
    return before.isupper() or after.isupper()


strip_accents = fold
"""Former name of :func:`fold` (it now folds ligatures too)."""


def collapse_spaces(text: str) -> str:
    """Trim and turn every run of whitespace into one space."""
    return _SPACES.sub(" ", text).strip()


def clean_text(value: Any) -> str | None:
    """``value`` as tidy text: NFC, ``\\r\\n``/``\\r`` → ``\\n`` (line breaks kept), whitespace runs inside a line
    collapsed to one space, trimmed. ``None`` for ``None``, a float NaN, or text that is blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\n" not in text and "\r" not in text:  # the common case, without the per-line pass
        return " ".join(text.split()) or None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(" ".join(line.split()) for line in lines).strip() or None


# A necessary sign of UTF-8 read as Windows-1252 or Latin-1: a lead byte (U+00C2..U+00F4 when read so)
# followed by a continuation byte (0x80..0xBF read as Latin-1 or as Windows-1252's characters there).
# Checked first because ftfy's own check costs ~0.3 us a character and most French text has no mojibake.
_MOJIBAKE_PAIR = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160"
    "\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153"
    "\u017e\u0178]"
)


def repair_mojibake(text: str | None) -> tuple[str | None, bool]:
    """``(text, changed)``: UTF-8 that was decoded as Windows-1252/Latin-1 repaired (``"MontrÃ©al"`` →
    ``"Montréal"``, ``"Ã\\xa0"`` → ``"à"``), through ftfy's encoding fixer; correct text is returned unchanged."""
    if not text or text.isascii() or not _MOJIBAKE_PAIR.search(text):
        return text, False
    fixed = ftfy.fix_text(text, _MOJIBAKE_ONLY)
    return fixed, fixed != text


def name_key(text: str | None) -> str | None:
    """Upper case, folded, whitespace collapsed; ``None`` for a missing or blank name.

    ``"D.  Thomain"``, ``"D. THOMAIN"`` and ``" d. thomain "`` all give ``"D. THOMAIN"``; ``"Cœur de Lion"``
    gives ``"COEUR DE LION"``."""
    if text is None:
        return None
    key = collapse_spaces(fold(str(text))).upper()
    return key or None


def normalise_title(text: str | None, stop_words: Iterable[str] = STOP_WORDS) -> str:
    """Comparable form of a title or venue: case folded, :func:`fold`-ed, punctuation dropped, stop words removed,
    words in order. ``"L'Été à  Montréal – Jazz & Blues!"`` → ``"ete montreal jazz blues"``.

    A text made only of stop words keeps them (``"The Who"`` → ``"who"``, ``"Le Un"`` → ``"le un"``)."""
    if not text:
        return ""
    words = stop_words if isinstance(stop_words, frozenset) else frozenset(stop_words)
    return _normalise_title(str(text), words)


@functools.lru_cache(maxsize=65_536)
def _normalise_title(text: str, stop_words: frozenset[str]) -> str:
    folded = fold(unicodedata.normalize("NFKC", text).casefold())
    tokens = _WORD.findall(folded)
    kept = [token for token in tokens if token not in stop_words]
    return " ".join(kept or tokens)
