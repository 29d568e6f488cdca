"""Write the shipped iSaVigne sample exports (invented data shaped like an Alsace estate's exports).

Run ``python ingestion_platform/defs/crm/isavigne/sample/generate.py``: it rewrites every export next
to this script, byte for byte the same on every run (a seeded generator consumed in a fixed order,
fixed workbook timestamps). Writing the ``.xls`` needs ``xlwt`` (a dev dependency: xlrd only reads).

The files carry the traps a real drop folder has (see ``docs/ISAVIGNE.md``):

* ``clients_2025-03-14.csv``: Windows-1252, ``;``, CRLF, two title lines and a blank line above the
  header; a client without a code (line 12) and one with an impossible modification date (line 20).
* ``produits_2025-03-14.xlsx``: typed cells under a title row; the names follow the Odoo catalogue
  naming (``Riesling 2020 75cl``) so both sources compute the same ``product_key``; a "Coffret
  découverte" whose volume cannot be known; a price written ``douze euros`` (row 10).
* ``ventes_2025-03-14.csv``: Windows-1252, ``;``, decimal commas and space thousands separators,
  ``dd/mm/yyyy``; a 31 February, a quantity ``deux`` and an unknown article code.
* ``ventes_2025-03-14_boutique.csv``: the cellar-door shop's export of the same day (a second file of
  the kind for the day): UTF-8 with BOM, ``,``, dot decimals, Excel serial dates.
* ``ventes_20250315.csv``: the next day (compact date in the name), UTF-8 with BOM, ``;``.
* ``stock_2025-03-14.xls``: legacy Excel, date cells, two warehouses.
* ``contacts_2025-03-14.csv``: UTF-8 without BOM, ``,``, ``dd/mm/yyyy HH:MM``; a date ``hier``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAY = dt.date(2025, 3, 14)
NEXT_DAY = dt.date(2025, 3, 15)
EXCEL_EPOCH = dt.date(1899, 12, 30)
ZIP_TIME = (2025, 3, 14, 18, 5, 0)

# code, name (Odoo catalogue spelling), colour, appellation, vintage, volume cl, packaging, grapes,
# aromas, alcohol, body, tannins, price HT, cost, active
PRODUCTS = [
    ("RIES20", "Riesling 2020 75cl", "Blanc", "Alsace", 2020, 75, "Bouteille", "Riesling",
     "agrumes, pierre à fusil", 12.5, "medium", "low", 14.5, 5.2, "Oui"),
    ("RIES21C6", "Carton de 6 Riesling 2021 75cl", "Blanc", "Alsace", 2021, 75, "Carton de 6", "Riesling",
     "citron, fleurs blanches", 12.5, "medium", "low", 81.0, 30.0, "Oui"),
    ("RGCS19", "Riesling Grand Cru Schlossberg 2019 75cl", "Blanc", "Alsace Grand Cru", 2019, 75, "Bouteille",
     "Riesling", "minéral, pêche", 13.0, "full", "low", 32.0, 11.0, "Oui"),
    ("PN19", "Pinot Noir 2019 75cl", "Rouge", "Alsace", 2019, 75, "Bouteille", "Pinot noir",
     "cerise, sous-bois", 13.0, "light", "medium", 18.0, 6.5, "Oui"),
    ("PG21", "Pinot Gris 2021 75cl", "Blanc", "Alsace", 2021, 75, "Bouteille", "Pinot gris",
     "fruits secs, fumé", 13.5, "full", "low", 16.0, 5.8, "Oui"),
    ("GVT18", "Gewurztraminer Vendanges Tardives 2018 50cl", "Moelleux", "Alsace", 2018, 50, "Bouteille",
     "Gewurztraminer", "litchi, rose, épices", 13.0, "full", "low", 38.0, 14.0, "Oui"),
    ("CREMMAG", "Crémant d'Alsace Brut Magnum", "Effervescent", "Crémant d'Alsace", None, None, "Bouteille",
     "Pinot blanc, Auxerrois", "brioche, pomme", 12.0, "medium", "low", 29.0, 10.0, "Oui"),
    ("CREMRO", "Crémant d'Alsace Rosé 75cl", "Rosé", "Crémant d'Alsace", None, 75, "Bouteille", "Pinot noir",
     "fraise, groseille", 12.0, "light", "low", "douze euros", 5.0, "Oui"),
    ("EDELBIB", "Edelzwicker BIB 3L", "Blanc", "Alsace", None, 300, "Bag-in-box", "Assemblage",
     "fruité", 11.5, "light", "low", 24.0, 9.0, "Oui"),
    ("MUSC22", "Muscat 2022 37,5cl", "Blanc", "Alsace", 2022, None, "Bouteille", "Muscat",
     "raisin frais", 12.0, "light", "low", 9.5, 3.4, "Oui"),
    ("MARCGW", "Marc de Gewurztraminer 70cl", "Eau-de-vie", "Alsace", None, 70, "Bouteille", "Gewurztraminer",
     "rose, litchi", 45.0, None, None, 42.0, 15.0, "Oui"),
    ("COFFRET", "Coffret découverte", "Assortiment", "Alsace", None, None, "Coffret", None,
     None, None, None, None, 55.0, 22.0, "Oui"),
    ("SYLV22", "Sylvaner 2022 75cl", "Blanc", "Alsace", 2022, 75, "Bouteille", "Sylvaner",
     "herbacé", 12.0, "light", "low", 9.0, 3.2, "Non"),
]  # fmt: skip

FIRST_NAMES = ["Marie", "Jean", "Sophie", "Luc", "Élodie", "François", "Camille", "Hélène", "Noël", "Agnès",
               "Thierry", "Cécile", "Jérôme", "Anaïs", "Benoît", "Zoé", "Loïc", "Maëlle", "Grégoire",
               "Inès"]  # fmt: skip
LAST_NAMES = ["Muller", "Schmitt", "Meyer", "Weber", "Kieffer", "Dupont", "Lefèvre", "Hoffmann", "Keller",
              "Bœckel", "Fischer", "Durand", "Roth", "Klein", "Wagner", "Gérard", "Bauer", "Zimmermann"]  # fmt: skip
CITIES = [("67000", "Strasbourg"), ("68000", "Colmar"), ("68150", "Ribeauvillé"), ("67600", "Sélestat"),
          ("75011", "Paris"), ("69002", "Lyon"), ("68340", "Riquewihr"), ("67140", "Barr")]  # fmt: skip
SEGMENTS = ["Particulier", "Caviste", "Restaurant", "Comité d'entreprise", "Particulier", "Particulier"]
CHANNELS = ["Caveau", "Salon", "Vente en ligne", "Correspondance", "Caviste"]


def _csv(rows: list[list[object]], delimiter: str, line_ending: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return out.getvalue()


def _fr(number: float, decimals: int = 2) -> str:
    """French number: decimal comma, (narrow) space thousands separator as iSaVigne prints them."""
    text = f"{number:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",")


def clients(rng: random.Random) -> tuple[list[list[object]], list[str]]:
    header = ["Code client", "Civilité", "Nom", "Prénom", "Raison sociale", "Adresse e-mail", "Téléphone",
              "Portable", "Code postal", "Ville", "Pays", "Type client", "Accepte e-mailing", "Actif",
              "Date modification"]  # fmt: skip
    rows: list[list[object]] = []
    codes = []
    for index in range(30):
        code = f"C{1001 + index}"
        first, last = FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        zip_code, city = CITIES[index % len(CITIES)]
        segment = SEGMENTS[index % len(SEGMENTS)]
        company = f"{last} & Fils" if segment in ("Caviste", "Restaurant") else ""
        mail_user = f"{first}.{last}".lower().replace("é", "e").replace("ë", "e").replace("è", "e")
        mail_user = mail_user.replace("ç", "c").replace("ï", "i").replace("œ", "oe").replace("ô", "o")
        email = f" {mail_user.upper() if index % 5 == 0 else mail_user}@exemple.fr " if index % 9 != 4 else ""
        phone = f"03 89 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}" if index % 3 else ""
        mobile = f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        modified = DAY - dt.timedelta(days=rng.randint(0, 400))
        rows.append([code, "Mme" if index % 2 == 0 else "M.", last, first, company, email, phone,
                     mobile if index % 4 else "", zip_code, city, "France" if index != 7 else "Belgique",
                     segment, "Oui" if index % 6 else "Non", "Oui" if index != 13 else "Non",
                     modified.strftime("%d/%m/%Y")])  # fmt: skip
        codes.append(code)
    rows.insert(7, ["", "M.", "Sanscode", "Paul", "", "paul.sanscode@exemple.fr", "", "", "67000", "Strasbourg",
                    "France", "Particulier", "Oui", "Oui", "01/03/2025"])  # fmt: skip
    rows[15][14] = "31/02/2025"
    return [header, *rows], [c for i, c in enumerate(codes) if i != 14]


def ventes(rng: random.Random, day: dt.date, customers: list[str], first_invoice: int, lines: int) -> list[list]:
    rows: list[list[object]] = []
    invoice, line_no = first_invoice, 0
    products = [p for p in PRODUCTS if isinstance(p[12], float)]
    for _ in range(lines):
        if line_no == 0 or rng.random() < 0.4:
            invoice, line_no = invoice + 1, 0
            customer = rng.choice(customers)
            channel = rng.choice(CHANNELS)
        line_no += 1
        product = rng.choice(products)
        quantity = rng.choice([1, 1, 2, 3, 6, 12, 24, 120])
        price = product[12] * (0.9 if quantity >= 12 else 1.0)
        rows.append([f"FA{day:%y}{invoice:05d}", line_no, day, customer, product[0], product[1], quantity,
                     round(price, 2), round(price * quantity, 2), product[13], channel])  # fmt: skip
    return rows


def write_ventes_fr(path: Path, rows: list[list], encoding: str) -> None:
    header = ["N° facture", "N° ligne", "Date", "Code client", "Code article", "Désignation", "Quantité",
              "Prix unitaire HT", "Montant HT", "Prix de revient", "Canal"]  # fmt: skip
    body = [[r[0], r[1], r[2] if isinstance(r[2], str) else r[2].strftime("%d/%m/%Y"), r[3], r[4], r[5],
             r[6], _fr(r[7]), _fr(r[8]), _fr(r[9]), r[10]] for r in rows]  # fmt: skip
    path.write_bytes(_csv([header, *body], ";", "\r\n").encode(encoding))


def main(out: Path = HERE) -> list[Path]:
    """Write the exports into ``out`` (default: next to this script); returns the files written."""
    rng = random.Random(20250314)
    client_rows, customers = clients(rng)
    title = [["Export iSaVigne — Fichier clients"], [f"Édité le {DAY:%d/%m/%Y} à 18:05"], []]
    (out / "clients_2025-03-14.csv").write_bytes(_csv(title + client_rows, ";", "\r\n").encode("cp1252"))

    day_rows = ventes(rng, DAY, customers, 100, 60)
    day_rows[10][2] = "31/02/2025"
    day_rows[21][6] = "deux"
    day_rows[33][4], day_rows[33][5] = "ZZZ99", "Article supprimé"
    write_ventes_fr(out / "ventes_2025-03-14.csv", day_rows, "cp1252")

    shop = ventes(rng, DAY, customers, 500, 12)
    header = ["Facture", "Ligne", "Date", "Client", "Référence", "Libellé", "Qté", "PU HT", "Total HT", "Canal"]
    body = [[r[0].replace("FA", "BQ"), r[1], (r[2] - EXCEL_EPOCH).days, r[3], r[4], r[5], r[6], f"{r[7]:.2f}",
             f"{r[8]:.2f}", "Boutique"] for r in shop]  # fmt: skip
    (out / "ventes_2025-03-14_boutique.csv").write_bytes(b"\xef\xbb\xbf" + _csv([header, *body], ",", "\r\n").encode())

    write_ventes_fr(out / "ventes_20250315.csv", ventes(rng, NEXT_DAY, customers, 200, 25), "utf-8-sig")
    write_products(out / "produits_2025-03-14.xlsx")
    write_stock(out / "stock_2025-03-14.xls", rng)
    write_contacts(out / "contacts_2025-03-14.csv", rng, customers)
    return sorted(p for p in out.iterdir() if p.suffix in {".csv", ".xlsx", ".xls"})


def write_products(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Articles"
    sheet.append([f"Catalogue articles au {DAY:%d/%m/%Y}"])
    sheet.append(["Référence", "Désignation", "Couleur", "Appellation", "Millésime", "Contenance (cl)",
                  "Conditionnement", "Cépages", "Arômes", "Degré", "Corps", "Tanins", "Prix HT", "Prix de revient",
                  "Actif"])  # fmt: skip
    for product in PRODUCTS:
        sheet.append(list(product))
    moment = dt.datetime.combine(DAY, dt.time(18, 5))
    book.properties.created = book.properties.modified = moment
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(_fixed_zip(buffer.getvalue()))


def _fixed_zip(body: bytes) -> bytes:
    """The workbook with every member dated ``ZIP_TIME``, and its ``modified`` property too (openpyxl
    stamps the current time on both when it saves)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                stamp = dt.datetime(*ZIP_TIME).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            target.writestr(fixed, data)
    return out.getvalue()


def write_stock(path: Path, rng: random.Random) -> None:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Stock")
    dates = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    header = ["Code article", "Désignation", "Dépôt", "Stock physique", "Qté réservée", "Date inventaire"]
    for col, title in enumerate(header):
        sheet.write(0, col, title)
    row = 1
    for warehouse in ("Chai principal", "Caveau Ribeauvillé"):
        for product in PRODUCTS:
            if warehouse.startswith("Caveau") and product[0] in ("EDELBIB", "COFFRET", "SYLV22"):
                continue
            quantity = rng.randint(0, 900) if warehouse.startswith("Chai") else rng.randint(0, 80)
            sheet.write(row, 0, product[0])
            sheet.write(row, 1, product[1])
            sheet.write(row, 2, warehouse)
            sheet.write(row, 3, quantity)
            sheet.write(row, 4, min(quantity, rng.choice([0, 0, 6, 12])))
            sheet.write(row, 5, DAY - dt.timedelta(days=rng.randint(0, 60)), dates)
            row += 1
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(buffer.getvalue())


def write_contacts(path: Path, rng: random.Random, customers: list[str]) -> None:
    header = ["N° contact", "Code client", "Date", "Canal", "Campagne", "Objet", "Statut", "Produit proposé",
              "Réponse"]  # fmt: skip
    campaigns = [("Portes ouvertes printemps", "E-mail", "Invitation aux portes ouvertes"),
                 ("Primeurs 2024", "Courriel", "Offre primeurs Riesling"),
                 ("", "Téléphone", "Relance commande"), ("Salon des vins de Colmar", "Visite", "Dégustation au stand"),
                 ("Fêtes de fin d'année", "Courrier", "Catalogue des coffrets")]  # fmt: skip
    rows: list[list[object]] = []
    for index in range(24):
        campaign, channel, subject = campaigns[index % len(campaigns)]
        moment = dt.datetime.combine(DAY - dt.timedelta(days=rng.randint(0, 20)), dt.time(rng.randint(8, 18), 30))
        suggested = rng.choice(["RIES20", "PN19", "CREMMAG", "", ""])
        status = rng.choice(["Envoyé", "Ouvert", "Cliqué", "Répondu", "Sans réponse"])
        rows.append([f"CT{7001 + index}", rng.choice(customers), moment.strftime("%d/%m/%Y %H:%M"), channel,
                     campaign, subject, status, suggested,
                     "Commande passée" if status == "Répondu" else ""])  # fmt: skip
    rows[5][2] = "hier"
    path.write_bytes(_csv([header, *rows], ",", "\n").encode())


if __name__ == "__main__":
    main()
