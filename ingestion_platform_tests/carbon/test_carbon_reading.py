"""The carbon CSV reader and layouts on the real messy files of ../shared/carbon and on bytes."""

import datetime as dt

import pytest

from ingestion_platform.defs.carbon import layouts
from ingestion_platform.defs.carbon.reading import number, read_table
from ingestion_platform.lib.errors import RecordError
from ingestion_platform_tests.conftest import require_shared


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        ("5,004", None, 5004.0),
        ("$711.83", None, 711.83),
        ("14.4%", None, 0.144),
        ("1,7", None, 1.7),
        ("200.000.000", None, 200_000_000.0),
        ("229,932.50", None, 229_932.5),
        ("1 234,5", None, 1234.5),
        ("96,000", ",", 96.0),
        ("0,06", ",", 0.06),
        ("(12)", None, -12.0),
        ("-3.5", None, -3.5),
        ("", None, None),
        ("N/A", None, None),
        ("1.5E-3", None, 0.0015),
        ("3,961", None, 3961.0),
    ],
)
def test_number_reads_locale_formats(text: str, decimal: str | None, expected: float | None) -> None:
    assert number(text, decimal=decimal) == pytest.approx(expected) if expected is not None else number(text) is None


@pytest.mark.parametrize("text", ["abc", "1,2,3.4.5", "12 apples"])
def test_number_refuses_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        number(text)


def test_dates_and_travel_classes() -> None:
    assert layouts.date_of("2024-03-05") == dt.date(2024, 3, 5)
    assert layouts.date_of("05/03/2024") == dt.date(2024, 3, 5)
    assert layouts.date_of("3/25/2024", day_first=False) == dt.date(2024, 3, 25)
    assert layouts.date_of("25/3/2024", day_first=False) == dt.date(2024, 3, 25)  # 25 cannot be a month
    assert [
        layouts.travel_class(x) for x in ("Economy Class", "Coach", "Premium Economy", "J", "First", "Affaires", "")
    ] == ["economy", "economy", "premium_economy", "business", "first", "business", "na"]
    with pytest.raises(ValueError, match="unknown travel class 'Cargo'"):
        layouts.travel_class("Cargo")
    assert layouts.distance_band(3699.9) == "short_haul" and layouts.distance_band(3700) == "long_haul"


def test_title_rows_bom_crlf_and_ragged_rows() -> None:
    body = (
        "\ufeffReport of 2024\r\nexported by X\r\n\r\ndate;department;fte\r\n"
        "01/02/2024;Sales;1,5\r\n02/02/2024;Ops\r\n03/02/2024;R&D;2;extra\r\n"
    ).encode()
    table = read_table(body, "hc.csv", [["date"], ["department"], ["fte"]])
    assert (table.delimiter, table.header_line, table.encoding) == (";", 4, "utf-8-sig")
    assert [line for line, _ in table.rows] == [5, 6, 7]
    records = layouts.module_records(table, layouts.MODULES["headcount"])
    assert [r[0] for r in records.value] == [5, 6]
    assert "line 7" in records.rejects[0].message and "4 fields where the header has 3" in records.rejects[0].message
    ctx = layouts.EntryContext("headcount", "org-2024", 2024, "csv_upload", "hc.csv", decimal=",")
    parsed = layouts.entries_from_records(layouts.MODULES["headcount"], records.value, ctx)
    assert [(r["activity_date"], r["quantity"]) for r in parsed.value] == [(dt.date(2024, 2, 1), 1.5)]
    assert "record line 6, field 'fte': missing value" in parsed.rejects[0].message


def test_a_file_without_the_columns_is_refused_naming_them() -> None:
    with pytest.raises(
        RecordError, match=r"request x\.csv: no header row with the columns of the headcount module layout"
    ):
        layouts.read_module_file(b"a,b\n1,2\n", "x.csv", layouts.MODULES["headcount"])


def test_messy_real_files_decode_and_find_their_header() -> None:
    messy = require_shared("carbon/messy_real")
    spanish = read_table((messy / "messytables_spanish_chars.csv").read_bytes(), "s.csv", [["Descripción"]])
    assert spanish.encoding == "cp1252" and "Descripción" in spanish.header
    glb = read_table((messy / "messytables_mixedGLB.csv").read_bytes(), "g.csv", [["Year"], ["Jan"], ["J-D"]])
    assert glb.header_line > 1 and len(glb.rows) > 100  # CR-only line endings, title rows above
    ademe = read_table(
        (messy / "ademe-car-labelling.csv").read_bytes(), "a.csv", [["Marque"], ["Modèle"], ["Cylindrée"]]
    )
    assert ademe.delimiter == ";" and ademe.encoding == "utf-8-sig" and len(ademe.rows) == 3604
    assert ademe.repaired > 0 and not any("Ã¨" in c for _, row in ademe.rows for c in row)  # mojibake repaired


def test_every_file_under_shared_carbon_loads_or_is_refused_clearly() -> None:
    root = require_shared("carbon")
    outcomes = {}
    for path in sorted(root.rglob("*.csv")) + sorted(root.rglob("*.ssv")):
        try:
            layout, table = layouts.read_factor_file(path.read_bytes(), path.name)
        except RecordError as exc:
            assert path.name in str(exc) and "layout" in str(exc)
            outcomes[path.name] = "refused"
            continue
        parsed, _ = layouts.factors_from_table(layout, table, "generic")
        outcomes[path.name] = f"{layout.name}: {len(parsed.value)} rows, {len(parsed.rejects)} rejected"
    assert outcomes["OpenEmissionFactorsDB_2021-11-24.csv"] == "oefdb: 1417 rows, 0 rejected"
    assert sum(1 for v in outcomes.values() if v == "refused") == len(outcomes) - 1


def test_oefdb_natural_key_is_unique_where_the_id_is_not() -> None:
    path = require_shared("carbon/emission_factors") / "OpenEmissionFactorsDB_2021-11-24.csv"
    layout, table = layouts.read_factor_file(path.read_bytes(), path.name)
    parsed, skipped = layouts.factors_from_table(layout, table, "generic")
    ids = [r["activity_id"] for r in parsed.value]
    assert len(ids) - len(set(ids)) == 393 and len({r["factor_key"] for r in parsed.value}) == 1417
    assert sum(r["uncertainty"] is None for r in parsed.value) == 1133 and skipped == 0


ADEME = (
    "Type Ligne;Identifiant de l'élément;Statut de l'élément;Nom base français;Nom attribut français;"
    "Unité français;Contributeur;Localisation géographique;Période de validité;Incertitude;"
    "Total poste non décomposé\r\n"
    "Elément;27970;Valide générique;Voiture;Motorisation moyenne;kgCO2e/km;ADEME;France continentale;2025;20;0,216\r\n"
    "Poste;27970;Valide générique;Voiture;Combustion;kgCO2e/km;ADEME;France continentale;2025;;0,180\r\n"
    "Elément;28132;Valide générique;Avion passagers;Moyen courrier, 2018;kgCO2e/peq.km;ADEME;France;2025;;0,187\r\n"
    "Elément;1;Archivé;Vieux;;kgCO2e/km;ADEME;France;2010;;1,0\r\n"
    "Elément;99;Valide générique;Cassé;;kgCO2e/km;ADEME;France;2025;;beaucoup\r\n"
).encode("cp1252")

DEFRA = (
    b"UK Government GHG Conversion Factors for Company Reporting\n"
    b"Factor set: Full set\nYear: 2024\n\n"
    b"ID,Scope,Level 1,Level 2,Level 3,Level 4,Column Text,UOM,GHG/Unit,GHG Conversion Factor 2024\n"
    b'1,Scope 1,Fuels,Gaseous fuels,Butane,,,tonnes,kg CO2e,"3,033.38067"\n'
    b"2,Scope 1,Fuels,Gaseous fuels,Butane,,,tonnes,kg CO2e of CO2 per unit,3028.27\n"
    b"3,Scope 3,Business travel- air,Flights,Long-haul,Economy class,With RF,passenger.km,kg CO2e,0.14981\n"
)


def test_ademe_base_carbone_layout() -> None:
    layout, table = layouts.read_factor_file(ADEME, "base_carbone.csv")
    parsed, skipped = layouts.factors_from_table(layout, table, "travel")
    assert layout.name == "ademe" and table.encoding == "cp1252" and skipped == 2
    assert [(r["activity_id"], r["value"], r["per_unit"], r["year"]) for r in parsed.value] == [
        ("27970", 0.216, "km", 2025),
        ("28132", 0.187, "peqkm", 2025),
    ]
    assert parsed.value[0]["name"] == "Voiture - Motorisation moyenne" and parsed.value[0]["uncertainty"] == 20
    assert "line 6, field 'value': 'beaucoup' is not a number" in parsed.rejects[0].message


def test_defra_flat_file_layout() -> None:
    layout, table = layouts.read_factor_file(DEFRA, "defra.csv")
    parsed, skipped = layouts.factors_from_table(layout, table, "generic")
    assert layout.name == "defra" and table.header_line == 5 and skipped == 1
    assert [(r["activity_id"], r["value"], r["unit"], r["year"]) for r in parsed.value] == [
        ("1", 3033.38067, "kg CO2e/tonnes", 2024),
        ("3", 0.14981, "kg CO2e/passenger.km", 2024),
    ]
