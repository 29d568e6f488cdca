"""The canonical CRM vocabulary: product keys, volumes and 75 cl equivalents, categories, price bands,
e-mails, phones; and product keys kept for ever by crm.product_key_map (SQLite and PostgreSQL)."""

from __future__ import annotations

import decimal
import random

import pytest

from ingestion_platform.defs.crm import canonical as c
from ingestion_platform.defs.crm.keys import assign_product_keys, product_key_for
from ingestion_platform.defs.crm.tables import product_key_map
from ingestion_platform.lib.warehouse import Warehouse

D = decimal.Decimal


@pytest.mark.parametrize(
    ("name", "volume", "units", "key"),
    [
        ("Riesling 2020 75cl", 75, 1, "RIESLING-2020-75CL"),
        ("RIESLING 2020 - 75 cl", 75, 1, "RIESLING-2020-75CL"),  # another source's spelling, same key
        ("Riesling Grand Cru 2019 Magnum", 150, 1, "RIESLING_GRAND_CRU-2019-150CL"),
        ("Gewurztraminer VT 2018 37,5cl", 37.5, 1, "GEWURZTRAMINER_VT-2018-37.5CL"),
        ("Pinot Noir 2021 carton de 6 x 75cl", 75, 6, "PINOT_NOIR-2021-6X75CL"),
        ("Pinot Noir 2021 6x75cl", 75, 6, "PINOT_NOIR-2021-6X75CL"),
        ("Côtes du Rhône 1,5 L 2020", 150, 1, "COTES_DU_RHONE-2020-150CL"),
        ("Crémant d'Alsace Brut", None, 1, "CREMANT_D_ALSACE_BRUT-NV-UNKNOWN"),
        ("Sylvaner 2022 750 ml", 75, 1, "SYLVANER-2022-75CL"),
        ("Jéroboam Pinot Noir 2015", 300, 1, "PINOT_NOIR-2015-300CL"),
    ],
)
def test_product_key_volume_and_pack_from_the_name(name: str, volume: float | None, units: int, key: str) -> None:
    assert c.parse_volume_cl(name) == volume
    assert c.pack_units(name) == units
    assert c.product_key(name, c.vintage(name), c.parse_volume_cl(name), c.pack_units(name)) == key


def test_bag_in_box_and_configured_volume() -> None:
    assert c.parse_volume_cl(None, "BIB Rouge 3L") == 300
    assert c.is_bag_in_box("BIB Rouge 3L") and not c.is_bag_in_box("Riesling 75cl")
    assert c.product_key("BIB Rouge 3L", None, 300, bib=True) == "ROUGE-NV-BIB300CL"
    # a configured volume field (a number, in cl) wins over the name; 0 / False mean "not set"
    assert c.parse_volume_cl(50, "Riesling 75cl") == 50
    assert c.parse_volume_cl(0, False, "Riesling 75cl") == 75


@pytest.mark.parametrize(
    ("quantity", "volume", "units", "expected"),
    [(12, 75, 1, D("12.000")), (3, 37.5, 1, D("1.500")), (2, 150, 1, D("4.000")), (1, 300, 1, D("4.000")),
     (2, 75, 6, D("12.000")), (1, 75, 12, D("12.000")), (1, 300, 1, D("4.000")), (5, None, 1, None)],
)  # fmt: skip
def test_bottles_75cl_eq(quantity: int, volume: float | None, units: int, expected: D | None) -> None:
    assert c.bottles_75cl_eq(quantity, volume, units) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(("Crémant d'Alsace Rosé",), "sparkling"), (("Vin rouge",), "red"), (("Rosé de Provence",), "rosé"),
     (("Riesling 2020",), "white"), (("Gewurztraminer Vendanges Tardives",), "sweet"), (("Marc de Gewurz",), "spirits"),
     ((None, "All / Saleable / Vins blancs"), "white"), (("Coffret cadeau",), "other"), (("rose",), "rosé")],
)  # fmt: skip
def test_category(labels: tuple, expected: str) -> None:
    assert c.category(*labels) == expected


def test_price_bands_and_their_errors() -> None:
    bands = c.price_bands("entry:10,standard:20,prestige")
    assert [c.price_segment(p, bands) for p in (9.99, 10, 19.5, 250, None)] == ["entry", "standard", "standard",
                                                                               "prestige", None]  # fmt: skip
    assert c.price_segment(15) == "standard"  # the default CRM_PRICE_SEGMENTS
    bad_specs = [("entry:10,standard:5,top", "must increase"), ("entry:ten,top", "not a number"),
                 ("entry:10,standard:20", "last band must be unbounded"), ("a,b:3,c", "only the last")]  # fmt: skip
    for bad, message in bad_specs:
        with pytest.raises(ValueError, match=message):
            c.price_bands(bad)


def test_emails_and_phones() -> None:
    assert c.normalise_email("  Jean Dupont <JEAN.Dupont@Example.FR> ") == "jean.dupont@example.fr"
    assert c.normalise_email("mailto:a@b.fr;") == "a@b.fr"
    assert c.normalise_email(False) is None and c.normalise_email("  ") is None
    assert c.email_is_valid("a@b.fr") and not c.email_is_valid("jean.dupont@") and not c.email_is_valid(None)
    assert c.normalise_phone("06 12 34 56 78") == "+33612345678"
    assert c.normalise_phone("0033 3 89 41 22 33") == "+33389412233"
    assert c.normalise_phone("+41 22 123 45 67") == "+41221234567"
    assert c.normalise_phone("022 123 45 67", "CH") == "+41221234567"
    assert c.normalise_phone("n/a") is None and c.normalise_phone(False) is None and c.normalise_phone("12") is None


def test_the_french_phone_shortcut_agrees_with_phonenumbers() -> None:
    """The usual French forms skip phonenumbers; for every form, the result is what phonenumbers gives."""
    rng = random.Random(7)
    shapes = [
        lambda d: "0" + d,
        lambda d: " ".join(["0" + d[0], d[1:3], d[3:5], d[5:7], d[7:9]]),
        lambda d: ".".join(["0" + d[0], d[1:3], d[3:5], d[5:7], d[7:9]]),
        lambda d: "-".join(["0" + d[0], d[1:3], d[3:5], d[5:7], d[7:9]]),
        lambda d: "+33" + d,
        lambda d: "+33 " + d[0] + " " + " ".join([d[1:3], d[3:5], d[5:7], d[7:9]]),
        lambda d: "0033" + d,
        lambda d: "+330" + d,  # not a shortcut form
        lambda d: "0" + d[:-1],  # too short
        lambda d: "0" + d + "1",  # too long
    ]
    for _ in range(3_000):
        digits = str(rng.randint(0, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
        text = rng.choice(shapes)(digits)
        expected = c.phone_by_library("+" + text[2:] if text.startswith("00") else text, "FR")
        assert c.normalise_phone(text) == expected, text
        assert c.normalise_phone(text, "fr") == expected, text


def test_customer_key_and_margin() -> None:
    assert c.customer_key("odoo", 456) == "odoo-456" and c.customer_key("isavigne", " C123 ") == "isavigne-C123"
    with pytest.raises(ValueError, match="empty id"):
        c.customer_key("isavigne", " ")
    assert c.margin_pct(100, 60) == D("40.00") and c.margin_pct(0, 5) is None and c.margin_pct(10, None) is None


def test_product_keys_are_kept_for_ever(warehouse: Warehouse) -> None:
    rows = [
        {"source_id": 1, "product_key": "RIESLING-2020-75CL"},
        {"source_id": 2, "product_key": "RIESLING-2020-75CL"},
    ]
    assign_product_keys(warehouse, rows, "odoo")
    # two records of one source with the same candidate: the second is told apart, deterministically
    assert [r["product_key"] for r in rows] == ["RIESLING-2020-75CL", "RIESLING-2020-75CL-ODOO2"]
    renamed = assign_product_keys(warehouse, [{"source_id": "1", "product_key": "RIESLING_RESERVE-2020-75CL"}], "odoo")
    assert renamed[0]["product_key"] == "RIESLING-2020-75CL"  # renamed in the source: same key
    other = assign_product_keys(warehouse, [{"source_id": "R20-75", "product_key": "RIESLING-2020-75CL"}], "isavigne")
    assert other[0]["product_key"] == "RIESLING-2020-75CL"  # the same product from another source meets it
    assert product_key_for(warehouse, "odoo", [1, 2, 3]) == {"1": "RIESLING-2020-75CL", "2": "RIESLING-2020-75CL-ODOO2"}
    assert warehouse.count(product_key_map) == 3
