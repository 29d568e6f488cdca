"""Cross-source duplicate events: candidate pairs (rapidfuzz) and clusters with one canonical row each.

Pure functions over event rows (dicts with at least ``source``, ``source_id``, ``title``, ``start_date``,
``venue_name``, ``address``, ``latitude``, ``longitude``, ``is_online``, ``starts_at``).

Rules (``find_duplicates``), always for two rows of *different* sources (``ics:a`` and ``ics:b`` are different
sources; two rows of one source are never paired, see NOTES: Montréal repeats title + date + place for
distinct sessions) with the same local ``start_date``:

* titles are compared after ``lib.text.normalise_title`` (case, accents and ligatures, punctuation, stop words)
  with rapidfuzz ``token_set_ratio``; a pair needs ``title_score >= TITLE_THRESHOLD``. A title that only matches
  because it is a small subset of a much longer one (``token_sort_ratio < SUBSET_GUARD``) gets the lower sort
  ratio instead;
* the venue must agree, first rule that holds wins:
    ``title+date+venue``   normalised venue name/address ``token_set_ratio >= VENUE_THRESHOLD``;
    ``title+date+geo``     both have coordinates within ``NEAR_METRES``;
    ``title+date+online``  both are online events;
* ``title_exact+date`` when the venue cannot be compared (one side has no venue text, coordinates or online
  flag in common) but the normalised titles are identical and have at least two words.
  When both sides carry comparable venue evidence that disagrees, there is no pair.

``score`` = 0.6 × title + 0.4 × venue (``title_exact+date``: 0.8 × title). Rows are blocked by ``start_date``
and, inside a day, compared source against source with ``rapidfuzz.process.cdist`` (C speed), so 50k rows
take well under a second when spread over days.

``clusters`` joins pairs with union-find, best score first, and refuses a union that would put two rows of the
same source in one cluster (a fuzzy chain through a third source must not merge Montréal's repeated sessions).
The canonical row of a cluster is the one with the best source (``SOURCE_PRIORITY``), then the earliest
``starts_at``, then the smallest ``(source, source_id)``: deterministic whatever the input order.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from ingestion_platform.lib.text import normalise_title

TITLE_THRESHOLD = 88.0
SUBSET_GUARD = 60.0
VENUE_THRESHOLD = 75.0
NEAR_METRES = 250.0
SOURCE_PRIORITY: tuple[str, ...] = ("eventbrite", "ics", "montreal")
"""Canonical row preference: Eventbrite has UTC times, venue details and prices; feeds next; Montréal last."""
RULES: tuple[str, ...] = ("title+date+venue", "title+date+geo", "title+date+online", "title_exact+date")

Key = tuple[str, str]


def row_key(row: Mapping[str, Any]) -> Key:
    return str(row["source"]), str(row["source_id"])


def find_duplicates(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cross-source candidate pairs, ordered by (start_date, a, b); each pair has ``a < b``.

    A pair: ``source_a, source_id_a, source_b, source_id_b, start_date, rule, score, title_score,
    venue_score, distance_m`` (the columns of ``tables.event_duplicate`` without ``merged``/``cluster_id``)."""
    by_day: dict[Any, dict[str, list[_Candidate]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        day = row.get("start_date")
        if day is None:
            continue
        by_day[day][str(row["source"])].append(_Candidate(row))

    pairs: list[dict[str, Any]] = []
    for day, sources in by_day.items():
        names = sorted(sources)
        for i, left_name in enumerate(names):
            left = sources[left_name]
            for right_name in names[i + 1 :]:
                right = sources[right_name]
                pairs.extend(_compare(day, left, right))
    pairs.sort(key=lambda p: (p["start_date"], p["source_a"], p["source_id_a"], p["source_b"], p["source_id_b"]))
    return pairs


def clusters(pairs: Sequence[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Every row's cluster: ``{(source, source_id): {source, source_id, start_date, cluster_id,
    canonical_source, canonical_source_id, is_canonical, cluster_size}}`` (the ``tables.event_cluster`` row).

    Rows without a merged pair are clusters of one. ``cluster_id`` is a hash of the canonical key."""
    info: dict[Key, Mapping[str, Any]] = {row_key(row): row for row in rows}
    parent: dict[Key, Key] = {key: key for key in info}
    members_sources: dict[Key, set[str]] = {key: {key[0]} for key in info}

    def find(key: Key) -> Key:
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    ordered = sorted(
        pairs,
        key=lambda p: (-float(p["score"]), p["source_a"], p["source_id_a"], p["source_b"], p["source_id_b"]),
    )
    for pair in ordered:
        a, b = (pair["source_a"], pair["source_id_a"]), (pair["source_b"], pair["source_id_b"])
        if a not in parent or b not in parent:
            continue
        root_a, root_b = find(a), find(b)
        if root_a == root_b or members_sources[root_a] & members_sources[root_b]:
            continue  # same cluster already, or the union would merge two rows of one source
        if root_b < root_a:
            root_a, root_b = root_b, root_a
        parent[root_b] = root_a
        members_sources[root_a] |= members_sources.pop(root_b)

    groups: dict[Key, list[Key]] = defaultdict(list)
    for key in info:
        groups[find(key)].append(key)

    result: dict[Key, dict[str, Any]] = {}
    for members in groups.values():
        canonical = min(members, key=lambda key: _canonical_rank(key, info[key]))
        cluster_id = hashlib.sha1(f"{canonical[0]}\x1f{canonical[1]}".encode()).hexdigest()[:16]
        for key in members:
            result[key] = {
                "source": key[0],
                "source_id": key[1],
                "start_date": info[key].get("start_date"),
                "cluster_id": cluster_id,
                "canonical_source": canonical[0],
                "canonical_source_id": canonical[1],
                "is_canonical": key == canonical,
                "cluster_size": len(members),
            }
    return result


def duplicate_rows(pairs: Iterable[Mapping[str, Any]], assignment: Mapping[Key, Mapping[str, Any]]) -> list[dict]:
    """``tables.event_duplicate`` rows: the pairs with ``merged`` and the ``cluster_id`` of row a."""
    out = []
    for pair in pairs:
        a = assignment.get((pair["source_a"], pair["source_id_a"]))
        b = assignment.get((pair["source_b"], pair["source_id_b"]))
        merged = bool(a and b and a["cluster_id"] == b["cluster_id"])
        out.append({**pair, "merged": merged, "cluster_id": a["cluster_id"] if a else None})
    return out


# --------------------------------------------------------------------------------------------------------------


class _Candidate:
    __slots__ = ("key", "lat", "lon", "online", "row", "title", "venues")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row
        self.key = row_key(row)
        self.title = normalise_title(row.get("title"))
        self.venues = [v for v in {normalise_title(row.get("venue_name")), normalise_title(row.get("address"))} if v]
        self.venues.sort()
        lat, lon = row.get("latitude"), row.get("longitude")
        self.lat = float(lat) if lat is not None and lon is not None else None
        self.lon = float(lon) if lat is not None and lon is not None else None
        self.online = row.get("is_online")


def _compare(day: Any, left: list[_Candidate], right: list[_Candidate]) -> list[dict[str, Any]]:
    scores = process.cdist(
        [c.title for c in left],
        [c.title for c in right],
        scorer=fuzz.token_set_ratio,
        score_cutoff=TITLE_THRESHOLD,
        dtype=np.float32,
        workers=-1 if len(left) * len(right) > 10_000 else 1,
    )
    found = []
    for i, j in zip(*np.nonzero(scores), strict=True):
        a, b = left[int(i)], right[int(j)]
        if not a.title or not b.title:
            continue
        title_score = float(scores[i, j])
        sort_score = fuzz.token_sort_ratio(a.title, b.title)
        if sort_score < SUBSET_GUARD:
            title_score = sort_score
        if title_score < TITLE_THRESHOLD:
            continue
        pair = _venue_rule(a, b, title_score)
        if pair is None:
            continue
        rule, venue_score, distance = pair
        score = 0.8 * title_score if venue_score is None else 0.6 * title_score + 0.4 * venue_score
        first, second = (a, b) if a.key < b.key else (b, a)
        found.append(
            {
                "source_a": first.key[0],
                "source_id_a": first.key[1],
                "source_b": second.key[0],
                "source_id_b": second.key[1],
                "start_date": day,
                "rule": rule,
                "score": round(score, 1),
                "title_score": round(title_score, 1),
                "venue_score": None if venue_score is None else round(venue_score, 1),
                "distance_m": None if distance is None else round(distance, 1),
            }
        )
    return found


def _venue_rule(a: _Candidate, b: _Candidate, title_score: float) -> tuple[str, float | None, float | None] | None:
    """(rule, venue score, distance) when the venues agree or cannot be compared; None when they disagree."""
    comparable = False
    distance = None
    if a.venues and b.venues:
        comparable = True
        text_score = max(fuzz.token_set_ratio(x, y) for x in a.venues for y in b.venues)
        if text_score >= VENUE_THRESHOLD:
            return "title+date+venue", float(text_score), _distance(a, b)
    if a.lat is not None and b.lat is not None:
        comparable = True
        distance = _distance(a, b)
        if distance is not None and distance <= NEAR_METRES:
            geo_score = 100.0 - 20.0 * distance / NEAR_METRES  # 100 at the same point, 80 at NEAR_METRES
            return "title+date+geo", geo_score, distance
    if a.online is True and b.online is True:
        return "title+date+online", 100.0, distance
    if comparable:
        return None
    if a.title == b.title and len(a.title.split()) >= 2 and title_score >= 100.0:
        return "title_exact+date", None, None
    return None


def _distance(a: _Candidate, b: _Candidate) -> float | None:
    """Great-circle distance in metres (haversine)."""
    if a.lat is None or b.lat is None:
        return None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def _canonical_rank(key: Key, row: Mapping[str, Any]) -> tuple:
    family = key[0].split(":", 1)[0]
    priority = SOURCE_PRIORITY.index(family) if family in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
    starts_at = row.get("starts_at")
    start = starts_at.timestamp() if starts_at is not None else math.inf
    return priority, start, key
