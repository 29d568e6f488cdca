"""lib.text: folding, clean text, mojibake repair, name keys and title normalisation.

The mojibake repair is also run over the recorded Montréal and Eventbrite payloads in ``../shared/events``
(read at run time): correct text must come back untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ingestion_platform.lib.text import (
    STOP_WORDS,
    clean_text,
    collapse_spaces,
    fold,
    name_key,
    normalise_title,
    repair_mojibake,
    strip_accents,
)
from ingestion_platform_tests.conftest import require_shared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cœur", "coeur"),
        ("Œuvre", "Oeuvre"),
        ("CŒUR DE LION", "COEUR DE LION"),
        ("ex æquo", "ex aequo"),
        ("Æsop", "Aesop"),
        ("Straße", "Strasse"),
        ("Étoile Lefèvre à Noël", "Etoile Lefevre a Noel"),
        ("Ærø Łódź Đakovo Þór", "Aero Lodz Dakovo Thor"),
        ("ﬁnale", "finale"),  # compatibility ligature: NFKD already splits it
        ("Москва 北京 🎉", "Москва 北京 🎉"),  # other scripts and symbols: left alone
        ("l’été – “oui”", "l’ete – “oui”"),  # punctuation is not folded
        ("plain ASCII, 42!", "plain ASCII, 42!"),
        ("", ""),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_strip_accents_is_fold() -> None:
    assert strip_accents is fold
    assert strip_accents("Étoile") == "Etoile"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("D.  Thomain", "D. THOMAIN"),
        (" d. thomain ", "D. THOMAIN"),
        ("Cœur de Lion", "COEUR DE LION"),
        ("CŒUR DE LION", "COEUR DE LION"),
        ("Æsir", "AESIR"),
        ("Weiß", "WEISS"),
        ("T. ROSÉN", "T. ROSEN"),
        ("S.J.'s Caviar", "S.J.'S CAVIAR"),  # apostrophes and dots kept, as the PMU's idCheval has them
        ("  ", None),
        ("", None),
        (None, None),
    ],
)
def test_name_key(text: str | None, expected: str | None) -> None:
    assert name_key(text) == expected


def test_collapse_spaces() -> None:
    assert collapse_spaces("  a \t b\n\nc  ") == "a b c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Full   Moon\tHikes  ", "Full Moon Hikes"),
        ("line one \r\n  line  two\rthree", "line one\nline two\nthree"),  # line breaks kept, unified
        ("Montre\u0301al", "Montréal"),  # NFC
        ("a\n\nb", "a\n\nb"),
        (42, "42"),
        (" \n\t ", None),
        ("", None),
        (float("nan"), None),
        (None, None),
    ],
)
def test_clean_text(value: Any, expected: str | None) -> None:
    assert clean_text(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MontrÃ©al", "Montréal"),
        ("Ã‰cole de cirque", "École de cirque"),
        ("Visitez l'exposition Ã\xa0MontrÃ©al", "Visitez l'exposition àMontréal"),  # "à" = Ã + NO-BREAK SPACE
        ("SÃ£o Paulo â€“ Porto", "São Paulo – Porto"),
        ("â€œDubaiâ€\x9d", "“Dubai”"),
    ],
)
def test_repair_mojibake(text: str, expected: str) -> None:
    assert repair_mojibake(text) == (expected, True)


@pytest.mark.parametrize(
    "text",
    [
        "Montréal",
        "Dans l’œil du lièvre",
        "Côte-des-Neiges–Notre-Dame-de-Grâce",
        "« Voyage au cœur » — à l'extérieur, Fête et marché",
        "Descubra como conectar sua empresa ao mundo no evento, “Dubai – Sua Porta de Entrada”",
        "Straße, Æsop, ex æquo, naïve, Noël, Ça va ?",
        "SÃO PAULO, IRMÃ E MÃE, CORAÇÃO",  # capital Ã that is not mojibake of anything
        "ÉTÉ À MONTRÉAL, ÇA VA",
        "Tickets &amp; info",  # HTML entities are not this function's business
        "Mercier\ufffd\ufffdHochelaga",  # U+FFFD runs are repaired elsewhere, never added or removed here
        "plain ASCII",
        "",
    ],
)
def test_repair_mojibake_leaves_correct_text_alone(text: str) -> None:
    assert repair_mojibake(text) == (text, False)


def test_repair_mojibake_of_nothing() -> None:
    assert repair_mojibake(None) == (None, False)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_recorded_montreal_and_eventbrite_text_is_not_changed_by_the_repair() -> None:
    from ingestion_platform.defs.events.parse import decode_payload

    texts: list[str] = []
    for folder in ("events/montreal", "events/eventbrite"):
        for path in sorted(require_shared(folder).glob("*.json")):
            texts.extend(_strings(decode_payload(path.read_bytes(), path.name)))
    french = [t for t in texts if any(c in t for c in "éèàçôâêîû")]
    assert len(texts) > 5000 and len(french) > 500  # the check below is not vacuous
    changed = {t: repair_mojibake(t)[0] for t in texts if repair_mojibake(t)[1]}
    assert changed == {}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Voyage au cœur", "Voyage au coeur"),
        ("VOYAGE AU CŒUR", "voyage au coeur"),
        ("Les Fêtes de l'Œuvre", "les fetes de l'oeuvre"),
        ("Ex æquo", "Ex aequo"),
        ("Weißbier Fest", "Weissbier Fest"),
        ("L'Été à  Montréal – Jazz & Blues!", "l'ete a montreal: jazz and blues"),
    ],
)
def test_normalise_title_makes_spellings_equal(a: str, b: str) -> None:
    assert normalise_title(a) == normalise_title(b) != ""


def test_normalise_title_values_and_stop_words() -> None:
    assert normalise_title("Voyage au cœur") == "voyage coeur"
    assert normalise_title("L'Été à  Montréal – Jazz & Blues!") == "ete montreal jazz blues"
    assert normalise_title("The Who") == "who"
    assert normalise_title("Le Un") == "le un"  # only stop words: kept
    assert normalise_title(None) == normalise_title("") == ""
    assert normalise_title("The Festival of Lights", stop_words=()) == "the festival of lights"
    assert normalise_title("The Festival of Lights", stop_words={"festival"}) == "the of lights"
    assert {"le", "la", "the", "of", "d", "l"} <= STOP_WORDS
