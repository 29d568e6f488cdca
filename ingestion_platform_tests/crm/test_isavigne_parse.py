"""iSaVigne parsing on bytes: the alias table, each kind's canonical row, rejects naming file, line and
field, products attached to sales lines, export days; and the shipped sample is what its generator writes."""

from __future__ import annotations

import datetime as dt
import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion_platform.defs.crm import canonical
from ingestion_platform.defs.crm.isavigne import aliases, parse
from ingestion_platform.lib.errors import Reject
from ingestion_platform.lib.tabular import TabularError, normalise_header

DAY = dt.date(2025, 3, 14)
SAMPLE = Path(parse.__file__).parent / "sample"


def read(kind: str, text: str, name: str = "export.csv", encoding: str = "utf-8") -> tuple[list, list]:
    export = parse.open_export(text.encode(encoding), name, kind, DAY)
    items = list(export.records())
    export.close()
    return [i for i in items if not isinstance(i, Reject)], [i for i in items if isinstance(i, Reject)]


def test_every_alias_is_written_in_normalised_form_and_kinds_are_known() -> None:
    for kind, fields in aliases.ALIASES.items():
        assert kind in aliases.KINDS
        for field, names in fields.items():
            assert all(normalise_header(n) == n for n in names), (kind, field)
        assert set(aliases.REQUIRED[kind]) <= set(fields)
    assert aliases.kind_of("Ventes 20250314.xlsx") == "ventes"
    assert aliases.kind_of("sub/articles-2025-03-14.xls") == "produits"
    assert aliases.kind_of("notes.txt") is None


def test_clients_in_windows_1252_with_french_headers() -> None:
    text = (
        "Code Client;Prénom;NOM;Société;Courriel;Tél. portable;CP;Ville;Pays;Accepte e-mailing;Statut\r\n"
        "C1;Élodie;Lefèvre;;  Elodie.Lefevre@Exemple.FR ;06 12 34 56 78;8000;Charleville;France;Non;Actif\r\n"
        ";Paul;Sanscode;;;;;;;;\r\n"
        "C3;;;Cave Bœckel;;;67140;Barr;Atlantide;Oui;Archivé\r\n"
    )
    rows, rejects = read("clients", text, "clients.csv", "cp1252")
    (row,) = rows
    assert row["customer_key"] == "isavigne-C1" and row["first_name"] == "Élodie" and row["last_name"] == "Lefèvre"
    assert row["email"] == "elodie.lefevre@exemple.fr" and row["phone"] == "+33612345678"
    assert row["zip_code"] == "08000" and row["country"] == "FR" and row["email_opt_out"] is True
    assert row["active"] is True and row["partition_day"] == DAY and row["source_id"] == "C1"
    assert [r.message for r in rejects] == [
        "request clients.csv, record line 3, field 'Code Client': required value missing",
        "request clients.csv, record line 4, field 'Pays': unknown country 'Atlantide' "
        "(a name in COUNTRIES or an ISO 3166 two-letter code)",
    ]
    assert rejects[1].key == {"customer_key": "isavigne-C3"} and rejects[1].day == DAY
    assert rejects[1].record["values"]["pays"] == "Atlantide"


def test_products_get_the_odoo_key_volume_pack_and_category() -> None:
    text = (
        "Référence;Désignation;Couleur;Millésime;Contenance;Conditionnement;Prix HT;Degré\n"
        "R20;Riesling 2020 75cl;Blanc;2020;75;Bouteille;14,50;12,5 % vol\n"
        "CM;Crémant d'Alsace Brut Magnum;Effervescent;;;;29;12\n"
        "C6;Pinot Noir 2019;Rouge;2019;75 cl;Carton de 6;108;13\n"
        "BIB;Edelzwicker;Blanc;;3 L;Bag-in-box;24;11\n"
        "X;Coffret découverte;;;;Coffret;55;\n"
        "Y;Sylvaner;Blanc;vingt;75;;9;\n"
    )
    rows, rejects = read("produits", text)
    keys = {r["source_id"]: r for r in rows}
    assert keys["R20"]["product_key"] == canonical.product_key("Riesling 2020 75cl", 2020, 75) == "RIESLING-2020-75CL"
    assert keys["R20"]["alcohol"] == Decimal("12.5") and keys["R20"]["list_price"] == Decimal("14.50")
    assert (keys["CM"]["volume_cl"], keys["CM"]["category"]) == (Decimal("150.0"), "sparkling")
    assert (keys["C6"]["units_per_pack"], keys["C6"]["category"]) == (6, "red")
    assert keys["C6"]["product_key"] == "PINOT_NOIR-2019-6X75CL"
    assert keys["BIB"]["volume_cl"] == Decimal("300.0") and "BIB" in keys["BIB"]["product_key"]
    assert keys["X"]["volume_cl"] is None and keys["X"]["product_key"].endswith("-UNKNOWN")
    assert [(r.error.record, r.error.field) for r in rejects] == [("line 7", "Millésime")]


def test_sales_lines_with_their_products_attached() -> None:
    text = (
        "N° facture;N° ligne;Date;Code client;Code article;Quantité;PU HT;Montant HT;Prix de revient;Canal\n"
        "F1;1;14/03/2025;C1;MAG;3;29,00;87,00;10,00;Caveau\n"
        "F1;2;45730;C1;R20;1 200;13,05;15 660,00;;Salon\n"
        "F2;1;2025-03-14;C2;GONE;1;9;9;;\n"
        "F3;1;14/03/2025;C3;R20;-;9;9;;\n"
    )
    rows, rejects = read("ventes", text, "ventes.csv")
    assert [(r.error.record, r.error.field) for r in rejects] == [("line 5", "Quantité")]
    products = {
        "MAG": parse.ProductInfo("CREMANT-NV-150CL", Decimal("150"), 1, Decimal("10")),
        "R20": parse.ProductInfo("RIESLING-2020-75CL", Decimal("75"), 1, Decimal("5.2")),
    }
    attached, unknown = parse.attach_products("ventes.csv", "ventes", rows, products)
    assert [(u.error.record, u.error.field, u.key) for u in unknown] == [
        ("line 4", "Code article", {"sale_line_key": "isavigne-F2-1"})
    ]
    first, second = parse.strip_helpers(attached)
    assert first["quantity_bottles_75cl_eq"] == Decimal("6.000") and first["cost_total"] == Decimal("30.00")
    assert first["margin_pct"] == Decimal("65.52") and first["date_sale"] == DAY
    assert second["quantity_units"] == Decimal("1200") and second["price_total"] == Decimal("15660.00")
    assert second["cost_total"] == Decimal("6240.00")  # no line cost: the product's cost price
    assert second["date_sale"] == DAY  # an Excel serial
    assert not any(k.startswith("_") for k in first)


def test_stock_and_contacts() -> None:
    rows, rejects = read("stock", "Code article,Dépôt,Stock,Réservé\nR20,Chai,120,20\nR20,,5,\n")
    assert not rejects
    assert [(r["stock_key"], r["available_qty"], r["last_count_date"]) for r in rows] == [
        ("isavigne-Chai:R20", Decimal("100"), DAY),
        ("isavigne-default:R20", Decimal("5"), DAY),
    ]
    text = "Code client,Date,Canal,Objet,Produit proposé\nC1,14/03/2025 10:30,Téléphone,Relance,R20\nC2,hier,SMS,,\n"
    rows, rejects = read("contacts", text)
    (row,) = rows
    assert row["date_contact"] == dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)  # 10:30 in Paris
    assert row["channel"] == "phone" and row["contact_key"].startswith("isavigne-C1-20250314T093000")
    assert [(r.error.record, r.error.field) for r in rejects] == [("line 3", "Date")]
    attached, warnings = parse.attach_products("contacts.csv", "contacts", rows, {})
    assert attached[0]["product_suggested"] is None and [w.dropped for w in warnings] == [False]


def test_a_header_without_a_required_field_refuses_the_file() -> None:
    with pytest.raises(TabularError) as error:
        parse.open_export(b"Date;Quantite\n14/03/2025;1\n", "ventes.csv", "ventes", DAY)
    message = str(error.value)
    assert message.startswith("request ventes.csv, record line 1: the header names no column for order_ref, ")
    assert "customer_code, product_code (order_ref: one of n_facture, numero_facture" in message
    with pytest.raises(TabularError, match=r"request stock\.csv, record line 1: no header row naming at least two of"):
        parse.open_export(b"a;b\n1;2\n", "stock.csv", "stock", DAY)


def test_ragged_line_is_rejected_alone() -> None:
    rows, rejects = read("stock", "Code article;Stock\nR20;1\nR21;2;oops\n")
    assert len(rows) == 1 and rejects[0].message.startswith("request export.csv, record line 3: 1 cell(s) beyond")


@pytest.mark.parametrize(
    ("name", "mtime", "day"),
    [
        ("clients_2025-03-14.csv", None, DAY),
        ("ventes_20250314.xlsx", None, DAY),
        ("stock 14-03-2025.xls", None, DAY),
        ("contacts.csv", dt.datetime(2025, 3, 13, 23, 30, tzinfo=dt.UTC).timestamp(), DAY),
        ("contacts.csv", None, None),
    ],
)
def test_export_day(name: str, mtime: float | None, day: dt.date | None) -> None:
    assert parse.export_day(name, mtime) == day


def test_the_shipped_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("isavigne_sample_generate", SAMPLE / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.main(tmp_path)
    shipped = sorted(p for p in SAMPLE.iterdir() if p.suffix in {".csv", ".xlsx", ".xls"})
    assert [p.name for p in written] == [p.name for p in shipped]
    for new, old in zip(written, shipped, strict=True):
        assert new.read_bytes() == old.read_bytes(), old.name
