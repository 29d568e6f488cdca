"""lib.tabular on bytes: encodings, delimiters, title rows, ragged rows, locale values, Excel, errors;
and every CSV of ../shared/carbon either reads or is refused naming its file and line."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import xlwt

from ingestion_platform.lib.tabular import (
    TabularError,
    ValueParseError,
    cell_text,
    detect_encoding,
    normalise_header,
    open_table,
    parse_date,
    parse_datetime,
    parse_decimal,
    sniff_delimiter,
)
from ingestion_platform_tests.conftest import require_shared


def rows_of(body: bytes, name: str = "export.csv", **kwargs) -> tuple[list, list]:
    with open_table(body, name, **kwargs) as table:
        return table.columns, [(row.line, row.values, row.extra) for row in table]


# ------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    ("body", "codec"),
    [
        ("Désignation;Prix\nCôtes;1\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "Désignation;Prix\n".encode(), "utf-8-sig"),
        ("Désignation;Prix\nŒuvre — 12 €\n".encode("cp1252"), "cp1252"),
        ("Désignation;Prix\nCôtes\n".encode("latin-1") + b"\x81x\n", "latin-1"),
        ("a,b\n1,é\n".encode("utf-16"), "utf-16"),
    ],
)
def test_encoding_is_detected(body: bytes, codec: str) -> None:
    assert detect_encoding(io.BytesIO(body)).codec == codec


def test_a_non_utf8_byte_late_in_the_file_is_found() -> None:
    """The whole file is checked, not a sample: one cp1252 byte after 2 MiB of ASCII."""
    body = b"code;nom\n" + b"C1;Dupont\n" * 220_000 + "C2;Gérard\n".encode("cp1252")
    _columns, rows = rows_of(body)
    assert rows[-1] == (220_002, {"code": "C2", "nom": "Gérard"}, ())


def test_big5_read_as_windows_1252_is_refused_with_file_and_line() -> None:
    body = b"id,name\n1,plain\n2," + "臺北市政府資訊處理".encode("big5") * 3 + b"\n"
    with pytest.raises(TabularError) as error:
        open_table(body, "big5.csv")
    assert "request big5.csv, record line 3" in str(error.value)
    assert "multi-byte encoding" in str(error.value)


def test_latin1_with_bytes_windows_1252_leaves_undefined_is_read_as_latin1() -> None:
    body = "code;nom\nC1;Gérard\n".encode("latin-1") + b"C2;x\x81y\n"
    _columns, rows = rows_of(body)
    assert [r[1]["nom"] for r in rows] == ["Gérard", "x\x81y"]


def test_double_encoded_utf8_is_repaired_cell_by_cell() -> None:
    body = "Marque;Carrosserie\nRenault;CoupÃ©\n".encode()
    with open_table(body, "cars.csv") as table:
        assert [row["carrosserie"] for row in table] == ["Coupé"]
        assert table.repaired == 1
    with open_table(body, "cars.csv", repair_mojibake=False) as table:
        assert [row["carrosserie"] for row in table] == ["CoupÃ©"]


# ------------------------------------------------------------------------------------------ structure


def test_semicolon_windows_1252_decimal_commas_crlf() -> None:
    body = "Code Client;Désignation;Prix unitaire TTC\r\nC1;Côtes du Rhône 2019;12,50\r\nC2;Crémant;1 234,00\r\n"
    with open_table(body.encode("cp1252"), "ventes.csv") as table:
        assert (table.encoding, table.delimiter, table.decimal_mark) == ("cp1252", ";", ",")
        assert table.columns == ["code_client", "designation", "prix_unitaire_ttc"]
        rows = list(table)
    assert [r.line for r in rows] == [2, 3]
    assert [parse_decimal(r["prix_unitaire_ttc"], table.decimal_mark) for r in rows] == [
        Decimal("12.50"),
        Decimal("1234.00"),
    ]


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("a;b;c\n1,5;2,5;3\n4;5;6\n", ";"),
        ('a,b,c\n"1;2",3,4\n5,6,7\n', ","),
        ("a\tb\n1\t2\n", "\t"),
        ('name,amount\nx,"229,932.50"\ny,"1,0"\n', ","),
        ("only\none\n", ","),
    ],
)
def test_delimiter_is_sniffed(sample: str, delimiter: str) -> None:
    assert sniff_delimiter(sample) == delimiter


def test_title_rows_above_the_header_are_skipped() -> None:
    body = b'"CO2 emissions, 2000 to 2007",,,\r\nthousand tonnes,,,\r\n,,,\r\n'
    body += b'Year,2000,2001,2002\r\nTimber,"2,666",1,2\r\n'
    columns, rows = rows_of(body)
    assert columns == ["year", "2000", "2001", "2002"]
    assert rows == [(5, {"year": "Timber", "2000": "2,666", "2001": "1", "2002": "2"}, ())]


def test_a_header_hint_finds_a_narrow_header_below_a_wide_title_block() -> None:
    body = b"Export iSaVigne;;;;\nle 14/03/2025;;;;\nCode client;Nom\nC1;Durand\n"
    columns, rows = rows_of(body, header_hint={"code_client", "nom"})
    assert columns == ["code_client", "nom"] and rows == [(4, {"code_client": "C1", "nom": "Durand"}, ())]
    with pytest.raises(TabularError, match=r"no header row naming at least two of \['code', 'nom_client'\]"):
        open_table(body, "x.csv", header_hint={"code", "nom_client"})


def test_ragged_rows_blank_lines_cr_only_and_quoted_newlines() -> None:
    body = b'a,b,c\r1,2\r\r"line\rbreak",5,6,7,\r8,9,10,,\r'
    _columns, rows = rows_of(body)
    assert rows == [
        (2, {"a": "1", "b": "2", "c": None}, ()),
        (4, {"a": "line\rbreak", "b": "5", "c": "6"}, ("7",)),
        (6, {"a": "8", "b": "9", "c": "10"}, ()),
    ]


def test_header_names_are_normalised_and_made_unique() -> None:
    assert normalise_header("Code Client") == "code_client"
    assert normalise_header(" N° Facture ") == "n_facture"
    assert normalise_header("Prix unitaire HT (€)") == "prix_unitaire_ht"
    assert normalise_header("Œnologie") == "oenologie"
    assert normalise_header("", 3) == "column_4"
    columns, _ = rows_of(b"Nom,nom,,x\n1,2,3,4\n")
    assert columns == ["nom", "nom_2", "column_3", "x"]


def test_an_unterminated_quote_names_the_line() -> None:
    # past the csv module's field limit, whatever it is in this process (defs/carbon raises it at import)
    body = b'a,b\n1,2\n3,"' + b"x" * (csv.field_size_limit() + 10) + b"\n"
    with (
        pytest.raises(TabularError, match=r"request q\.csv, record line 3: unreadable CSV: field larger"),
        open_table(body, "q.csv") as table,
    ):
        list(table)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(TabularError, match=r"q\.csv.*the file is empty"):
        open_table(b"\n\n", "q.csv")


# ------------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("text", "mark", "expected"),
    [
        ("12,50", ",", "12.50"),
        ("1 234,56", ",", "1234.56"),
        ("1\u202f234,56 €", ",", "1234.56"),
        ("1.234,56", None, "1234.56"),
        ("1,234.56", None, "1234.56"),
        ("5,004", None, None),  # ambiguous without the file's mark
        ("5,004", ",", "5.004"),
        ("5,004", ".", "5004"),
        ("1,234,567", None, "1234567"),
        ("$711.83", None, "711.83"),
        ("14.4%", None, "14.4"),
        ("(12.50)", None, "-12.50"),
        ("-3,5", ",", "-3.5"),
        ("12.5", ",", "12.5"),
        ("EUR 9,90", ",", "9.90"),
        ("1.5E-3", None, "0.0015"),
        (12.5, None, "12.5"),
        (3, None, "3"),
    ],
)
def test_parse_decimal(text, mark, expected) -> None:
    if expected is None:
        with pytest.raises(ValueParseError, match="ambiguous number '5,004'"):
            parse_decimal(text, mark)
    else:
        assert parse_decimal(text, mark) == Decimal(expected)


@pytest.mark.parametrize("text", ["douze", "1,2,3", "12,5,0", "1.234.5", "--2"])
def test_parse_decimal_says_what_it_expected(text: str) -> None:
    with pytest.raises(ValueParseError, match="expected a number"):
        parse_decimal(text, ",")


def test_blank_values_are_none() -> None:
    assert parse_decimal("  ") is None and parse_decimal(None) is None and parse_date("") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("14/03/2025", dt.date(2025, 3, 14)),
        ("03/04/2025", dt.date(2025, 4, 3)),
        ("3.4.25", dt.date(2025, 4, 3)),
        ("2025-03-14", dt.date(2025, 3, 14)),
        ("20250314", dt.date(2025, 3, 14)),
        ("45730", dt.date(2025, 3, 14)),
        (45730, dt.date(2025, 3, 14)),
        (dt.datetime(2025, 3, 14), dt.date(2025, 3, 14)),
        ("14/03/2025 10:30", dt.date(2025, 3, 14)),
    ],
)
def test_parse_date(value, expected) -> None:
    assert parse_date(value) == expected


def test_parse_datetime_keeps_the_time() -> None:
    assert parse_datetime("14/03/2025 10h30") == dt.datetime(2025, 3, 14, 10, 30)
    assert parse_datetime(45730.5) == dt.datetime(2025, 3, 14, 12, 0)
    assert parse_datetime("2025-03-14T10:30:00+01:00").utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize("value", ["32/01/2025", "14/13/2025", "mars 2025", "0", "2025-02-30"])
def test_parse_date_says_what_it_expected(value) -> None:
    with pytest.raises(ValueParseError, match="expected a date as dd/mm/yyyy, yyyy-mm-dd"):
        parse_date(value)


def test_cell_text() -> None:
    assert cell_text(1001.0) == "1001" and cell_text(" C1 ") == "C1" and cell_text("") is None
    assert cell_text(12.5) == "12.5" and cell_text(dt.date(2025, 3, 14)) == "2025-03-14"


# ------------------------------------------------------------------------------------------ Excel


def test_xlsx_typed_cells_with_a_title_row() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Export produits"])
    sheet.append([])
    sheet.append(["Référence", "Désignation", "Prix", "Date"])
    sheet.append([1001, "Riesling 2020 75cl", 12.5, dt.datetime(2025, 3, 14)])
    sheet.append([None, "Sans code", None, None])
    body = io.BytesIO()
    book.save(body)
    with open_table(body.getvalue(), "produits.xlsx", header_hint={"reference", "designation"}) as table:
        assert table.format == "xlsx" and table.columns == ["reference", "designation", "prix", "date"]
        rows = [(r.line, r.values) for r in table]
    assert rows[0] == (
        4,
        {"reference": 1001, "designation": "Riesling 2020 75cl", "prix": 12.5, "date": dt.datetime(2025, 3, 14)},
    )
    assert rows[1][0] == 5 and rows[1][1]["reference"] is None
    assert parse_date(rows[0][1]["date"]) == dt.date(2025, 3, 14)


def test_xls_dates_and_numbers() -> None:
    book = xlwt.Workbook()
    sheet = book.add_sheet("Stock")
    date_style = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    for col, title in enumerate(["Code article", "Quantité", "Date inventaire"]):
        sheet.write(0, col, title)
    sheet.write(1, 0, "RIES20")
    sheet.write(1, 1, 120)
    sheet.write(1, 2, dt.date(2025, 3, 14), date_style)
    body = io.BytesIO()
    book.save(body)
    with open_table(body.getvalue(), "stock.xls") as table:
        assert (table.format, table.sheet) == ("xls", "Stock")
        assert [(r.line, r.values) for r in table] == [
            (2, {"code_article": "RIES20", "quantite": 120.0, "date_inventaire": dt.date(2025, 3, 14)})
        ]


def test_a_broken_workbook_is_refused_naming_the_file() -> None:
    with pytest.raises(TabularError, match=r"request ventes\.xlsx: not a readable \.xlsx workbook"):
        open_table(b"PK\x03\x04 not really a zip", "ventes.xlsx")
    with pytest.raises(TabularError, match=r"request ventes\.xls: not a readable \.xls workbook"):
        open_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1garbage", "ventes.xls")


# ------------------------------------------------------------------------------------------ shared carbon files

# What each recorded file must give: (encoding, delimiter, header line, first columns) or the error.
CARBON_EXPECTED = {
    "ademe-car-labelling.csv": ("utf-8-sig", ";", 1, ["marque", "libelle_modele"]),
    "messytables_begrotingsanalyse-2011.csv": ("utf-8", ",", 4, ["column_1", "column_2", "provincie"]),
    "messytables_excel_pasting.csv": ("utf-8", ",", 4, ["year", "2000"]),
    "messytables_mixedGLB.csv": ("utf-8", ",", 4, ["year", "jan"]),
    "messytables_spanish_chars.csv": ("cp1252", ",", 1, ["gf_id", "fn_id"]),
    "messytables_sparse_with_column_errors.csv": ("cp1252", ",", 1, ["lp", "bezeichnung"]),
    "messytables_weird_head_padding.csv": ("utf-8", ";", 12, ["column_1", "1985"]),
    "messytables_characters.csv": "line 1: not UTF-8",
    "OpenEmissionFactorsDB_2021-11-24.csv": ("utf-8", ",", 1, ["sector", "category", "id"]),
    "csvkit_test_latin1.csv": ("cp1252", ",", 1, ["a", "b", "c"]),
    "csvkit_test_utf16_big.csv": ("utf-16", ",", 1, ["a", "b", "c"]),
    "csvkit_test_utf16_little.csv": ("utf-16", ",", 1, ["a", "b", "c"]),
    "csvkit_test_utf8_bom.csv": ("utf-8-sig", ",", 1, ["foo", "bar", "baz"]),
    "messytables_simple.ssv": ("utf-8", ";", 1, ["date", "temperature", "place"]),
    "csvkit_mac_newlines.csv": ("utf-8", ",", 1, ["a", "b", "c"]),
}


def carbon_files() -> list[Path]:
    root = require_shared("carbon")
    return sorted(p for p in root.rglob("*") if p.suffix in {".csv", ".ssv"})


def test_every_shared_carbon_csv_reads_or_is_refused_naming_file_and_line() -> None:
    files = carbon_files()
    assert len(files) >= 20
    seen = set()
    for path in files:
        try:
            with open_table(path) as table:
                count = 0
                for row in table:
                    assert row.line > table.header_line
                    assert set(row.values) == set(table.columns)
                    count += 1
                outcome = (table.encoding, table.delimiter, table.header_line, table.columns)
        except TabularError as error:
            assert str(path) in str(error) and "record line " in str(error), error
            outcome = str(error)
        expected = CARBON_EXPECTED.get(path.name)
        if isinstance(expected, str):
            assert isinstance(outcome, str) and expected in outcome, (path.name, outcome)
        elif expected is not None:
            assert not isinstance(outcome, str), (path.name, outcome)
            assert outcome[:3] == expected[:3] and outcome[3][: len(expected[3])] == expected[3], (path.name, outcome)
            assert count > 0 or path.name == "messytables_utf8bom.csv"
        seen.add(path.name)
    assert set(CARBON_EXPECTED) <= seen


def test_carbon_values_parse_with_the_file_conventions() -> None:
    root = require_shared("carbon")
    with open_table(root / "messy_real" / "ademe-car-labelling.csv") as table:
        values = [parse_decimal(row["co2_vitesse_mixte_min"], table.decimal_mark) for row in table]
    assert any(v is not None and v > 0 for v in values)
    with open_table(root / "messy_synthetic_fixtures" / "csvkit_test_locale.csv") as table:
        (row,) = list(table)
    assert parse_decimal(row["a"], ",") == Decimal("1.7") and parse_decimal(row["b"], ",") == Decimal("200000000")
