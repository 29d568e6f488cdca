"""The events tables (namespace ``events``): one unified row per event or occurrence, whatever the source.

Units and conventions, for every source:
    * instants (``starts_at``, ``ends_at``, ``source_updated_at``) are UTC ``timestamptz``;
    * ``timezone`` is the event's own IANA zone when the source says it (Eventbrite ``start.timezone``, an ICS
      TZID / VTIMEZONE, Montréal's America/Toronto); ``start_local`` is the wall-clock start in that zone
      (naive) and ``start_date`` its date: the day partitions and duplicate blocking use;
    * all-day events (Montréal dates, ICS ``VALUE=DATE``): ``starts_at`` = local midnight of the first day,
      ``ends_at`` = local midnight after the last day (exclusive), ``end_date`` = the last day covered;
    * money is in major units of ``currency`` (``NUMERIC(12, 2)``: 25.00, not 2500 cents);
    * ``status`` is one of ``scheduled``, ``started``, ``completed``, ``cancelled``, ``draft`` or ``unknown``
      (see ``parse.EVENTBRITE_STATUS``); the source's own value is kept in ``extra["status_raw"]``.

The column set is ``ics.EVENT_COLUMNS`` plus ``dedupe_key`` (computed for every source by
``parse.dedupe_key``) and the lineage columns, so all three sources load into one table with the shared upsert.
"""

from __future__ import annotations

import sqlalchemy as sa

from ingestion_platform.lib.warehouse import lineage_columns

METADATA = sa.MetaData(schema="events")

MONEY = sa.Numeric(12, 2)
UTC_INSTANT = sa.DateTime(timezone=True)


def _key(prefix: str = "", comment: str = "") -> list[sa.Column]:
    return [
        sa.Column(
            f"source{prefix}",
            sa.String(200),
            primary_key=True,
            comment=comment or "eventbrite, montreal or ics:<feed name>",
        ),
        sa.Column(
            f"source_id{prefix}",
            sa.String(1000),
            primary_key=True,
            comment="Stable id inside the source: Eventbrite event id; Montréal url_fiche numeric id; "
            "ICS <feed>:<UID>:<recurrence id>",
        ),
    ]


event = sa.Table(
    "event",
    METADATA,
    *_key(),
    sa.Column("title", sa.Text, comment="Event name (Eventbrite name.text, Montréal titre, ICS SUMMARY)"),
    sa.Column("summary", sa.Text, comment="Short summary when the source has one (Eventbrite summary)"),
    sa.Column("description", sa.Text, comment="Plain-text description (Eventbrite description.text)"),
    sa.Column("url", sa.Text, comment="Public page of the event (Montréal url_fiche)"),
    sa.Column(
        "status",
        sa.String(20),
        nullable=False,
        comment="scheduled | started | completed | cancelled | draft | unknown; source value in extra.status_raw",
    ),
    sa.Column("starts_at", UTC_INSTANT, comment="Start, UTC; all-day: local midnight of the first day"),
    sa.Column("ends_at", UTC_INSTANT, comment="End, UTC; all-day: local midnight after the last day"),
    sa.Column("timezone", sa.String(64), comment="The event's own IANA time zone, NULL when floating/unknown"),
    sa.Column("start_local", sa.DateTime(timezone=False), comment="Wall-clock start in the event's zone (naive)"),
    sa.Column("start_date", sa.Date, nullable=False, index=True, comment="Local start date: the partition day"),
    sa.Column("end_date", sa.Date, comment="Local date of the end; all-day: the last day covered (inclusive)"),
    sa.Column("all_day", sa.Boolean, nullable=False, comment="Date-only event (no time of day)"),
    sa.Column("is_online", sa.Boolean, comment="Online event (Eventbrite online_event, Montréal 'En ligne')"),
    sa.Column("venue_name", sa.Text, comment="Venue / place name (Eventbrite venue.name, ICS LOCATION)"),
    sa.Column("address", sa.Text, comment="Street address on one line"),
    sa.Column("city", sa.String(200), comment="City (Montréal rows: Montréal)"),
    sa.Column("region", sa.String(200), comment="State / province / borough-level region code or name"),
    sa.Column("postal_code", sa.String(32), comment="Postal / ZIP code as written"),
    sa.Column("country", sa.String(64), comment="ISO 3166-1 alpha-2 when the source gives it"),
    sa.Column("latitude", sa.Float, comment="WGS84 degrees, -90..90 (out-of-range values are rejected)"),
    sa.Column("longitude", sa.Float, comment="WGS84 degrees, -180..180"),
    sa.Column("organizer", sa.Text, comment="Organizer name"),
    sa.Column("category", sa.Text, comment="Category name (Eventbrite category, Montréal type_evenement)"),
    sa.Column("is_free", sa.Boolean, comment="Free entry; NULL when the source does not say"),
    sa.Column("currency", sa.String(3), comment="ISO 4217 currency of the prices"),
    sa.Column("min_price", MONEY, comment="Cheapest ticket, major units of currency"),
    sa.Column("max_price", MONEY, comment="Dearest ticket, major units of currency"),
    sa.Column("series_id", sa.Text, comment="Series the event belongs to (Eventbrite series_id, ICS UID)"),
    sa.Column("recurrence_id", sa.Text, comment="Occurrence id within the series (ICS RECURRENCE-ID or start)"),
    sa.Column("source_updated_at", UTC_INSTANT, comment="Last change at the source (Eventbrite changed, ICS DTSTAMP)"),
    sa.Column("extra", sa.JSON, comment="Source-specific fields kept for reference (ids, raw status, flags)"),
    sa.Column(
        "dedupe_key",
        sa.Text,
        index=True,
        comment="start_date|normalised title|normalised venue: exact-match key for cross-source duplicates",
    ),
    *lineage_columns(),
    comment="One row per event (per occurrence for recurring ICS events) and source.",
)

event_duplicate = sa.Table(
    "event_duplicate",
    METADATA,
    *_key("_a", "Source of the first row of the pair (pair ordered so that a < b)"),
    *_key("_b", "Source of the second row of the pair"),
    sa.Column("start_date", sa.Date, nullable=False, index=True, comment="Shared local start date of both rows"),
    sa.Column("rule", sa.String(64), nullable=False, comment="Matching rule (see dedupe.RULES)"),
    sa.Column("score", sa.Float, nullable=False, comment="Combined score 0..100"),
    sa.Column("title_score", sa.Float, comment="rapidfuzz token_set_ratio of the normalised titles, 0..100"),
    sa.Column("venue_score", sa.Float, comment="Venue similarity 0..100 (text, distance or both online)"),
    sa.Column("distance_m", sa.Float, comment="Great-circle distance between the two venues, metres"),
    sa.Column("merged", sa.Boolean, nullable=False, comment="False when merging would join two rows of one source"),
    sa.Column("cluster_id", sa.String(32), comment="Cluster of row a (equal to b's when merged)"),
    *lineage_columns(),
    comment="Cross-source candidate duplicate pairs; never two rows of the same source.",
)

event_cluster = sa.Table(
    "event_cluster",
    METADATA,
    *_key(),
    sa.Column("start_date", sa.Date, nullable=False, index=True, comment="Local start date of the row"),
    sa.Column("cluster_id", sa.String(32), nullable=False, index=True, comment="One id per real-world event"),
    sa.Column("canonical_source", sa.String(200), nullable=False, comment="Source of the cluster's canonical row"),
    sa.Column("canonical_source_id", sa.String(1000), nullable=False, comment="source_id of the canonical row"),
    sa.Column("is_canonical", sa.Boolean, nullable=False, comment="This row is the cluster's canonical row"),
    sa.Column("cluster_size", sa.Integer, nullable=False, comment="Rows in the cluster (1 = no duplicate)"),
    *lineage_columns(),
    comment="Cluster membership of every event row (dedupe.clusters).",
)

event_absence = sa.Table(
    "event_absence",
    METADATA,
    *_key(),
    sa.Column("starts_at", UTC_INSTANT, comment="Start of the event when it was last seen, UTC"),
    sa.Column("last_seen_at", UTC_INSTANT, comment="Last fetch that returned the event, UTC"),
    sa.Column("first_missing_at", UTC_INSTANT, nullable=False, comment="First fetch that no longer returned it"),
    sa.Column("missed_fetches", sa.Integer, nullable=False, default=1, comment="Consecutive fetches without it"),
    sa.Column(
        "marked_cancelled_at",
        UTC_INSTANT,
        comment="When the grace period ran out and the event row was set to cancelled; NULL while in grace",
    ),
    *lineage_columns(),
    comment="Upcoming events that vanished from the source (Eventbrite): cancelled after a grace period.",
)

TABLES: tuple[sa.Table, ...] = (event, event_duplicate, event_cluster, event_absence)
EVENT_TABLE_COLUMNS: tuple[str, ...] = tuple(c.name for c in event.columns if not c.name.startswith("_"))
