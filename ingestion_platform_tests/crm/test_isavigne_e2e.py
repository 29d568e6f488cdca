"""The iSaVigne assets end to end on the shipped sample exports, on SQLite and PostgreSQL: the range,
the dead letters (file, line, field), a day re-run that changes nothing, a replay from raw, a
corrected export that resolves its letters, and the drop-folder sensor's cursor."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.crm import canonical, tables
from ingestion_platform.defs.crm.isavigne import assets, parse
from ingestion_platform.defs.crm.isavigne.resources import IsavigneExports
from ingestion_platform.defs.crm.isavigne.schedules import isavigne_exports_sensor
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

SAMPLE = Path(assets.__file__).parent / "sample"
ALL = [
    assets.isavigne_customers,
    assets.isavigne_products,
    assets.isavigne_sales_lines,
    assets.isavigne_stock_levels,
    assets.isavigne_contact_history,
]
RANGE = ("2025-03-14", "2025-03-15")


def drops(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def resources(url: str, data: Path, folder: Path) -> dict[str, Any]:
    return {
        "isavigne_exports": IsavigneExports(export_dir=str(folder)),
        "warehouse": WarehouseResource(database_url=url),
        "raw_store": RawStoreResource(data_dir=str(data)),
    }


def run(res: dict[str, Any], *, replay: bool = False, days: tuple[str, str] = RANGE, selection=None):
    chosen = selection or ALL
    config = {"ops": {a.op.name: {"config": {"reprocess_from_raw": True}} for a in chosen}} if replay else {}
    return dg.materialize(
        chosen,
        resources=res,
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[1]},
        run_config=config,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def rows_of(wh: Warehouse, table: sa.Table) -> dict[str, dict[str, Any]]:
    key = table.primary_key.columns.values()[0]
    return {r[key.name]: dict(r) for r in wh.fetch(sa.select(table).where(table.c.source == "isavigne"))}


def french_csv(name: str, encoding: str, skip: int = 0) -> list[dict[str, str]]:
    """A sample file read with the plain csv module (not the parser under test)."""
    text = (SAMPLE / name).read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO("\n".join(text.splitlines()[skip:])), delimiter=";"))


def valid_date(text: str) -> bool:
    try:
        dt.datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return False
    return True


def isavigne_jobs(ledger: Ledger) -> list[dict[str, Any]]:
    return [j for j in ledger.jobs() if j["source"] == "isavigne"]


def dump(wh: Warehouse) -> dict[str, dict]:
    out = {}
    for t in tables.CANONICAL_TABLES:
        out[t.name] = {
            k: {c: v for c, v in r.items() if c not in ("_ingested_at", "_run_id")} for k, r in rows_of(wh, t).items()
        }
    return out


def test_the_sample_range_loads_with_bad_lines_dead_lettered(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    data, folder = tmp_path / "data", drops(tmp_path)
    first = run(resources(warehouse_url, data, folder))
    assert first.success

    # Customers: every client line with a code and a readable date (read here with the csv module).
    clients = french_csv("clients_2025-03-14.csv", "cp1252", skip=3)
    expected = {r["Code client"] for r in clients if r["Code client"] and valid_date(r["Date modification"])}
    customers = rows_of(warehouse, tables.customers)
    assert set(customers) == {f"isavigne-{code}" for code in expected} and len(expected) == 29
    first_client = customers["isavigne-C1001"]
    assert first_client["email"] == "marie.muller@exemple.fr"  # " MARIE.MULLER@EXEMPLE.FR " in the file
    assert first_client["partition_day"] == dt.date(2025, 3, 14) and first_client["country"] == "FR"
    assert customers["isavigne-C1008"]["country"] == "BE"
    phones = [c["phone"] for c in customers.values() if c["phone"]]
    assert phones and all(p.startswith("+33") for p in phones)

    # Products: the Odoo catalogue naming gives the same keys as canonical.product_key of Odoo names.
    products = rows_of(warehouse, tables.product_catalog)
    assert canonical.product_key("Riesling 2020 75cl", 2020, 75) in products
    riesling = products["RIESLING-2020-75CL"]
    assert (riesling["volume_cl"], riesling["category"], riesling["list_price"]) == (
        Decimal("75"),
        "white",
        Decimal("14.5"),
    )
    by_code = {p["source_id"]: p for p in products.values()}
    assert by_code["CREMMAG"]["volume_cl"] == Decimal("150")  # "Magnum" in the name
    assert by_code["MUSC22"]["volume_cl"] == Decimal("37.5")  # "37,5cl" in the name
    assert by_code["RIES21C6"]["units_per_pack"] == 6
    assert by_code["COFFRET"]["volume_cl"] is None and by_code["COFFRET"]["product_key"].endswith("-UNKNOWN")
    assert "CREMRO" not in by_code  # "douze euros" as a price: the line is rejected
    assert len(by_code) == 12

    # Sales: both files of the 14th and the file of the 15th; the three bad lines rejected.
    sales = rows_of(warehouse, tables.sales_lines)
    ventes = french_csv("ventes_2025-03-14.csv", "cp1252")
    good = [r for r in ventes if valid_date(r["Date"]) and r["Quantité"].isdigit() and r["Code article"] != "ZZZ99"]
    shop = (SAMPLE / "ventes_2025-03-14_boutique.csv").read_text("utf-8-sig").splitlines()[1:]
    next_day = french_csv("ventes_20250315.csv", "utf-8-sig")
    assert len(sales) == len(good) + len(shop) + len(next_day) and len(good) == len(ventes) - 3
    days = {}
    for row in sales.values():
        days[row["partition_day"]] = days.get(row["partition_day"], 0) + 1
        assert row["date_sale"] == row["partition_day"]
    assert days == {dt.date(2025, 3, 14): len(good) + len(shop), dt.date(2025, 3, 15): len(next_day)}
    sample_line = good[0]
    line = sales[f"isavigne-{sample_line['N° facture']}-{sample_line['N° ligne']}"]
    quantity = Decimal(sample_line["Quantité"])
    volume = by_code[sample_line["Code article"]]["volume_cl"]
    pack = by_code[sample_line["Code article"]]["units_per_pack"]
    assert line["quantity_bottles_75cl_eq"] == (quantity * pack * volume / 75).quantize(Decimal("0.001"))
    assert line["price_total"] == Decimal(sample_line["Montant HT"].replace(" ", "").replace(",", "."))
    magnum = next(s for s in sales.values() if s["product_key"] == by_code["CREMMAG"]["product_key"])
    assert magnum["quantity_bottles_75cl_eq"] == magnum["quantity_units"] * 2
    coffret = [s for s in sales.values() if s["product_key"] == by_code["COFFRET"]["product_key"]]
    assert coffret and all(s["quantity_bottles_75cl_eq"] is None for s in coffret)  # never guessed

    # Stock: the .xls lines, but those of the product rejected above (its code is unknown: 2 depots).
    stock = rows_of(warehouse, tables.stock_levels)
    assert len(stock) == 23 - 2 and stock["isavigne-Chai principal:RIES20"]["product_key"] == "RIESLING-2020-75CL"
    contacts = rows_of(warehouse, tables.contact_history)
    assert len(contacts) == 23 and {c["channel"] for c in contacts.values()} <= {"email", "phone", "visit", "mail"}

    # Dead letters name the file, the line and the field, and keep the line as read.
    letters = {d.request: d for d in RawStore(data).dead_letters("isavigne")}
    errors = {name: letter.error for name, letter in letters.items()}
    assert set(errors) == {
        "clients_2025-03-14.csv__line_12",
        "clients_2025-03-14.csv__line_20",
        "produits_2025-03-14.xlsx__line_10",
        "ventes_2025-03-14.csv__line_12",
        "ventes_2025-03-14.csv__line_23",
        "ventes_2025-03-14.csv__line_35",
        "contacts_2025-03-14.csv__line_7",
        *(f"stock_2025-03-14.xls__line_{n}" for n in (9, 22)),
    }, errors
    assert (
        "request ventes_2025-03-14.csv, record line 23, field 'Quantité': expected a number"
        in errors["ventes_2025-03-14.csv__line_23"]
    )
    assert "field 'Code article': unknown article code 'ZZZ99'" in errors["ventes_2025-03-14.csv__line_35"]
    assert "field 'Code client': required value missing" in errors["clients_2025-03-14.csv__line_12"]
    assert json.loads(letters["ventes_2025-03-14.csv__line_23"].payload())["values"]["quantite"] == "deux"
    assert all(letter.partition == "2025-03-14" for letter in letters.values())

    checks = {
        (e.asset_key.to_user_string(), e.check_name, e.partition): e.passed for e in first.get_asset_check_evaluations()
    }
    assert checks[("crm/isavigne_sales_lines", "no_dead_letters", "2025-03-14")] is False
    assert checks[("crm/isavigne_sales_lines", "no_dead_letters", "2025-03-15")] is True
    failing = {(a, name, day) for (a, name, day), passed in checks.items() if not passed}
    # the canonical checks pass (keys, references, 75 cl equivalents ...); the warnings say what the sample holds
    assert failing == {
        ("crm/isavigne_customers", "no_dead_letters", "2025-03-14"),
        ("crm/isavigne_products", "no_dead_letters", "2025-03-14"),
        ("crm/isavigne_products", "volume_known", "2025-03-14"),  # the "Coffret découverte"
        ("crm/isavigne_sales_lines", "no_dead_letters", "2025-03-14"),
        ("crm/isavigne_stock_levels", "no_dead_letters", "2025-03-14"),
        ("crm/isavigne_contact_history", "no_dead_letters", "2025-03-14"),
    }, failing
    assert {a for (a, name, _) in checks if name == "rows_match_exports"} == {a.key.to_user_string() for a in ALL}

    # The files are in the raw store, byte for byte, before parsing.
    store = RawStore(data)
    stored = store.read("isavigne", "2025-03-14_2025-03-15", "stock_2025-03-14.xls")
    assert stored.body == (SAMPLE / "stock_2025-03-14.xls").read_bytes()

    ledger = Ledger(warehouse)
    jobs = {(j["asset_key"], j["partition_key"]): j for j in isavigne_jobs(ledger)}
    assert jobs[("crm/isavigne_sales_lines", "2025-03-14")]["status"] == "completed_with_errors"
    assert jobs[("crm/isavigne_sales_lines", "2025-03-14")]["rejected"] == 3
    assert jobs[("crm/isavigne_sales_lines", "2025-03-15")]["status"] == "completed"
    assert jobs[("crm/isavigne_stock_levels", "2025-03-14")]["created"] == 21

    # A day re-run changes nothing.
    before = dump(warehouse)
    again = run(resources(warehouse_url, data, folder), days=("2025-03-14", "2025-03-14"))
    assert again.success
    assert dump(warehouse) == before
    latest = {}
    for job in isavigne_jobs(Ledger(warehouse)):
        if job["partition_key"] == "2025-03-14":
            latest[job["asset_key"]] = job
    assert all(j["created"] == 0 and j["updated"] == 0 for j in latest.values()), latest

    # A replay from the raw store, with the drop folder gone, rebuilds the same rows.
    shutil.rmtree(folder)
    folder.mkdir()
    with warehouse.engine.begin() as conn:
        conn.execute(sa.delete(tables.sales_lines))
    replay = run(resources(warehouse_url, data, folder), replay=True, selection=[assets.isavigne_sales_lines])
    assert replay.success
    assert dump(warehouse)["sales_lines"] == before["sales_lines"]


def test_a_corrected_export_resolves_its_dead_letters(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    data, folder = tmp_path / "data", drops(tmp_path)
    day = ("2025-03-14", "2025-03-14")
    chosen = [assets.isavigne_products, assets.isavigne_sales_lines]
    assert run(resources(warehouse_url, data, folder), days=day, selection=chosen).success
    path = folder / "ventes_2025-03-14.csv"
    lines = path.read_bytes().decode("cp1252").split("\r\n")
    assert ";deux;" in lines[22]
    lines[22] = lines[22].replace(";deux;", ";2;")
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    assert run(resources(warehouse_url, data, folder), days=day, selection=chosen).success
    open_letters = {d.request for d in RawStore(data).dead_letters("isavigne")}
    assert "ventes_2025-03-14.csv__line_23" not in open_letters
    assert {"ventes_2025-03-14.csv__line_12", "ventes_2025-03-14.csv__line_35"} <= open_letters
    fixed = lines[22].split(";")
    assert rows_of(warehouse, tables.sales_lines)[f"isavigne-{fixed[0]}-{fixed[1]}"]["quantity_units"] == 2


def test_an_unreadable_export_is_dead_lettered_whole_and_the_others_load(
    warehouse: Warehouse, sqlite_url: str, tmp_path: Path
) -> None:
    data, folder = tmp_path / "data", drops(tmp_path)
    (folder / "clients_2025-03-14_agence.csv").write_bytes(b"Nom;Ville\nDurand;Colmar\n")
    result = run(
        resources(sqlite_url, data, folder), days=("2025-03-14", "2025-03-14"), selection=[assets.isavigne_customers]
    )
    assert result.success
    letters = {d.request: d for d in RawStore(data).dead_letters("isavigne")}
    message = letters["clients_2025-03-14_agence.csv"].error
    assert "clients_2025-03-14_agence.csv" in message and "header names no column for code" in message
    assert len(rows_of(Warehouse(sqlite_url), tables.customers)) == 29


def test_the_sensor_requests_a_run_per_new_or_changed_file(tmp_path: Path) -> None:
    folder = drops(tmp_path)
    (folder / "notes.txt").write_text("not an export")
    exports = IsavigneExports(export_dir=str(folder))
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"isavigne_exports": exports})
        result = list(isavigne_exports_sensor(context) or [])
        return [r for r in result if isinstance(r, dg.RunRequest)], context.cursor

    first, cursor = tick(None)
    got = {(r.tags["isavigne/file"], r.partition_key, r.asset_selection[0].to_user_string()) for r in first}
    assert got == {
        ("clients_2025-03-14.csv", "2025-03-14", "crm/isavigne_customers"),
        ("contacts_2025-03-14.csv", "2025-03-14", "crm/isavigne_contact_history"),
        ("produits_2025-03-14.xlsx", "2025-03-14", "crm/isavigne_products"),
        ("stock_2025-03-14.xls", "2025-03-14", "crm/isavigne_stock_levels"),
        ("ventes_2025-03-14.csv", "2025-03-14", "crm/isavigne_sales_lines"),
        ("ventes_2025-03-14_boutique.csv", "2025-03-14", "crm/isavigne_sales_lines"),
        ("ventes_20250315.csv", "2025-03-15", "crm/isavigne_sales_lines"),
    }
    assert all(r.run_key.endswith(r.tags["isavigne/sha256"]) for r in first)
    assert set(json.loads(cursor)) == {name for name, _, _ in got}

    again, cursor = tick(cursor)
    assert again == []
    # touched without a change: no run; a changed file: one run with a new key; a new undated file:
    # its day is its modification time in Europe/Paris.
    os.utime(folder / "stock_2025-03-14.xls", ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    with (folder / "ventes_20250315.csv").open("ab") as handle:
        handle.write(b"FA2500299;1;15/03/2025;C1001;RIES20;Riesling 2020 75cl;1;14,50;14,50;5,20;Caveau\r\n")
    undated = folder / "contacts_relances.csv"
    undated.write_bytes((SAMPLE / "contacts_2025-03-14.csv").read_bytes())
    moment = dt.datetime(2025, 3, 13, 23, 30, tzinfo=dt.UTC).timestamp()  # 00:30 on the 14th in Paris
    os.utime(undated, (moment, moment))
    third, cursor = tick(cursor)
    assert sorted((r.tags["isavigne/file"], r.partition_key) for r in third) == [
        ("contacts_relances.csv", "2025-03-14"),
        ("ventes_20250315.csv", "2025-03-15"),
    ]
    assert {r.run_key for r in third}.isdisjoint({r.run_key for r in first})


def test_a_line_the_parser_drops_silently_fails_the_reconciliation(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, folder = tmp_path / "data", drops(tmp_path)
    records = parse.Export.records

    def losing_line_5(self: parse.Export):
        return (item for item in records(self) if not (isinstance(item, dict) and item.get("_line") == 5))

    monkeypatch.setattr(parse.Export, "records", losing_line_5)
    result = run(
        resources(sqlite_url, data, folder),
        days=("2025-03-14", "2025-03-14"),
        selection=[assets.isavigne_products, assets.isavigne_stock_levels],
    )
    assert result.success  # an error-severity check that does not block: the run shows it red
    failed = [e for e in result.get_asset_check_evaluations() if e.check_name == "rows_match_exports" and not e.passed]
    assert {e.asset_key.to_user_string() for e in failed} == {"crm/isavigne_products", "crm/isavigne_stock_levels"}
    samples = {e.asset_key.to_user_string(): e.metadata["sample"].value for e in failed}
    # line 5 of each file: the 3rd product of the workbook (a title row, the header), the 4th stock line
    assert samples["crm/isavigne_products"] == [{"missing_row": ["2025-03-14", "RGCS19"]}]
    assert samples["crm/isavigne_stock_levels"] == [{"missing_row": ["2025-03-14", "Chai principal:PN19"]}]


def test_a_missing_export_folder_fails_source_loaded(sqlite_url: str, tmp_path: Path) -> None:
    res = resources(sqlite_url, tmp_path / "data", tmp_path / "nowhere")
    result = run(res, days=("2025-03-14", "2025-03-14"), selection=[assets.isavigne_customers])
    assert not result.success  # source_loaded is blocking
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "source_loaded"]
    assert not evaluation.passed and "nowhere does not exist" in json.dumps(evaluation.metadata["sample"].value)
