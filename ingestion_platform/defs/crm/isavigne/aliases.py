"""The alias table: iSaVigne export headers -> the fields the parser reads, per kind of export.

iSaVigne has no public export specification, and estates rename columns in their export templates,
so every field lists the header spellings seen or expected. Headers are compared after
``lib.tabular.normalise_header`` (accents folded, lower case, ``_`` between words): ``"Code Client"``,
``"CODE CLIENT"`` and ``"code_client"`` are the same alias, ``"Désignation"`` is ``designation``,
``"N° facture"`` is ``n_facture``. Write aliases here in that normalised form.

To support a new spelling, add it to the field's tuple; to read a new field, add a ``field: (aliases)``
entry and use it in ``parse.py``. A header that matches no alias is ignored (listed in the load's
warnings once per file). ``docs/ISAVIGNE.md`` documents the fields and the assumed format.

The kind of an export is the first word of its file name (``KIND_ALIASES``: ``clients_2025-03-14.csv``,
``Ventes 20250314.xlsx``, ``articles-2025-03-14.xls``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ingestion_platform.lib.tabular import normalise_header

KINDS = ("clients", "produits", "ventes", "stock", "contacts")

KIND_ALIASES: dict[str, str] = {
    "clients": "clients",
    "client": "clients",
    "tiers": "clients",
    "produits": "produits",
    "produit": "produits",
    "articles": "produits",
    "article": "produits",
    "catalogue": "produits",
    "ventes": "ventes",
    "vente": "ventes",
    "factures": "ventes",
    "lignes": "ventes",
    "stock": "stock",
    "stocks": "stock",
    "inventaire": "stock",
    "contacts": "contacts",
    "contact": "contacts",
    "historique": "contacts",
    "relances": "contacts",
}

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "clients": {
        "code": ("code_client", "n_client", "numero_client", "no_client", "ref_client", "id_client", "code"),
        "civility": ("civilite", "titre"),
        "first_name": ("prenom", "first_name"),
        "last_name": ("nom", "nom_client", "last_name"),
        "company": ("raison_sociale", "societe", "entreprise", "denomination"),
        "email": ("email", "e_mail", "mail", "courriel", "adresse_email", "adresse_e_mail", "adresse_mail"),
        "phone": ("telephone", "tel", "tel_fixe", "telephone_fixe", "phone"),
        "mobile": ("portable", "mobile", "tel_portable", "telephone_portable", "gsm"),
        "zip_code": ("code_postal", "cp", "cp_ville", "zip", "zip_code"),
        "city": ("ville", "commune", "localite", "city"),
        "country": ("pays", "code_pays", "country"),
        "segment": ("type_client", "categorie", "categorie_client", "famille", "segment", "type"),
        "accepts_email": (
            "accepte_emailing",
            "accepte_e_mailing",
            "optin",
            "opt_in",
            "opt_in_email",
            "accord_email",
            "newsletter",
        ),
        "email_opt_out": ("refus_emailing", "refus_e_mailing", "desabonne", "opt_out", "stop_email", "refus_mailing"),
        "active": ("actif", "statut", "etat"),
        "updated": ("date_modification", "modifie_le", "derniere_modification", "date_maj"),
    },
    "produits": {
        "code": ("code_article", "reference", "ref", "ref_article", "code_produit", "code"),
        "name": ("designation", "libelle", "nom", "nom_produit", "article", "produit"),
        "color": ("couleur", "type_vin", "type", "categorie", "famille"),
        "region": ("appellation", "aoc", "region", "origine"),
        "vintage": ("millesime", "annee", "vintage"),
        "volume": ("contenance", "volume", "format", "contenance_cl", "volume_cl"),
        "packaging": ("conditionnement", "colisage", "unite_de_vente", "unite"),
        "grapes": ("cepages", "cepage", "grapes"),
        "flavors": ("aromes", "notes_de_degustation", "notes_degustation", "degustation"),
        "alcohol": ("degre", "degre_alcool", "alcool", "tav", "titre_alcoometrique"),
        "body": ("corps", "structure"),
        "tannins": ("tanins", "tannins"),
        "list_price": ("prix_ht", "prix_vente_ht", "tarif_ht", "pv_ht", "prix_de_vente_ht", "tarif"),
        "cost_price": ("prix_revient", "prix_de_revient", "cout_revient", "cout", "pr_ht"),
        "active": ("actif", "statut", "en_vente"),
    },
    "ventes": {
        "order_ref": ("n_facture", "numero_facture", "facture", "no_facture", "numero_piece", "piece", "n_piece"),
        "line": ("n_ligne", "numero_ligne", "ligne", "no_ligne"),
        "customer_code": ("code_client", "n_client", "numero_client", "client"),
        "product_code": ("code_article", "reference", "ref", "ref_article", "code_produit"),
        "name": ("designation", "libelle", "article"),
        "date": ("date", "date_facture", "date_vente", "date_piece"),
        "quantity": ("quantite", "qte", "qte_vendue", "quantite_vendue", "nombre"),
        "price_unit": ("prix_unitaire_ht", "pu_ht", "prix_unitaire", "pu"),
        "price_total": ("montant_ht", "total_ht", "montant", "total_ligne_ht"),
        "cost_unit": ("prix_revient", "prix_de_revient", "cout_unitaire", "pr_unitaire"),
        "channel": ("canal", "canal_vente", "circuit", "circuit_de_vente", "origine"),
    },
    "stock": {
        "product_code": ("code_article", "reference", "ref", "ref_article", "code_produit"),
        "name": ("designation", "libelle", "article"),
        "warehouse": ("depot", "entrepot", "chai", "emplacement", "magasin", "lieu"),
        "quantity": ("quantite", "qte", "stock", "stock_physique", "quantite_en_stock"),
        "reserved": ("reserve", "qte_reservee", "quantite_reservee", "reservations"),
        "available": ("disponible", "stock_disponible", "qte_disponible"),
        "count_date": ("date_inventaire", "date_comptage", "inventaire_le", "date"),
    },
    "contacts": {
        "id": ("n_contact", "numero_contact", "id_contact", "id", "numero"),
        "customer_code": ("code_client", "n_client", "numero_client", "client"),
        "date": ("date", "date_contact", "date_action", "date_heure"),
        "channel": ("canal", "type", "type_contact", "moyen", "media"),
        "campaign": ("campagne", "operation", "action_commerciale"),
        "subject": ("objet", "sujet", "titre"),
        "status": ("statut", "etat", "resultat_statut"),
        "product_code": ("produit_propose", "article_propose", "produit_suggere", "code_article"),
        "response": ("reponse", "resultat", "commentaire", "retour"),
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "clients": ("code",),
    "produits": ("code", "name"),
    "ventes": ("order_ref", "customer_code", "product_code", "date", "quantity"),
    "stock": ("product_code", "quantity"),
    "contacts": ("customer_code", "date"),
}
"""Fields without which a file of the kind cannot be read (its header must name them)."""


@functools.cache
def header_map(kind: str) -> dict[str, str]:
    """``normalised header -> field`` of ``kind`` (the first field listing an alias wins; computed once:
    extend ``ALIASES`` at import time, before the first file is read)."""
    mapping: dict[str, str] = {}
    for field, aliases in ALIASES[kind].items():
        for alias in aliases:
            mapping.setdefault(normalise_header(alias), field)
    return mapping


def fields_of(kind: str, columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """``(field -> column, unknown columns)`` for a file's normalised header: the first column that
    names a field is the one read."""
    mapping = header_map(kind)
    found: dict[str, str] = {}
    unknown = []
    for column in columns:
        field = mapping.get(column)
        if field is None:
            unknown.append(column)
        else:
            found.setdefault(field, column)
    return found, unknown


def kind_of(file_name: str, aliases: Mapping[str, str] = KIND_ALIASES) -> str | None:
    """The kind of an export from the first word of its file name, ``None`` when it names none."""
    stem = normalise_header(file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    first = stem.split("_", 1)[0]
    return aliases.get(first)
