"""Reading the CSV files the carbon providers receive (uploads, drops, Tableau view exports).

Real files are messy (see ../shared/carbon/SOURCES.md): UTF-8 with or without BOM, UTF-16, Windows-1252,
``;`` or ``,`` or tab delimiters, CR, LF or CRLF line endings, title rows above the header, ragged rows,
decimal commas and thousands separators, ``$`` and ``%`` signs. :func:`read_table` decodes the bytes,
finds the delimiter and the header row (the first row holding every required column of the layout),
and returns the data rows with their physical line numbers; a file without such a header is refused
with a ``RecordError`` naming the file and what was looked for. Everything else (one bad value) is
the caller's per-row business: it rejects the row, not the file.

:func:`number` reads one locale-formatted number.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.text import fold, repair_mojibake

DELIMITERS = (",", ";", "\t", "|")
HEADER_SEARCH_ROWS = 40
SNIFF_ROWS = 60


def matches(alias: str, key: str) -> bool:
    """Whether the header ``key`` (a :func:`header_key`) is ``alias``; an alias ending in ``*`` is a prefix
    (``"GHG Conversion Factor *"`` matches ``"GHG Conversion Factor 2024"``)."""
    if alias.endswith("*"):
        return key.startswith(header_key(alias[:-1]))
    return key == header_key(alias)


def header_key(name: str) -> str:
    """The form headers are compared in: folded, lower case, letters and digits only
    (``"Nom base français"`` -> ``"nombasefrancais"``, ``"Distance (km)"`` -> ``"distancekm"``)."""
    return re.sub(r"[^0-9a-z]", "", fold(name.replace("\ufeff", "")).lower())


def decode(body: bytes, name: str) -> tuple[str, str]:
    """``(text, encoding)``: BOMs first (UTF-8, UTF-16), then strict UTF-8, then Windows-1252 (every byte
    but five decodes), then Latin-1. A NUL-riddled file that is not UTF-16 is refused."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16"), "utf-16"
    if body.count(b"\x00") > max(4, len(body) // 10):
        raise RecordError("binary content (NUL bytes everywhere): not a CSV file", request=name)
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return body.decode("latin-1"), "latin-1"


@dataclass
class Table:
    """The data rows of a CSV file, each with the physical line it starts on."""

    name: str
    encoding: str
    delimiter: str
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]]
    repaired: int = 0
    """cells whose double-encoded UTF-8 (``SystÃ¨me``) was repaired"""

    def index(self, aliases: Mapping[str, Sequence[str]]) -> dict[str, int]:
        """Field -> column position, for each field whose header (one of its aliases) is present."""
        keys = [header_key(h) for h in self.header]
        found: dict[str, int] = {}
        for field, names in aliases.items():
            position = next((i for alias in names for i, key in enumerate(keys) if matches(alias, key)), None)
            if position is not None:
                found[field] = position
        return found

    def records(self) -> Iterable[tuple[int, dict[str, str], list[str]]]:
        """``(line, {header: cell}, extra non-empty cells)`` per data row; short rows are padded with ''."""
        width = len(self.header)
        for line, cells in self.rows:
            extra = [c for c in cells[width:] if c.strip()]
            padded = cells[:width] + [""] * (width - len(cells))
            yield line, dict(zip(self.header, padded, strict=True)), extra


def _rows(text: str, delimiter: str, limit: int | None = None) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            out.append((line, cells))
            line = reader.line_num + 1
            if limit is not None and len(out) >= limit:
                break
    except csv.Error as exc:
        raise RecordError(f"unreadable CSV near line {line}: {exc}") from exc
    return out


def _header_at(rows: list[tuple[int, list[str]]], required: Sequence[Sequence[str]]) -> int | None:
    for position, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        keys = [header_key(c) for c in cells]
        if all(any(matches(a, k) for a in aliases for k in keys) for aliases in required):
            return position
    return None


def read_table(body: bytes, name: str, required: Sequence[Sequence[str]], *, layout: str = "") -> Table:
    """The table of ``body`` whose header row holds every ``required`` column (each a list of aliases).

    The delimiter is the candidate under which such a header is found (the most columns wins); the
    header may sit below title, unit or blank rows. Raises ``RecordError`` (naming the file, the layout
    and the columns looked for) when no delimiter gives such a header.
    """
    text, encoding = decode(body, name)
    text = text.lstrip("\ufeff")
    best: tuple[int, str, list[tuple[int, list[str]]]] | None = None
    for delimiter in DELIMITERS:
        if delimiter not in text[:200_000]:
            continue
        try:
            head = _rows(text, delimiter, SNIFF_ROWS)
        except RecordError:
            continue
        at = _header_at(head, required)
        if at is not None and (best is None or len(head[at][1]) > len(best[2][at][1])):
            best = (at, delimiter, head)
    if best is None:
        looked_for = ", ".join(" | ".join(aliases) for aliases in required)
        first = next((cells for _, cells in _rows_safe(text) if any(c.strip() for c in cells)), [])
        raise RecordError(
            f"no header row with the columns of the {layout or 'expected'} layout ({looked_for}) in the first "
            f"{HEADER_SEARCH_ROWS} rows (encoding {encoding}); first non-empty row: {first[:8]}",
            request=name,
        )
    at, delimiter, _ = best
    try:
        every = _rows(text, delimiter)
    except RecordError as exc:
        raise exc.with_request(name) from exc
    header_line, header = every[at]
    header = [h.strip() for h in header]
    repaired = 0
    rows: list[tuple[int, list[str]]] = []
    for line, cells in every[at + 1 :]:
        if not any(c.strip() for c in cells):
            continue  # blank line
        if all(c.isascii() for c in cells):  # nothing to repair
            rows.append((line, cells))
            continue
        fixed = []
        for cell in cells:
            value, changed = repair_mojibake(cell)
            repaired += changed
            fixed.append(value or "")
        rows.append((line, fixed))
    return Table(name, encoding, delimiter, header, header_line, rows, repaired)


def _rows_safe(text: str) -> list[tuple[int, list[str]]]:
    try:
        return _rows(text, ",", 20)
    except RecordError:
        return []


_PLAIN = re.compile(r"-?\d{1,15}(\.\d+)?\Z")
_NUMBER = re.compile(r"^[+-]?(\d+|\d{1,3}([ ,.\u00a0\u202f']\d{3})+)?([.,]\d+)?$")


def number(text: str | None, *, decimal: str | None = None) -> float | None:
    """A locale-formatted number, or ``None`` for a blank / NA cell; raises ``ValueError`` otherwise.

    ``"5,004"`` -> 5004, ``"$711.83"`` -> 711.83, ``"14.4%"`` -> 0.144, ``"1,7"`` -> 1.7,
    ``"200.000.000"`` -> 200000000, ``"229,932.50"`` -> 229932.5, ``"1 234,5"`` -> 1234.5, ``"(12)"`` -> -12.
    ``decimal`` (``","`` or ``"."``) settles a lone separator followed by three digits
    (``"5,004"``: thousands unless the file's decimal mark is the comma).
    """
    if text is None:
        return None
    if _PLAIN.match(text):  # the common case: digits with an optional point
        return float(text)
    value = text.strip().replace("\u2212", "-")
    if value.upper() in ("", "NA", "N/A", "NONE", "NULL", "-", ".", "NAN", "#N/A"):
        return None
    negative = value.startswith("(") and value.endswith(")")
    if negative:
        value = value[1:-1].strip()
    percent = value.endswith("%")
    value = value.rstrip("%").strip()
    value = re.sub(r"^[$€£¥]\s*|\s*(€|EUR|USD|GBP|\$)$", "", value).strip()
    if value.startswith(("+", "-")):
        negative ^= value[0] == "-"
        value = value[1:].strip()
    if not value or not _NUMBER.match(value.replace(" ", " ")):
        if re.fullmatch(r"\d+(\.\d+)?[eE][+-]?\d+", value):
            result = float(value)
            return -result if negative else result
        raise ValueError(f"{text!r} is not a number")
    for space in (" ", "\u00a0", "\u202f", "'"):
        value = value.replace(space, "")
    commas, dots = value.count(","), value.count(".")
    if commas and dots:  # the last one is the decimal mark
        if value.rfind(",") > value.rfind("."):
            value = value.replace(".", "").replace(",", ".")
        else:
            value = value.replace(",", "")
    elif commas > 1:
        value = value.replace(",", "")
    elif dots > 1:
        value = value.replace(".", "")
    elif commas == 1:
        whole, frac = value.split(",")
        thousands = len(frac) == 3 and whole not in ("", "0") and decimal != ","
        value = whole + frac if thousands else f"{whole}.{frac}"
    elif dots == 1 and decimal == ",":
        whole, frac = value.split(".")
        if len(frac) == 3 and whole not in ("", "0"):
            value = whole + frac
    result = float(value)
    if percent:
        result /= 100
    return -result if negative else result
