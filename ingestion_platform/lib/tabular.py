"""Tabular files (CSV, .xlsx, .xls) read the same way by every file-drop source: one row at a time,
each with the line it came from, whatever the encoding, delimiter, title rows or locale.

    with open_table(path_or_bytes, name="ventes_2025-03-14.csv", header_hint=KNOWN_COLUMNS) as table:
        table.columns        # normalised header: ["code_client", "date_vente", "prix_unitaire_ttc", ...]
        for row in table:    # streamed: memory stays flat on a 200k-line file
            row.line         # 1-based line (CSV) or sheet row (Excel) where the record starts
            row["date_vente"]  # the cell: str for CSV (stripped, None when blank), typed for Excel
            row.extra        # non-blank cells beyond the header (a ragged row)
            parse_date(row["date_vente"]), parse_decimal(row["prix"], decimal_mark=table.decimal_mark)

What it handles (each in its own function, usable alone):

* **Encoding** (:func:`detect_encoding`), deterministic, over the whole file in 1 MiB chunks (no
  sample guess, no statistical detector): a BOM (UTF-8, UTF-16 LE/BE) wins; else strict UTF-8; else
  Windows-1252 when the file has none of its five undefined bytes, else Latin-1. A single-byte
  decoding is then checked for plausibility: Western European text has its non-ASCII letters
  isolated between ASCII ones (``Trägerorganisationen``, ``Descripción``); a file where a third or
  more of its non-ASCII characters (spaces aside) follow another one (Big5, Shift-JIS, GB2312 read
  as Windows-1252: ``´ºÂI½s¸¹``) is refused with :class:`TabularError` naming the file and the
  line, instead of loading silent mojibake. Text that was UTF-8 decoded twice (``SystÃ¨me``) is
  repaired cell by cell (``lib.text.repair_mojibake``; ``repair_mojibake=False`` to keep it).
* **Line endings**: LF, CRLF, CR only (old Mac) and a mix of them; quoted line breaks stay in their cell.
* **Delimiter** (:func:`sniff_delimiter`): ``;``, ``,``, tab or ``|``, the one that splits the
  first lines into the most rows of one same width (quotes respected, so ``"229,932.50"`` and the
  decimal commas of a ``;`` file do not count).
* **Header row** (:func:`find_header`): the first row whose non-blank cells reach 75% of the most
  common count among the first 50 rows, which skips title, unit and blank rows above the header; or, with
  ``header_hint`` (known normalised column names), the first row naming at least two of them (or
  ``header_row=N`` explicitly). Header cells are normalised by :func:`normalise_header`
  (``"Code Client"`` -> ``code_client``, ``"Désignation"`` -> ``designation``; blank ->
  ``column_<n>``, a repeated name gets ``_2``).
* **Ragged rows**: a short row gets ``None`` for its missing cells; the non-blank cells of a long
  row are kept in :attr:`Row.extra` (the caller decides whether that rejects the row); blank rows
  are skipped.
* **Values**: :func:`parse_decimal` (``1 234,56``, ``1.234,56``, ``1,234.56``, ``"5,004"``,
  ``$711.83``, ``14.4%``, ``(12.50)``, Excel floats) and :func:`parse_date` (``dd/mm/yyyy``,
  ``yyyy-mm-dd``, ``yyyymmdd``, Excel serials and cells) raise :class:`ValueParseError` saying what
  was expected; :func:`cell_text` renders a cell as text (an Excel ``1001.0`` code as ``"1001"``).
* **Excel**: .xlsx through openpyxl in read-only mode (rows streamed), .xls through xlrd 2
  (date cells converted with the workbook's date mode); the first sheet unless ``sheet=`` names one.

Errors: a file that cannot be read at all raises :class:`TabularError` (a ``RecordError``: the
load driver dead-letters the payload) naming the file and the line (``request ventes.csv, record
line 7: ...``). A bad value is the caller's one record, never the file.

Pure module: no Dagster. It reads files or bytes, nothing else.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.text import fold, repair_mojibake

__all__ = [
    "Row",
    "Table",
    "TabularError",
    "ValueParseError",
    "cell_text",
    "detect_encoding",
    "find_header",
    "normalise_header",
    "open_table",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "sniff_delimiter",
]

CHUNK = 1 << 20
SAMPLE_CHARS = 1 << 16
HEADER_SCAN_ROWS = 50
DELIMITERS = (";", ",", "\t", "|")
EXCEL_EPOCH = dt.date(1899, 12, 30)  # the 1900 date system, Lotus leap-year bug included (serial 60)
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_NON_ASCII = re.compile(r"[^\x00-\x7f\s]")  # NBSP next to "€" or "«" is normal: spaces aside
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f\s]{2,}")


class TabularError(RecordError):
    """The file cannot be read as a table: names the file (``request``) and the line (``record``)."""

    def __init__(self, message: str, *, file: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(message, request=file, record=f"line {line}" if line else None, field=field)


class ValueParseError(ValueError):
    """A cell is not the value its column expects; the message says what was expected and what came."""


# --------------------------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Encoding:
    """What :func:`detect_encoding` found: the Python codec and why (``reason`` is shown in metadata)."""

    codec: str
    reason: str


def detect_encoding(stream: IO[bytes], name: str = "<bytes>") -> Encoding:
    """The encoding of the whole binary ``stream`` (read in chunks, then rewound).

    BOM (UTF-8 -> ``utf-8-sig``, UTF-16 -> ``utf-16``), else strict UTF-8, else Windows-1252 when
    none of its undefined bytes (0x81 0x8D 0x8F 0x90 0x9D) occurs, else Latin-1; a single-byte
    result must look like Western text (see the module docstring) or :class:`TabularError` is raised."""
    start = stream.tell()
    head = stream.read(4)
    stream.seek(start)
    if head.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8-sig", "UTF-8 with BOM")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Encoding("utf-16", "UTF-16 with BOM")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    undefined = False
    offset = 0
    bad_at: int | None = None
    try:
        while chunk := stream.read(CHUNK):
            if bad_at is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    bad_at = offset + error.start
            if bad_at is not None:
                undefined = undefined or not _CP1252_UNDEFINED.isdisjoint(chunk)
            offset += len(chunk)
        if bad_at is None:
            decoder.decode(b"", final=True)
            return Encoding("utf-8", "UTF-8")
    except UnicodeDecodeError:  # truncated multi-byte sequence at the very end
        bad_at = offset - 1
    finally:
        stream.seek(start)
    codec = "latin-1" if undefined else "cp1252"
    _check_single_byte(stream, codec, name, bad_at)
    label = "Latin-1" if undefined else "Windows-1252"
    return Encoding(codec, f"{label} (not UTF-8: byte at offset {bad_at})")


def _check_single_byte(stream: IO[bytes], codec: str, name: str, bad_at: int) -> None:
    """Refuse a single-byte decoding that does not look like Western European text."""
    start = stream.tell()
    non_ascii = paired = 0
    first_pair_line: int | None = None
    lines = 1
    try:
        while chunk := stream.read(CHUNK):
            text = chunk.decode(codec)
            non_ascii += len(_NON_ASCII.findall(text))
            for run in _NON_ASCII_RUN.finditer(text):
                paired += len(run.group()) - 1
                if first_pair_line is None:
                    first_pair_line = lines + text.count("\n", 0, run.start())
            lines += text.count("\n")
    finally:
        stream.seek(start)
    # Western text: accents mostly alone ("Trägerorganisationen"); runs everywhere = a multi-byte encoding.
    if non_ascii >= 8 and paired * 3 > non_ascii:
        raise TabularError(
            f"not UTF-8 (first invalid byte at offset {bad_at}) and not Windows-1252/Latin-1 text either: "
            f"{paired} of its {non_ascii} non-ASCII characters follow another one, as a multi-byte encoding "
            "(Big5, Shift-JIS, GB2312...) read byte by byte does; re-export it as UTF-8",
            file=name,
            line=first_pair_line,
        )


# --------------------------------------------------------------------------------------------- structure


def sniff_delimiter(sample: str) -> str:
    """The delimiter among ``; , tab |`` that splits the sample's lines into the most rows of one same
    width (> 1), quotes respected; ``,`` when none splits anything (a one-column file)."""
    best, best_score = ",", 0
    lines = sample.splitlines()[: HEADER_SCAN_ROWS * 2]
    if len(sample) >= SAMPLE_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be cut too
    for delimiter in DELIMITERS:
        widths: dict[int, int] = {}
        try:
            for cells in csv.reader(lines, delimiter=delimiter):
                if any(c.strip() for c in cells):
                    widths[len(cells)] = widths.get(len(cells), 0) + 1
        except csv.Error:
            continue
        score = max((count for width, count in widths.items() if width > 1), default=0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def normalise_header(name: Any, position: int = 0) -> str:
    """``"Code Client"`` -> ``code_client``: accents folded, lower case, every run of other characters
    one ``_``, trimmed; a blank cell -> ``column_<position + 1>``."""
    text = fold(unicodedata.normalize("NFKC", cell_text(name) or "")).lower()
    key = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return key or f"column_{position + 1}"


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def find_header(rows: Sequence[Sequence[Any]], header_hint: Collection[str] | None = None) -> int | None:
    """Index of the header among the first rows: with ``header_hint`` the first row naming at least
    two hinted columns (or one, for a one-column hint); else the first row whose non-blank cells
    reach 75% of the most common number of non-blank cells, which a title, unit or note row above
    the header does not. ``None`` when no row qualifies."""
    if header_hint:
        hint = set(header_hint)
        needed = min(2, len(hint))
        for index, cells in enumerate(rows):
            names = {normalise_header(c, i) for i, c in enumerate(cells) if not _blank(c)}
            if len(names & hint) >= needed:
                return index
        return None
    counts = [sum(not _blank(c) for c in cells) for cells in rows]
    tally: dict[int, int] = {}
    for count in counts:
        if count:
            tally[count] = tally.get(count, 0) + 1
    if not tally:
        return None
    typical = max(tally, key=lambda count: (tally[count], count))  # the most common width, the wider on a tie
    return next(i for i, count in enumerate(counts) if count and count >= 0.75 * typical)


# --------------------------------------------------------------------------------------------- rows


@dataclass(slots=True)
class Row:
    """One record: ``line`` where it starts in the file (or its sheet row), ``values`` keyed by the
    normalised header, ``extra`` the non-blank cells beyond the header."""

    line: int
    values: dict[str, Any]
    extra: tuple[Any, ...] = ()

    def __getitem__(self, column: str) -> Any:
        return self.values.get(column)

    def get(self, column: str, default: Any = None) -> Any:
        value = self.values.get(column)
        return default if value is None else value


@dataclass
class Table:
    """An open table: its format, encoding, delimiter, header and a one-pass row iterator."""

    name: str
    format: str
    header: list[Any]
    columns: list[str]
    header_line: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    repaired: int = 0
    _rows: Iterator[tuple[int, Sequence[Any]]] | None = field(default=None, repr=False)
    _close: Callable[[], None] | None = field(default=None, repr=False)
    _repair: bool = field(default=True, repr=False)

    @property
    def decimal_mark(self) -> str | None:
        """``","`` for a ``;``-separated file (the French/European convention), else ``None``
        (each value says: see :func:`parse_decimal`)."""
        return "," if self.delimiter == ";" else None

    def __iter__(self) -> Iterator[Row]:
        if self._rows is None:
            raise RuntimeError(f"{self.name}: the rows of a table can be read once")
        rows, self._rows = self._rows, None
        width = len(self.columns)
        columns = self.columns
        repair = self._repair
        text_cells = self.format == "csv"  # every cell a str: the fast path
        for line, cells in rows:
            head = cells[:width] if len(cells) > width else cells
            if text_cells:
                values = [c.strip() or None for c in head]
                if repair and not "".join(head).isascii():
                    values = [self._repaired(v) for v in values]
            else:
                values = [self._repaired(c.strip() or None) if isinstance(c, str) else c for c in head]
            extra = tuple(c for c in cells[width:] if not _blank(c)) if len(cells) > width else ()
            if not extra and all(v is None for v in values):
                continue
            if len(values) < width:
                values += [None] * (width - len(values))
            yield Row(line, dict(zip(columns, values, strict=True)), extra)

    def _repaired(self, cell: str | None) -> str | None:
        if cell is None or not self._repair or cell.isascii():
            return cell
        fixed, changed = repair_mojibake(cell)
        self.repaired += changed
        return fixed

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(
    source: bytes | str | Path | IO[bytes],
    name: str | None = None,
    *,
    format: str | None = None,
    header_hint: Collection[str] | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    repair_mojibake: bool = True,
) -> Table:
    """Open a CSV/.xlsx/.xls table from bytes, a path or a binary file object.

    ``name`` (default: the path) names the file in errors and picks the format by its extension
    (``format=`` forces ``csv``, ``xlsx`` or ``xls``; without either the content decides: a ZIP is
    .xlsx, an OLE2 compound file .xls). ``header_row`` is the 1-based line of the header when it is
    known; ``encoding``/``delimiter`` skip detection. Use it as a context manager (it closes the file)."""
    if isinstance(source, (str, Path)):
        name = name or str(source)
    name = name or "<bytes>"
    stream, owned = _binary(source)
    try:
        kind = format or _format_of(name, stream)
        if kind == "csv":
            table = _open_csv(stream, name, header_hint, header_row, encoding, delimiter)
        elif kind == "xlsx":
            table = _open_xlsx(stream, name, header_hint, header_row, sheet)
        elif kind == "xls":
            table = _open_xls(stream, name, header_hint, header_row, sheet)
        else:
            raise TabularError(f"unknown table format {kind!r} (csv, xlsx or xls)", file=name)
    except BaseException:
        if owned:
            stream.close()
        raise
    if owned:
        inner = table._close
        table._close = lambda: (inner and inner(), stream.close())  # type: ignore[func-returns-value]
    table._repair = repair_mojibake
    return table


def _binary(source: bytes | str | Path | IO[bytes]) -> tuple[IO[bytes], bool]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, (str, Path)):
        return open(source, "rb"), True
    return source, False


def _format_of(name: str, stream: IO[bytes]) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        return "xlsx"
    if suffix == ".xls":
        return "xls"
    if suffix in {".csv", ".txt", ".tsv", ".ssv"}:
        return "csv"
    start = stream.tell()
    magic = stream.read(8)
    stream.seek(start)
    if magic.startswith(b"PK\x03\x04"):
        return "xlsx"
    if magic == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    return "csv"


def _header_of(
    name: str, rows: Iterator[tuple[int, Sequence[Any]]], hint: Collection[str] | None, header_row: int | None
) -> tuple[int, Sequence[Any], list[tuple[int, Sequence[Any]]]]:
    """Consume the rows up to the header; return its line, its cells and the rows read after it."""
    scanned: list[tuple[int, Sequence[Any]]] = []
    for line, cells in rows:
        scanned.append((line, cells))
        if (header_row is not None and line >= header_row) or (header_row is None and len(scanned) >= HEADER_SCAN_ROWS):
            break
    if header_row is not None:
        index = next((i for i, (line, _) in enumerate(scanned) if line == header_row), None)
        if index is None:
            raise TabularError(f"no header at line {header_row}: the file has {len(scanned)} line(s)", file=name)
    else:
        index = find_header([cells for _, cells in scanned], hint)
        if index is None:
            wanted = f" naming at least two of {sorted(hint)}" if hint else ""
            empty = all(_blank(c) for _, cells in scanned for c in cells)
            raise TabularError(
                "the file is empty (no non-blank line)"
                if empty
                else f"no header row{wanted} in the first {len(scanned)} line(s)",
                file=name,
                line=scanned[0][0] if scanned else None,
            )
    line, cells = scanned[index]
    return line, cells, scanned[index + 1 :]


def _finish(
    name: str,
    fmt: str,
    rows: Iterator[tuple[int, Sequence[Any]]],
    hint: Collection[str] | None,
    header_row: int | None,
    **extra: Any,
) -> Table:
    line, header, rest = _header_of(name, rows, hint, header_row)
    while header and _blank(header[-1]):
        header = header[:-1]
    columns = _unique([normalise_header(c, i) for i, c in enumerate(header)])

    def chained() -> Iterator[tuple[int, Sequence[Any]]]:
        yield from rest
        yield from rows

    return Table(name, fmt, list(header), columns, line, _rows=chained(), **extra)


def _open_csv(
    stream: IO[bytes],
    name: str,
    hint: Collection[str] | None,
    header_row: int | None,
    encoding: str | None,
    delimiter: str | None,
) -> Table:
    start = stream.tell()
    codec = encoding or detect_encoding(stream, name).codec
    if delimiter is None:
        sampler = io.TextIOWrapper(stream, encoding=codec, errors="replace", newline="")
        sample = sampler.read(SAMPLE_CHARS)
        sampler.detach()  # a collected wrapper would close the stream
        stream.seek(start)
        delimiter = sniff_delimiter(sample)
    text = io.TextIOWrapper(stream, encoding=codec, newline="")
    reader = csv.reader(text, delimiter=delimiter)

    def records() -> Iterator[tuple[int, Sequence[Any]]]:
        last = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise TabularError(f"unreadable CSV: {error}", file=name, line=last + 1) from error
            except UnicodeDecodeError as error:  # only when the caller forced a wrong encoding
                raise TabularError(f"not {codec}: {error.reason}", file=name, line=last + 1) from error
            start, last = last + 1, reader.line_num
            yield start, cells

    table = _finish(name, "csv", records(), hint, header_row, encoding=codec, delimiter=delimiter)
    table._close = text.detach
    return table


def _open_xlsx(
    stream: IO[bytes], name: str, hint: Collection[str] | None, header_row: int | None, sheet: str | None
) -> Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise TabularError(f"not a readable .xlsx workbook: {error}", file=name) from error

    try:
        worksheet = book[sheet] if sheet else book.worksheets[0]
    except KeyError as error:
        book.close()
        raise TabularError(f"no sheet {sheet!r} (sheets: {book.sheetnames})", file=name) from error

    def records() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            yield from enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1)
        except (zipfile.BadZipFile, KeyError, ValueError) as error:
            raise TabularError(f"unreadable .xlsx sheet {worksheet.title!r}: {error}", file=name) from error

    table = _finish(name, "xlsx", records(), hint, header_row, sheet=worksheet.title)
    table._close = book.close
    return table


def _open_xls(
    stream: IO[bytes], name: str, hint: Collection[str] | None, header_row: int | None, sheet: str | None
) -> Table:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=stream.read(), on_demand=True)
    except Exception as error:
        raise TabularError(f"not a readable .xls workbook: {error}", file=name) from error
    try:
        worksheet = book.sheet_by_name(sheet) if sheet else book.sheet_by_index(0)
    except xlrd.XLRDError as error:
        raise TabularError(f"no sheet {sheet!r} (sheets: {book.sheet_names()})", file=name) from error

    def value(cell: Any) -> Any:
        if cell.ctype == xlrd.XL_CELL_DATE:
            moment = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
            return moment.date() if moment.time() == dt.time() else moment
        if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
            return None
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return bool(cell.value)
        if cell.ctype == xlrd.XL_CELL_ERROR:
            return xlrd.error_text_from_code.get(cell.value, "#ERR")
        return cell.value

    def records() -> Iterator[tuple[int, Sequence[Any]]]:
        for index in range(worksheet.nrows):
            yield index + 1, [value(c) for c in worksheet.row(index)]

    table = _finish(name, "xls", records(), hint, header_row, sheet=worksheet.name)
    table._close = book.release_resources
    return table


# --------------------------------------------------------------------------------------------- values


def cell_text(value: Any) -> str | None:
    """A cell as trimmed text: ``None`` for blank, an integral float as an integer (``1001.0`` ->
    ``"1001"``: Excel stores codes typed as numbers so), dates in ISO."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = str(value).strip()
    return text or None


_CURRENCY_WORDS = re.compile(r"^(EUR|USD|GBP|CHF)\s*|\s*(EUR|USD|GBP|CHF|HT|TTC)$", re.IGNORECASE)
_SIMPLE_NUMBER = re.compile(r"-?\d+(?:([.,])(\d+))?")
_SPACES_IN_NUMBER = re.compile(r"[\s\u00a0\u202f\u2009']")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)*([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def _grouped(text: str, sep: str) -> bool:
    """``text`` is digits in groups of three separated by ``sep`` (``1,234,567``)."""
    return re.fullmatch(rf"\d{{1,3}}({re.escape(sep)}\d{{3}})+", text) is not None


def parse_decimal(value: Any, decimal_mark: str | None = None) -> Decimal | None:
    """A number as written in a cell, as a ``Decimal``; ``None`` for a blank cell.

    Accepts Excel numbers, a sign or accounting parentheses, spaces/NBSP/apostrophes as thousands
    separators, a currency symbol or code (``€``, ``$``, ``EUR``) and ``%`` (the number is returned
    as written: ``"14.4%"`` -> ``14.4``). With both ``.`` and ``,`` the last one is the decimal mark
    (``1.234,56``, ``1,234.56``). A lone separator followed by exactly three digits (``"5,004"``,
    ``"1.234"``) is ambiguous: ``decimal_mark`` decides (``","`` for French files: ``5,004`` = 5.004;
    ``"."``: 5004); without it a single such ``,`` or ``.`` is read as a thousands separator only when
    repeated (``1,234,567``), else :class:`ValueParseError` says so."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueParseError(f"expected a number, got the boolean {value}")
        return None
    if isinstance(value, (int, float, Decimal)):
        if isinstance(value, float) and value != value:
            return None
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = str(value).strip()
    if not text:
        return None
    simple = _SIMPLE_NUMBER.fullmatch(text)  # the common cells ("12", "14,50", "3.5"): no clean-up needed
    if simple and (simple.group(2) is None or len(simple.group(2)) != 3 or simple.group(1) == decimal_mark):
        return Decimal(text.replace(",", "."))
    original = text
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    text = text.replace("\u2212", "-")
    if not text.isascii() or "$" in text:
        text = "".join(c for c in text if unicodedata.category(c) != "Sc")
    text = _CURRENCY_WORDS.sub("", text.strip()).strip()
    if text.endswith("%"):
        text = text[:-1].strip()
    if text.endswith("-") and not text.startswith("-"):  # "12,50-" (some accounting exports)
        negative, text = not negative, text[:-1]
    text = _SPACES_IN_NUMBER.sub("", text)
    if not _NUMBER.match(text):
        raise ValueParseError(f"expected a number (e.g. 1 234,56 or 1234.56), got {original!r}")
    sign = ""
    if text[0] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:]
    mantissa, _, exponent = text.partition("e") if "e" in text else text.partition("E")
    mantissa = _normalise_separators(mantissa, decimal_mark, original)
    try:
        number = Decimal(f"{sign}{mantissa}{'e' + exponent if exponent else ''}")
    except InvalidOperation as error:
        raise ValueParseError(f"expected a number, got {original!r}") from error
    return -number if negative else number


def _normalise_separators(text: str, decimal_mark: str | None, original: str) -> str:
    commas, dots = text.count(","), text.count(".")
    if commas and dots:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        whole, _, fraction = text.rpartition(decimal)
        if text.count(decimal) > 1 or not _grouped(whole, thousands):
            raise ValueParseError(f"expected a number with one decimal mark, got {original!r}")
        return whole.replace(thousands, "") + "." + fraction
    if not commas and not dots:
        return text
    sep = "," if commas else "."
    grouped = _grouped(text, sep)
    if text.count(sep) > 1:
        if not grouped:
            raise ValueParseError(f"expected a number, got {original!r} (several {sep!r} not in groups of 3)")
        return text.replace(sep, "")
    whole, _, fraction = text.partition(sep)
    if grouped and decimal_mark is None:
        raise ValueParseError(
            f"ambiguous number {original!r}: {sep!r} may separate thousands or decimals (give the file's decimal mark)"
        )
    if grouped and decimal_mark != sep:
        return whole + fraction
    return f"{whole or '0'}.{fraction or '0'}"


_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:[ T](\d{1,2})[:h](\d{2})(?::(\d{2}))?)?$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")
_MAX_SERIAL = 2_958_465  # 9999-12-31
EXPECTED_DATE = "a date as dd/mm/yyyy, yyyy-mm-dd, yyyymmdd or an Excel serial number"


def parse_date(value: Any) -> dt.date | None:
    """A day from a cell: a date/datetime (Excel), an Excel serial number (``45730`` -> 2025-03-14),
    ``dd/mm/yyyy`` (also ``-`` or ``.``, two-digit years as 20yy, an optional time), ISO
    ``yyyy-mm-dd[THH:MM[:SS]]`` or ``yyyymmdd``; ``None`` for a blank cell. Day first, always
    (French exports): ``03/04/2025`` is 3 April."""
    moment = parse_datetime(value)
    return moment.date() if isinstance(moment, dt.datetime) else moment


def parse_datetime(value: Any) -> dt.datetime | dt.date | None:
    """As :func:`parse_date`, keeping the time of day when the cell has one (a naive datetime, in the
    export's local time, or aware when ISO gives an offset); a plain day stays a ``date``."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.time() != dt.time() or value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise ValueParseError(f"expected {EXPECTED_DATE}, got the boolean {value}")
    if isinstance(value, (int, float, Decimal)):
        return _serial(float(value), value)
    text = str(value).strip()
    if not text:
        return None
    try:
        if match := _DMY.match(text):
            day, month, year, hour, minute, second = match.groups()
            year_number = int(year) + (2000 if len(year) == 2 else 0)
            day_value = dt.date(year_number, int(month), int(day))
            if hour is None:
                return day_value
            return dt.datetime.combine(day_value, dt.time(int(hour), int(minute), int(second or 0)))
        if match := _YMD.match(text):
            if match.group(4) is None:
                return dt.date(*(int(g) for g in match.groups()[:3]))
            return dt.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
        if match := _COMPACT.match(text):
            return dt.date(*(int(g) for g in match.groups()))
    except ValueError as error:
        raise ValueParseError(f"expected {EXPECTED_DATE}, got {text!r} ({error})") from error
    if _SERIAL.match(text):
        return _serial(float(text), text)
    raise ValueParseError(f"expected {EXPECTED_DATE}, got {text!r}")


def _serial(number: float, original: Any) -> dt.datetime | dt.date:
    if not 1 <= number <= _MAX_SERIAL:
        raise ValueParseError(f"expected {EXPECTED_DATE}, got {original!r} (out of the Excel serial range)")
    moment = dt.datetime.combine(EXCEL_EPOCH, dt.time()) + dt.timedelta(days=number)
    moment = moment.replace(microsecond=0) if moment.microsecond < 500_000 else moment
    return moment.date() if moment.time() == dt.time() else moment
