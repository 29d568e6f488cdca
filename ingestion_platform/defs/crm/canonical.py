"""The canonical CRM vocabulary shared by every CRM source (Odoo, iSaVigne, and the next one).

Pure functions, no I/O: a source maps its records to canonical rows with them, so the same product
gets the same ``product_key`` and the same quantity the same 75 cl equivalent whatever the source.

* :func:`product_key` ``TYPE-CODE-VARIANT``: ``"Riesling 2020 75cl"`` -> ``RIESLING-2020-75CL``. TYPE is
  the product's name without its vintage, volume and packaging words (words joined with ``_``), CODE
  the vintage (``NV`` without one), VARIANT the packaging (``75CL``, ``6X75CL``, ``BIB300CL``, ``UNKNOWN``
  when the volume cannot be known). A key, once assigned to a source record, is kept for ever by
  ``crm.product_key_map`` (see :mod:`ingestion_platform.defs.crm.keys`): renaming never re-keys.
* :func:`parse_volume_cl` reads a volume from text (``75cl``, ``1,5 L``, ``750 ml``, ``Magnum``,
  ``Jéroboam``, ``BIB 3L``): ``None`` when the text does not say. Never guessed: a product without a
  known volume gets no 75 cl equivalent and is listed by the ``volume_known`` warning check.
* :func:`bottles_75cl_eq` quantity x units per pack x volume / 75 cl.
* :func:`category`, :func:`price_segment` (thresholds from ``CRM_PRICE_SEGMENTS``),
  :func:`normalise_email`, :func:`normalise_phone` (E.164 through ``phonenumbers``), :func:`customer_key`.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable
from typing import Any

import phonenumbers

from ingestion_platform.lib.settings import run_setting
from ingestion_platform.lib.text import fold

PRICE_SEGMENTS = run_setting(
    "CRM_PRICE_SEGMENTS",
    "entry:10,standard:20,premium:40,prestige",
    "CRM price bands by list price: name:upper bound (exclusive), comma-separated, the last band unbounded",
)
CATEGORIES = ("red", "white", "rosé", "sparkling", "sweet", "spirits", "other")
STANDARD_CL = decimal.Decimal(75)

# Named bottle sizes (Champagne names; Bordeaux uses other sizes for the same names above 300 cl).
_NAMED_SIZES = {
    "piccolo": 20,
    "quart": 20,
    "fillette": 37.5,
    "demi": 37.5,
    "demie": 37.5,
    "half": 37.5,
    "clavelin": 62,
    "magnum": 150,
    "jeroboam": 300,
    "double magnum": 300,
    "rehoboam": 450,
    "mathusalem": 600,
    "methuselah": 600,
    "imperiale": 600,
    "salmanazar": 900,
    "balthazar": 1200,
    "nabuchodonosor": 1500,
}
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_VOLUME = re.compile(_NUMBER + r"\s*(cl|ml|l|lt|ltr|litres?|liters?)\b", re.IGNORECASE)
_BIB = re.compile(r"\b(?:bib|bag[\s-]*in[\s-]*box|cubi|fontaine)\b", re.IGNORECASE)
_PACK = (
    re.compile(r"\b(?:carton|caisse|case|coffret|lot|pack|box|cs)\s*(?:de|of|x)?\s*(\d{1,2})\b", re.IGNORECASE),
    re.compile(r"\b(\d{1,2})\s*[x×]\s*\d", re.IGNORECASE),  # 6x75cl
    re.compile(r"(?:^|\s)[x×]\s*(\d{1,2})\b", re.IGNORECASE),  # "Riesling 75cl x6"
)
_VINTAGE = re.compile(r"(?<!\d)(19[5-9]\d|20[0-9]\d)(?!\d)")
_NAMED = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _NAMED_SIZES), key=len, reverse=True)) + r")\b")
_NOISE = re.compile(
    r"\b(?:bouteilles?|btl|bottles?|carton|caisse|case|coffret|lot|pack|box|cs|de|of|x|nv|sa)\b", re.IGNORECASE
)


def _folded(text: str) -> str:
    return fold(text).lower()


def parse_volume_cl(*texts: Any) -> float | None:
    """The volume in centilitres the first text that states one gives (``None``: no text does)."""
    for text in texts:
        if text is None or text is False:
            continue
        if isinstance(text, (int, float, decimal.Decimal)) and not isinstance(text, bool):
            if text > 0:
                return float(text)  # a configured volume field, already in cl
            continue
        folded = _folded(str(text))
        match = _VOLUME.search(folded)
        if match:
            number = float(match.group(1).replace(",", "."))
            unit = match.group(2).lower()
            cl = number / 10 if unit == "ml" else number if unit == "cl" else number * 100
            if cl > 0:
                return round(cl, 2)
        named = _NAMED.search(folded)
        if named:
            return float(_NAMED_SIZES[named.group(1)])
    return None


def is_bag_in_box(*texts: Any) -> bool:
    return any(text and _BIB.search(_folded(str(text))) for text in texts)


def pack_units(*texts: Any) -> int:
    """Bottles per selling unit: ``Carton de 6`` / ``6x75cl`` / ``x12`` -> 6 / 6 / 12; otherwise 1."""
    for text in texts:
        if not text:
            continue
        folded = _folded(str(text))
        for pattern in _PACK:
            match = pattern.search(folded)
            if match and 1 < int(match.group(1)) <= 24:
                return int(match.group(1))
    return 1


def bottles_75cl_eq(quantity: Any, volume_cl: Any, units_per_pack: int = 1) -> decimal.Decimal | None:
    """``quantity`` selling units in 75 cl bottles; ``None`` when the quantity or the volume is unknown."""
    if quantity is None or volume_cl is None:
        return None
    total = _as_decimal(quantity) * units_per_pack * _as_decimal(volume_cl) / STANDARD_CL
    return total.quantize(_THOUSANDTHS)


_THOUSANDTHS, _HUNDREDTHS = decimal.Decimal("0.001"), decimal.Decimal("0.01")


def _as_decimal(value: Any) -> decimal.Decimal:
    return value if type(value) is decimal.Decimal else decimal.Decimal(str(value))


def vintage(*texts: Any) -> int | None:
    for text in texts:
        if isinstance(text, int) and not isinstance(text, bool):
            return text if 1950 <= text <= 2099 else None
        if text:
            match = _VINTAGE.search(str(text))
            if match:
                return int(match.group(1))
    return None


def _slug(text: str) -> str:
    words = re.findall(r"[A-Z0-9]+", fold(text).upper())
    return "_".join(words)


def _volume_code(volume_cl: float) -> str:
    value = decimal.Decimal(str(volume_cl)).normalize()
    return f"{value:f}CL"


def product_key(
    name: str, vintage_year: int | None, volume_cl: float | None, units: int = 1, *, bib: bool = False
) -> str:
    """``TYPE-CODE-VARIANT`` of a product (see the module docstring). Deterministic, ASCII, upper case."""
    base = _folded(name)
    base = _VOLUME.sub(" ", base)
    base = _NAMED.sub(" ", base)
    base = _VINTAGE.sub(" ", base)
    base = _BIB.sub(" ", base)
    base = re.sub(r"\b\d{1,2}\s*[x×]\b|\b[x×]\s*\d{1,2}\b", " ", base)
    base = _NOISE.sub(" ", base)
    kind = _slug(base) or "PRODUCT"
    code = str(vintage_year) if vintage_year else "NV"
    if volume_cl is None:
        variant = "UNKNOWN"
    elif bib:
        variant = f"BIB{_volume_code(volume_cl)}"
    elif units > 1:
        variant = f"{units}X{_volume_code(volume_cl)}"
    else:
        variant = _volume_code(volume_cl)
    return f"{kind}-{code}-{variant}"


# -- categories and price bands ----------------------------------------------------------------------
_CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spirits", ("spiritueux", "eau de vie", "eau-de-vie", "marc", "fine", "cognac", "armagnac", "whisky",
                 "whiskey", "rhum", "rum", "gin", "vodka", "liqueur", "calvados", "spirit", "spirits")),
    ("sparkling", ("cremant", "champagne", "mousseux", "petillant", "sparkling", "prosecco", "cava", "petnat",
                   "pet nat", "brut", "effervescent")),
    ("sweet", ("moelleux", "liquoreux", "doux", "sweet", "vendanges tardives", "selection de grains nobles",
               "sgn", "vt", "late harvest", "vin de paille", "vin doux naturel", "vdn", "sauternes", "dessert")),
    ("rosé", ("rose", "rosado", "rosato", "gris")),
    ("white", ("blanc", "white", "bianco", "chardonnay", "riesling", "sauvignon", "gewurztraminer", "pinot gris",
               "sylvaner", "muscat", "chenin", "viognier", "alsace blanc", "savagnin")),
    ("red", ("rouge", "red", "rosso", "tinto", "pinot noir", "merlot", "syrah", "cabernet", "grenache", "gamay",
             "malbec", "mourvedre", "carignan", "tempranillo")),
)  # fmt: skip
_CATEGORY_PATTERNS = [
    (name, re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")(?:e?s)?\b"))  # plural: "vins blancs"
    for name, words in _CATEGORY_WORDS
]


def category(*labels: Any) -> str:
    """The canonical category of the first label that names one (colour words before grape names)."""
    for label in labels:
        if not label:
            continue
        folded = _folded(str(label))
        if folded in CATEGORIES or folded == "rose":
            return "rosé" if folded == "rose" else folded
        for name, pattern in _CATEGORY_PATTERNS:
            if pattern.search(folded):
                return name
    return "other"


def price_bands(spec: str | None = None) -> list[tuple[str, decimal.Decimal | None]]:
    """``CRM_PRICE_SEGMENTS`` parsed: ``[(name, upper bound or None)]``; a clear error when malformed."""
    text = spec if spec is not None else PRICE_SEGMENTS.read()
    bands: list[tuple[str, decimal.Decimal | None]] = []
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    for i, part in enumerate(parts):
        name, _, bound = part.partition(":")
        if not name.strip():
            raise ValueError(f"CRM_PRICE_SEGMENTS: band {i + 1} ({part!r}) has no name")
        if not bound.strip():
            if i != len(parts) - 1:
                raise ValueError(f"CRM_PRICE_SEGMENTS: only the last band may be unbounded, not {part!r}")
            bands.append((name.strip(), None))
            continue
        try:
            upper = decimal.Decimal(bound.strip().replace(",", "."))
        except decimal.InvalidOperation:
            raise ValueError(f"CRM_PRICE_SEGMENTS: bound of {name.strip()!r} is not a number: {bound!r}") from None
        if bands and bands[-1][1] is not None and upper <= bands[-1][1]:
            raise ValueError(f"CRM_PRICE_SEGMENTS: bounds must increase ({part!r})")
        bands.append((name.strip(), upper))
    if not bands or bands[-1][1] is not None:
        raise ValueError("CRM_PRICE_SEGMENTS: the last band must be unbounded (e.g. ',prestige')")
    return bands


def price_segment(price: Any, bands: Iterable[tuple[str, decimal.Decimal | None]] | None = None) -> str | None:
    if price is None:
        return None
    value = decimal.Decimal(str(price))
    for name, upper in bands if bands is not None else price_bands():
        if upper is None or value < upper:
            return name
    return None


# -- people -----------------------------------------------------------------------------------------
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def normalise_email(raw: Any) -> str | None:
    """Trimmed, lower case, ``mailto:`` and display name removed; ``None`` when blank (kept when malformed:
    the ``email_format`` check lists those)."""
    if raw is None or raw is False:
        return None
    text = str(raw).strip()
    match = re.search(r"<([^>]+)>", text)
    if match:
        text = match.group(1)
    text = re.sub(r"^mailto:", "", text, flags=re.IGNORECASE).strip().strip(".;,").lower()
    return text or None


def email_is_valid(email: str | None) -> bool:
    return email is not None and bool(_EMAIL.match(email))


_PHONE_SEPARATORS = re.compile(r"[ .\-]")
_FR_NATIONAL = re.compile(r"0[1-9][0-9]{8}")
_FR_INTERNATIONAL = re.compile(r"\+33[1-9][0-9]{8}")


def normalise_phone(raw: Any, country: str | None = "FR") -> str | None:
    """E.164 (``+33612345678``) when ``phonenumbers`` reads a possible number (``country`` for national
    forms such as ``06 12 34 56 78``); ``None`` when blank or unreadable."""
    if raw is None or raw is False:
        return None
    text = str(raw).strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    region = (country or "FR").upper()
    if region == "FR":  # the usual French forms, as phonenumbers reads them (a test compares the two)
        plain = _PHONE_SEPARATORS.sub("", text)
        if _FR_NATIONAL.fullmatch(plain):
            return "+33" + plain[1:]
        if _FR_INTERNATIONAL.fullmatch(plain):
            return plain
    return phone_by_library(text, region)


def phone_by_library(text: str, region: str) -> str | None:
    """E.164 of ``text`` as ``phonenumbers`` reads it (``None``: not a possible number)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def customer_key(source: str, source_id: Any) -> str:
    """``odoo-456``, ``isavigne-C123``: stable, unique across sources."""
    text = str(source_id).strip()
    if not text:
        raise ValueError(f"customer_key: empty id for source {source!r}")
    return f"{source}-{text}"


def margin_pct(price_total: Any, cost_total: Any) -> decimal.Decimal | None:
    """Margin over the sale price, in percent (``None`` without a price or a cost)."""
    if price_total is None or cost_total is None or not price_total:
        return None
    price = _as_decimal(price_total)
    cost = _as_decimal(cost_total)
    return ((price - cost) / price * 100).quantize(_HUNDREDTHS)
