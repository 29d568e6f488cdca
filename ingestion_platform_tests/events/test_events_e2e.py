"""Events end to end: the three sources through local servers, on SQLite and PostgreSQL.

The servers answer like the real APIs (Eventbrite continuation paging with a Bearer token, CKAN
``datastore_search`` offset paging) from real payloads in ../shared/events, with faults on demand.
"""

import copy
import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.events import parse, tables
from ingestion_platform.defs.events.assets import duplicates, eventbrite, ics_feeds, montreal
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.defs.events.schedules import events_refresh_schedule, events_stats_after_refresh
from ingestion_platform.defs.events.stats import import_stats, import_stats_table
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, Warehouse, WarehouseResource
from ingestion_platform_tests import local_http
from ingestion_platform_tests.conftest import REPO_ROOT, cli_env, require_shared
from ingestion_platform_tests.run_metadata import checks_passed, per_partition, run_metadata

TOKEN = "secret-token-123"
TORONTO = ZoneInfo("America/Toronto")
RANGE = ("2026-06-01", "2026-08-31")  # where the recorded Montréal events are


# -- servers -----------------------------------------------------------------------------------------------
class Api:
    """A threaded local HTTP server; ``route(path, query, headers) -> (status, headers, body)``."""

    def __init__(self, route: Callable[[str, dict[str, str], Any], tuple[int, dict[str, str], bytes]]) -> None:
        self.route = route
        self.requests: list[str] = []
        self.faults: dict[str, list[str]] = {}
        lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with lock:
                    api.requests.append(self.path)
                    fault = None
                    for key, plan in api.faults.items():
                        if key in self.path and plan:
                            fault = plan.pop(0)
                            break
                if fault == "500":
                    status, headers, body = 500, {}, b"oops"
                elif fault == "429":
                    status, headers, body = 429, {"Retry-After": "0"}, b"slow down"
                elif fault == "403":
                    status, headers, body = 403, {}, b'{"error": "NOT_AUTHORIZED"}'
                else:
                    status, headers, body = api.route(parts.path, query, self.headers)
                    if fault == "truncated_json":
                        body = body[: len(body) // 2]
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler

    def __enter__(self) -> "Api":
        self.server, self.url = local_http.start(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        local_http.stop(self.server)


def montreal_records() -> list[dict[str, Any]]:
    path = next(require_shared("events/montreal").glob("*.json"))
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else data["result"]["records"]


def ckan_route(records: list[dict[str, Any]], cap: int | None = None):
    def route(path: str, query: dict[str, str], headers: Any) -> tuple[int, dict[str, str], bytes]:
        if path != "/api/3/action/datastore_search" or query.get("resource_id") != "events-resource":
            return 404, {}, b'{"success": false, "error": {"message": "Not found"}}'
        ordered = sorted(records, key=lambda r: r["url_fiche"])
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        limit = min(limit, cap) if cap else limit
        result = {"records": ordered[offset : offset + limit], "total": len(ordered), "offset": offset, "limit": limit}
        return 200, {}, json.dumps({"success": True, "result": result}, ensure_ascii=False).encode()

    return route


def eventbrite_events(count: int, start: dt.datetime) -> list[dict[str, Any]]:
    """``count`` events shaped like the real organization events, one per day from ``start`` (UTC)."""
    base_path = require_shared("events/eventbrite") / "datakind_fona__organization_events.json"
    base = json.loads(base_path.read_text(encoding="utf-8"))["events"][0]
    out = []
    for i in range(count):
        event = copy.deepcopy(base)
        begin = start + dt.timedelta(days=i)
        end = begin + dt.timedelta(hours=2)
        event["id"] = str(900000 + i)
        event["name"] = {"text": f"Data meetup {i}", "html": f"Data meetup {i}"}
        for name, moment in (("start", begin), ("end", end)):
            event[name] = {
                "timezone": "America/Toronto",
                "utc": f"{moment:%Y-%m-%dT%H:%M:%SZ}",
                "local": f"{moment.astimezone(TORONTO):%Y-%m-%dT%H:%M:%S}",
            }
        event["status"] = "live"
        out.append(event)
    return out


def eventbrite_route(state: dict[str, Any]):
    def route(path: str, query: dict[str, str], headers: Any) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {}, b'{"error": "INVALID_AUTH", "status_code": 401}'
        if path != "/v3/organizations/42/events/":
            return 404, {}, b'{"error": "NOT_FOUND", "status_code": 404}'
        events = state["events"]
        page = int(query.get("continuation") or 0)
        size = 3
        chunk = events[page * size : (page + 1) * size]
        more = (page + 1) * size < len(events)
        pagination = {"object_count": len(events), "page_size": size, "has_more_items": more}
        if more:
            pagination["continuation"] = str(page + 1)
        return 200, {}, json.dumps({"pagination": pagination, "events": chunk}).encode()

    return route


# -- running -----------------------------------------------------------------------------------------------
def resources(
    url: str,
    data: Path,
    *,
    ckan: str = "http://127.0.0.1:9",
    eb: str = "http://127.0.0.1:9/v3",
    feeds: list[dict[str, str]] | None = None,
    grace: float = 48.0,
    orgs: list[str] | None = None,
) -> dict:
    fast = {"backoff_base_s": 0.01, "max_attempts": 4, "read_timeout_s": 5.0}
    return {
        "eventbrite_api": EventbriteApi(
            api_url=eb, token=TOKEN, organization_ids=orgs or [], grace_hours=grace, **fast
        ),
        "montreal_open_data": MontrealOpenData(ckan_url=ckan, resource_id="events-resource", page_size=120, **fast),
        "ics_feeds": IcsFeeds(feeds_json=json.dumps(feeds or []), **fast),
        "warehouse": WarehouseResource(database_url=url),
        "raw_store": RawStoreResource(data_dir=str(data)),
    }


def run(assets: list, res: dict, rng: tuple[str, str] = RANGE, run_config: dict | None = None, instance=None):
    return dg.materialize(
        assets,
        resources=res,
        tags={"dagster/asset_partition_range_start": rng[0], "dagster/asset_partition_range_end": rng[1]},
        run_config=run_config or {},
        raise_on_error=False,
        instance=instance or dg.DagsterInstance.ephemeral(),
    )


def meta(result, asset) -> dict[str, Any]:
    """The run's totals over its partitions (each partition reports its own day)."""
    return run_metadata(result, asset)


def checks_of(result) -> dict[tuple[str, str], bool]:
    return checks_passed(result)


def dump(wh: Warehouse) -> list[tuple]:
    cols = [c for c in tables.event.columns if c.name not in LINEAGE_COLUMNS]
    return sorted(tuple(json.dumps(r[c.name], default=str, sort_keys=True) for c in cols)
                  for r in wh.fetch(sa.select(*cols)))  # fmt: skip


def expected_montreal(records: list[dict[str, Any]], first: str, last: str) -> set[str]:
    """Independent of the parser: the url_fiche ids of the records whose date_debut is in [first, last]."""
    return {r["url_fiche"].rsplit("-", 1)[1] for r in records if first <= r["date_debut"][:10] <= last}


def break_montreal_record(monkeypatch: pytest.MonkeyPatch, victim: str) -> Callable[..., Any]:
    """Make the Montréal parser fail on the record whose url_fiche id is ``victim`` (a simulated parser
    bug); returns the real row parser, to put back as "the fix"."""
    real = parse._montreal_row

    def broken(record, zone, notes):
        if record.get("url_fiche", "").endswith(f"-{victim}"):
            raise notes.fail("date_debut", "simulated parser bug")
        return real(record, zone, notes)

    monkeypatch.setattr(parse, "_montreal_row", broken)
    return real


# -- tests -------------------------------------------------------------------------------------------------
def test_montreal_range_in_one_run_is_idempotent_and_survives_faults(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    records = montreal_records()
    expected = expected_montreal(records, *RANGE)
    assert len(expected) > 20
    with Api(ckan_route(records)) as ckan:
        ckan.faults = {"offset=120": ["500", "429", "truncated_json"]}
        first = run([montreal], resources(warehouse_url, tmp_path / "d", ckan=ckan.url))
        assert first.success
        pages = [r for r in ckan.requests if "datastore_search" in r]
        assert len({r for r in pages}) == -(-len(records) // 120)  # every page once (retries aside)
        e = tables.event
        got = {r["source_id"] for r in warehouse.fetch(sa.select(e.c.source_id).where(e.c.source == "montreal"))}
        assert got == expected
        before = dump(warehouse)
        second = run([montreal], resources(warehouse_url, tmp_path / "d", ckan=ckan.url))
    assert second.success and dump(warehouse) == before
    m = meta(second, montreal)
    assert (m["created"], m["updated"], m["deleted"], m["unchanged"]) == (0, 0, 0, len(expected))
    # One fetch for the whole range (pages asked once, above), loaded and ledgered per day.
    days = [(dt.date(2026, 6, 1) + dt.timedelta(days=i)).isoformat() for i in range(92)]
    assert days[-1] == RANGE[1]
    assert meta(first, montreal)["partitions"] == 92
    assert all(checks_of(first).values()), checks_of(first)
    jobs = Ledger(warehouse).jobs(asset_key="events/montreal")
    assert [j["partition_key"] for j in jobs] == days * 2
    assert {j["status"] for j in jobs} == {"completed"}
    assert {tuple(j["metadata"]["fetch_window"]) for j in jobs} == {(*RANGE, "2026-06-01_2026-08-31")}
    per_day = Counter(e["start_date"][:10] for e in [{"start_date": r["date_debut"]} for r in records]
                      if RANGE[0] <= e["start_date"][:10] <= RANGE[1])  # fmt: skip
    first_jobs = {j["partition_key"]: j for j in jobs[:92]}
    assert {d: first_jobs[d]["created"] for d in days if first_jobs[d]["created"]} == dict(per_day)
    assert sum(j["created"] for j in jobs[:92]) == len(expected)


def test_montreal_portal_capping_the_page_size_still_gives_every_record(tmp_path: Path) -> None:
    records = montreal_records()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with Api(ckan_route(records, cap=50)) as ckan:  # the client asks for 120 per page
        assert run([montreal], resources(url, tmp_path / "d", ckan=ckan.url)).success
    wh = Warehouse(url)
    e = tables.event
    got = {r["source_id"] for r in wh.fetch(sa.select(e.c.source_id))}
    assert got == expected_montreal(records, *RANGE)
    wh.engine.dispose()


def test_montreal_record_gone_from_the_portal_is_deleted_only_after_a_complete_fetch(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    records = montreal_records()
    with Api(ckan_route(records)) as ckan:
        assert run([montreal], resources(warehouse_url, tmp_path / "d", ckan=ckan.url)).success
    gone = sorted(expected_montreal(records, *RANGE))[0]
    fewer = [r for r in records if not r["url_fiche"].endswith(f"-{gone}")]
    e = tables.event
    ids = sa.select(e.c.source_id).where(e.c.source == "montreal")
    with Api(ckan_route(fewer)) as ckan:
        ckan.faults = {"offset=240": ["500"] * 10}  # a page fails for good: nothing is deleted
        incomplete = run([montreal], resources(warehouse_url, tmp_path / "d", ckan=ckan.url))
        assert gone in {r["source_id"] for r in warehouse.fetch(ids)}
        assert "fetch incomplete" in json.dumps(meta(incomplete, montreal).get("pending"))
        ckan.faults = {}
        complete = run([montreal], resources(warehouse_url, tmp_path / "d", ckan=ckan.url))
    assert gone not in {r["source_id"] for r in warehouse.fetch(ids)}
    assert meta(complete, montreal)["deleted"] == 1


def test_bad_montreal_record_is_dead_lettered_alone_then_replayed(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = montreal_records()
    victim = sorted(expected_montreal(records, *RANGE))[1]
    real = break_montreal_record(monkeypatch, victim)
    data = tmp_path / "d"
    with Api(ckan_route(records)) as ckan:
        result = run([montreal], resources(warehouse_url, data, ckan=ckan.url))
    assert result.success
    letters = RawStore(data).dead_letters("montreal")
    assert len(letters) == 1
    assert "date_debut" in letters[0].error and "simulated parser bug" in letters[0].error
    assert victim in (letters[0].payload() or b"").decode()
    assert checks_of(result)[("events/montreal", "no_dead_letters")] is False
    # The record is filed under its own day: that day's job says so, the other days are clean.
    victim_day = next(r["date_debut"][:10] for r in records if r["url_fiche"].endswith(f"-{victim}"))
    assert letters[0].partition == victim_day
    statuses = {j["partition_key"]: j["status"] for j in Ledger(warehouse).jobs(asset_key="events/montreal")}
    assert statuses.pop(victim_day) == "completed_with_errors"
    assert set(statuses.values()) == {"completed"}
    e = tables.event
    ids = {r["source_id"] for r in warehouse.fetch(sa.select(e.c.source_id).where(e.c.source == "montreal"))}
    assert victim not in ids and len(ids) == len(expected_montreal(records, *RANGE)) - 1

    monkeypatch.setattr(parse, "_montreal_row", real)
    replay = run(
        [montreal],
        resources(warehouse_url, data),  # unreachable portal: the replay reads the raw store only
        run_config={"ops": {"events__montreal": {"config": {"reprocess_from_raw": True}}}},
    )
    assert replay.success
    assert RawStore(data).dead_letters("montreal") == []
    ids = {r["source_id"] for r in warehouse.fetch(sa.select(e.c.source_id).where(e.c.source == "montreal"))}
    assert victim in ids
    assert checks_of(replay)[("events/montreal", "no_dead_letters")] is True


def test_eventbrite_paging_token_and_absence_grace(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0)
    start = now + dt.timedelta(days=2, hours=15)
    state = {"events": eventbrite_events(7, start)}
    days = (start.astimezone(TORONTO).date(), (start + dt.timedelta(days=8)).astimezone(TORONTO).date())
    rng = (days[0].isoformat(), days[1].isoformat())
    e, a = tables.event, tables.event_absence
    with Api(eventbrite_route(state)) as api:
        api.faults = {"continuation=1": ["429", "500"]}
        res = resources(warehouse_url, tmp_path / "d", eb=f"{api.url}/v3", orgs=["42"])
        first = run([eventbrite], res, rng)
        assert first.success
        assert sum("continuation=2" in r for r in api.requests) == 1  # 3 pages of 3, 3, 1 events
        rows = warehouse.fetch(sa.select(e).where(e.c.source == "eventbrite"))
        assert len(rows) == 7 and {r["status"] for r in rows} == {"scheduled"}
        assert all("secret-token" not in str(v) for r in rows for v in r.values())
        stored = [gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
                  for p in (tmp_path / "d").rglob("*") if p.is_file()]  # fmt: skip
        assert stored and not any(TOKEN.encode() in b for b in stored)  # not in raw files nor their meta
        assert TOKEN not in json.dumps(meta(first, eventbrite), default=str)

        vanished = state["events"].pop(3)["id"]
        second = run([eventbrite], res, rng)
        assert second.success
        absent = warehouse.fetch(sa.select(a))
        assert [r["source_id"] for r in absent] == [vanished] and absent[0]["marked_cancelled_at"] is None
        kept = warehouse.fetch(sa.select(e.c.status).where(e.c.source_id == vanished))
        assert kept == [{"status": "scheduled"}]  # within the grace period: kept as it was

        cancel = run(
            [eventbrite], resources(warehouse_url, tmp_path / "d", eb=f"{api.url}/v3", orgs=["42"], grace=0), rng
        )
        assert cancel.success
        assert warehouse.fetch(sa.select(e.c.status).where(e.c.source_id == vanished)) == [{"status": "cancelled"}]
        assert warehouse.count(e, e.c.source == "eventbrite") == 7  # never deleted

        state["events"].insert(3, eventbrite_events(7, start)[3])
        back = run([eventbrite], res, rng)
        assert back.success
        assert warehouse.count(a, a.c.source_id == vanished) == 0
        assert warehouse.fetch(sa.select(e.c.status).where(e.c.source_id == vanished)) == [{"status": "scheduled"}]


def source_loaded_failures(result, asset) -> list[dict[str, Any]]:
    """The failing days of the blocking ``source_loaded`` check of ``asset`` (metadata sample)."""
    failed = [e for e in result.get_asset_check_evaluations()
              if e.asset_key == asset.key and e.check_name == "source_loaded" and not e.passed]  # fmt: skip
    return [row for e in failed for row in e.metadata["sample"].value]


@pytest.mark.parametrize("status", [401, 403])
def test_eventbrite_refused_organization_fails_the_run_and_is_dead_lettered(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, status: int
) -> None:
    """The API answered but refused (a wrong token: 401; an organization we may not read: 403): nothing
    could be loaded, so the blocking check fails the run instead of a green run with a note."""
    state = {"events": eventbrite_events(2, dt.datetime(2026, 7, 1, 18, tzinfo=dt.UTC))}
    with Api(eventbrite_route(state)) as api:
        if status == 403:
            api.faults = {"organizations/42": ["403"] * 10}
        res = resources(warehouse_url, tmp_path / "d", eb=f"{api.url}/v3", orgs=["42"])
        token = "wrong" if status == 401 else TOKEN
        res["eventbrite_api"] = EventbriteApi(api_url=f"{api.url}/v3", token=token, organization_ids=["42"])
        result = run([eventbrite], res)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "blocking asset check" in failure.step_failure_data.error.message
    failing = source_loaded_failures(result, eventbrite)
    assert len(failing) == 92  # every day of the window: the organization's events are all missing
    assert all("org_42_page_1" in row["reason"] for row in failing)
    letters = RawStore(tmp_path / "d").dead_letters("eventbrite")
    assert len(letters) == 1 and str(status) in letters[0].error and "wrong" not in letters[0].error
    # The days' metadata says so too.
    days = per_partition(result, eventbrite)
    assert {m["status"] for m in days.values()} == {"failed: org_42_page_1: organization 42: request failed for good"}


def _ics(uid: str, summary: str, day: str, location: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;TZID=America/Toronto:{day}T190000\r\n"
        f"DTEND;TZID=America/Toronto:{day}T210000\r\nSUMMARY:{summary}\r\nLOCATION:{location}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_ics_feeds_bad_ones_dead_lettered_and_cross_source_duplicates(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    shared = require_shared("events/ics")
    records = montreal_records()
    twin = next(r for r in records if RANGE[0] <= r["date_debut"][:10] <= RANGE[1] and r["emplacement"])
    day = twin["date_debut"][:10].replace("-", "")
    venue = twin.get("emplacement") if twin.get("adresse_principale") in (None, "nan") else twin["adresse_principale"]
    title = twin["titre"].upper()  # same title modulo case
    (tmp_path / "city.ics").write_text(_ics("dup-1@test", title, day, f"{venue}, {twin['arrondissement']}"))
    (tmp_path / "broken.ics").write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY: no end\r\n")
    shutil.copy(shared / "rie__Germany_Holidays.ics", tmp_path / "holidays.ics")
    feeds = [
        {"name": "city", "url": str(tmp_path / "city.ics")},
        {"name": "broken", "url": f"file://{tmp_path / 'broken.ics'}"},
        {"name": "holidays", "url": str(tmp_path / "holidays.ics")},
        {"name": "down", "url": "http://127.0.0.1:9/feed.ics"},
    ]
    web_body = _ics("web-1@test", "Lecture publique", "20260710", "Bibliothèque").encode()
    with (
        Api(ckan_route(records)) as ckan,
        Api(
            lambda path, query, headers: (
                (200, {"Content-Type": "text/calendar"}, web_body) if path == "/cal.ics" else (404, {}, b"not found")
            )
        ) as web,  # fmt: skip
    ):
        web.faults = {"/cal.ics": ["500"]}
        feeds.append({"name": "web", "url": f"{web.url}/cal.ics?key=abc"})
        feeds.append({"name": "gone", "url": f"{web.url}/gone.ics"})  # configured, but the server says 404
        res = resources(warehouse_url, tmp_path / "d", ckan=ckan.url, feeds=feeds)
        result = run([montreal, ics_feeds], res)
    # Configured feeds that cannot be read fail the blocking check (and the run); the others load.
    assert not result.success
    reasons = {row["reason"] for row in source_loaded_failures(result, ics_feeds)}
    assert any("feed_broken" in r for r in reasons) or any("feed_down" in r for r in reasons), reasons
    failures = per_partition(result, ics_feeds)["2026-07-10"]["failures"]
    assert {f["request"] for f in failures} == {"feed_broken", "feed_down", "feed_gone"}, failures
    assert next(f for f in failures if f["request"] == "feed_gone")["error"] == "feed gone: not found (404)"
    assert checks_of(result)[("events/montreal", "source_loaded")] is True
    dedupe = run([duplicates], res)
    assert dedupe.success
    e = tables.event
    per_source = Counter(r["source"] for r in warehouse.fetch(sa.select(e.c.source)))
    assert per_source["ics:city"] == 1 and per_source["montreal"] > 20 and per_source["ics:web"] == 1
    letters = {x.request: x.error for x in RawStore(tmp_path / "d").dead_letters("ics")}
    assert any(r.startswith("feed_broken") for r in letters), letters
    assert any(r.startswith("feed_down") for r in letters), letters
    assert checks_of(result)[("events/ics", "no_dead_letters")] is False

    pairs = warehouse.fetch(sa.select(tables.event_duplicate))
    assert len(pairs) == 1
    pair = pairs[0]
    assert {pair["source_a"], pair["source_b"]} == {"ics:city", "montreal"} and pair["title_score"] >= 88
    clusters = warehouse.fetch(sa.select(tables.event_cluster).where(tables.event_cluster.c.cluster_size > 1))
    assert len(clusters) == 2 and len({c["cluster_id"] for c in clusters}) == 1
    assert checks_of(dedupe)[("events/duplicates", "cross_source_duplicates")] is False  # warning lists the pair


def test_import_stats_matches_the_ledger(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    records = montreal_records()
    with Api(ckan_route(records)) as ckan:
        res = resources(warehouse_url, tmp_path / "d", ckan=ckan.url)
        assert run([montreal], res).success
        result = dg.materialize([import_stats], resources=res, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    stats = {r["source"]: r for r in warehouse.fetch(sa.select(import_stats_table))}
    jobs = Ledger(warehouse).jobs(asset_key="events/montreal")
    job = jobs[-1]
    assert stats["montreal"]["events"] == len(expected_montreal(records, *RANGE))
    # The last run's figures are summed over its per-day jobs.
    assert stats["montreal"]["last_job_id"] == job["id"]
    assert stats["montreal"]["last_created"] == sum(j["created"] for j in jobs if j["run_id"] == job["run_id"])
    assert stats["montreal"]["last_created"] == len(expected_montreal(records, *RANGE))
    assert stats["montreal"]["last_job_partition"] == f"{RANGE[0]}...{RANGE[1]}"
    assert stats["montreal"]["recent_runs"][0]["days"] == 92
    assert stats["montreal"]["last_job_status"] == "completed"
    assert meta(result, import_stats)["events/montreal"] == stats["montreal"]["events"]


def test_refresh_schedule_asks_for_one_ranged_run() -> None:
    when = dt.datetime(2026, 3, 8, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    request = events_refresh_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-07"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-04-06"
    assert request.partition_key is None


def test_stats_sensor_reacts_only_to_events_runs(tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        res = resources(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "d")
        events_run = run([ics_feeds], res, instance=instance)  # no feeds: an empty but successful events run
        other = dg.materialize([import_stats], resources=res, instance=instance)
        for result, expected in ((events_run, dg.RunRequest), (other, dg.SkipReason)):
            dagster_run = result.dagster_run
            context = dg.build_run_status_sensor_context(
                sensor_name="events_stats_after_refresh",
                dagster_instance=instance,
                dagster_run=dagster_run,
                dagster_event=result.get_run_success_event(),
            )
            assert isinstance(events_stats_after_refresh(context), expected)


def test_cli_partition_range_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    records = montreal_records()
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    (tmp_path / "feed.ics").write_text(_ics("cli-1@test", "Concert au parc", "20260615", "Parc La Fontaine"))
    with Api(ckan_route(records)) as ckan, Api(eventbrite_route({"events": eventbrite_events(
            4, dt.datetime(2026, 6, 10, 22, tzinfo=dt.UTC))})) as eb:  # fmt: skip
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "INGESTION_DATABASE_URL": pg_url,
            "INGESTION_DATA_DIR": str(tmp_path / "data"),
            "ICS_FEEDS": json.dumps([{"name": "parks", "url": str(tmp_path / "feed.ics")}]),
            "EVENTBRITE_API_URL": f"{eb.url}/v3",
            "EVENTBRITE_TOKEN": TOKEN,
            "EVENTBRITE_ORGANIZATION_IDS": "42",
            "MONTREAL_CKAN_URL": ckan.url,
            "MONTREAL_RESOURCE_ID": "events-resource",
        }
        done = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
             "-m", "ingestion_platform.definitions", "--select", "group:events",
             "--partition-range", "2026-06-01...2026-06-30",
             "--config-json", '{"execution": {"config": {"in_process": {}}}}'],
            env=cli_env(env), capture_output=True, text=True, timeout=300, cwd=home,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    wh = Warehouse(pg_url)
    try:
        got = Counter(r["source"] for r in wh.fetch(sa.select(tables.event.c.source)))
        assert got["eventbrite"] == 4 and got["ics:parks"] == 1
        assert got["montreal"] == len(expected_montreal(records, "2026-06-01", "2026-06-30"))
        jobs = Ledger(wh).jobs()
        june = {f"2026-06-{d:02d}" for d in range(1, 31)}
        assert {j["partition_key"] for j in jobs} == june  # one fetch per source, a job per source and day
        assert Counter(j["source"] for j in jobs) == {"eventbrite": 30, "montreal": 30, "ics": 30}
        assert {j["metadata"]["fetch_window"][2] for j in jobs} == {"2026-06-01_2026-06-30"}
    finally:
        wh.engine.dispose()


def test_feed_names_with_spaces_and_punctuation(tmp_path: Path) -> None:
    (tmp_path / "a.ics").write_text(_ics("sp-1@test", "Vente de livres", "20260705", "Bibliothèque centrale"))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    feeds = [{"name": "Ville / Bibliothèques: été", "url": str(tmp_path / "a.ics")}]
    result = run([ics_feeds], resources(url, tmp_path / "d", feeds=feeds))
    assert result.success
    assert all(checks_of(result).values()), checks_of(result)
    wh = Warehouse(url)
    assert [r["source"] for r in wh.fetch(sa.select(tables.event.c.source))] == ["ics:Ville / Bibliothèques: été"]
    wh.engine.dispose()


def test_a_range_letter_is_resolved_by_a_replay_of_its_day_alone(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record dead-lettered by a ranged run is filed under its day; a one-day replay inside the
    range reads the range's stored fetch and resolves it (no call to the portal)."""
    records = montreal_records()
    victim = sorted(expected_montreal(records, *RANGE))[2]
    victim_day = next(r["date_debut"][:10] for r in records if r["url_fiche"].endswith(f"-{victim}"))
    real = break_montreal_record(monkeypatch, victim)
    data = tmp_path / "d"
    with Api(ckan_route(records)) as ckan:
        assert run([montreal], resources(warehouse_url, data, ckan=ckan.url)).success
    [letter] = RawStore(data).dead_letters("montreal")
    assert letter.partition == victim_day

    monkeypatch.setattr(parse, "_montreal_row", real)
    replay = run(
        [montreal],
        resources(warehouse_url, data),  # unreachable portal
        rng=(victim_day, victim_day),
        run_config={"ops": {"events__montreal": {"config": {"reprocess_from_raw": True}}}},
    )
    assert replay.success
    assert RawStore(data).dead_letters("montreal") == []
    m = meta(replay, montreal)
    assert m["partitions"] == 1 and m["created"] == 1  # only the victim's day, and the victim is new
    [job] = [j for j in Ledger(warehouse).jobs(asset_key="events/montreal") if j["run_id"] == replay.run_id]
    assert (job["partition_key"], job["provider"], job["status"]) == (victim_day, "raw store replay", "completed")
    assert job["metadata"]["fetch_window"][2] == f"{RANGE[0]}_{RANGE[1]}"  # the range's fetch served it


def test_credentials_in_a_configured_url_reach_no_ledger_log_metadata_or_raw_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = montreal_records()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with Api(ckan_route(records)) as ckan:
        secret_url = ckan.url.replace("http://", "http://portal-user:s3cr3t-pw@")
        result = run([montreal], resources(url, tmp_path / "d", ckan=secret_url))
    assert result.success
    wh = Warehouse(url)
    try:
        jobs = Ledger(wh).jobs()
        assert jobs and all("s3cr3t" not in json.dumps(j, default=str) for j in jobs)
        assert {j["provider"] for j in jobs} == {f"ckan {ckan.url.removeprefix('http://')}"}
    finally:
        wh.engine.dispose()
    stored = [gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
              for p in (tmp_path / "d").rglob("*") if p.is_file()]  # fmt: skip
    assert stored and not any(b"s3cr3t" in body for body in stored)
    assert "s3cr3t" not in json.dumps(meta(result, montreal), default=str)
    assert "s3cr3t" not in caplog.text
    assert not any("s3cr3t" in str(e.message or "") for e in result.all_events)
