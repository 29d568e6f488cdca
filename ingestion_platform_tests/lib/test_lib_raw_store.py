"""The raw store: payloads and their metadata, atomic writes, dead letters and their resolution."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from ingestion_platform.lib import raw_store as raw_store_module
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource, safe_name

BODY = b'{"programme": {"reunions": [1, 2, 3]}, "accent": "\xc3\xa9"}'


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_write_read_exists(raw_store: RawStore) -> None:
    assert not raw_store.exists("pmu", "2025-03-14", "R1/C1/participants")
    path = raw_store.write("pmu", "2025-03-14", "R1/C1/participants", BODY, {"url": "https://api/x", "status": 200})
    name = safe_name("R1/C1/participants")
    assert name.startswith("R1_C1_participants-") and len(name) == len("R1_C1_participants-") + 8
    assert path == raw_store.root / "raw" / "pmu" / "2025-03-14" / f"{name}.json.gz"
    assert gzip.decompress(path.read_bytes()) == BODY
    assert raw_store.exists("pmu", "2025-03-14", "R1/C1/participants")
    assert not raw_store.exists("pmu", "2025-03-15", "R1/C1/participants")

    payload = raw_store.read("pmu", "2025-03-14", "R1/C1/participants")
    assert payload.body == BODY
    assert (payload.source, payload.partition, payload.request) == ("pmu", "2025-03-14", "R1/C1/participants")
    meta = payload.meta
    assert meta["url"] == "https://api/x" and meta["status"] == 200
    assert meta["size"] == len(BODY)
    assert meta["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert meta["request"] == "R1/C1/participants"
    assert "stored_at" in meta
    on_disk = json.loads((path.parent / f"{name}.meta.json").read_text())
    assert on_disk == meta


def test_refetch_replaces_previous_copy(raw_store: RawStore) -> None:
    raw_store.write("pmu", "2025-03-14", "programme", b"old")
    raw_store.write("pmu", "2025-03-14", "programme", b"new", {"attempts": 2})
    payload = raw_store.read("pmu", "2025-03-14", "programme")
    assert (payload.body, payload.meta["attempts"], payload.meta["size"]) == (b"new", 2, 3)
    assert files_under(raw_store.root) == [
        "raw/pmu/2025-03-14/programme.json.gz",
        "raw/pmu/2025-03-14/programme.meta.json",
    ]


def test_read_missing_raises(raw_store: RawStore) -> None:
    with pytest.raises(FileNotFoundError):
        raw_store.read("pmu", "2025-03-14", "nothing")


def test_requests_lists_original_names_per_partition(raw_store: RawStore) -> None:
    assert raw_store.requests("pmu", "2025-03-14") == []
    for name in ["R2/C1/participants", "programme", "R1/C1/participants"]:
        raw_store.write("pmu", "2025-03-14", name, b"{}")
    raw_store.write("pmu", "2025-03-15", "programme", b"{}")
    raw_store.write("other", "2025-03-14", "elsewhere", b"{}")
    assert raw_store.requests("pmu", "2025-03-14") == ["R1/C1/participants", "R2/C1/participants", "programme"]
    assert raw_store.requests("pmu", "2025-03-15") == ["programme"]
    assert raw_store.requests("other", "2025-03-14") == ["elsewhere"]


def test_atomic_write_leaves_no_partial_file(raw_store: RawStore, monkeypatch: pytest.MonkeyPatch) -> None:
    raw_store.write("pmu", "2025-03-14", "programme", b"good version")
    directory = raw_store.root / "raw" / "pmu" / "2025-03-14"
    before = files_under(directory)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(raw_store_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        raw_store.write("pmu", "2025-03-14", "programme", b"half written version")
    with pytest.raises(OSError, match="disk full"):
        raw_store.write("pmu", "2025-03-14", "never stored", b"x")
    monkeypatch.undo()

    # No temporary file left behind, and the previous copy is intact.
    assert files_under(directory) == before
    assert raw_store.read("pmu", "2025-03-14", "programme").body == b"good version"
    assert not raw_store.exists("pmu", "2025-03-14", "never stored")


@pytest.mark.parametrize("request_name", ["../../../escape", "/etc/passwd", "..\\..\\win", "a/../../b"])
def test_unsafe_request_names_stay_inside_the_store(raw_store: RawStore, request_name: str) -> None:
    path = raw_store.write("../pmu", "../2025-03-14", request_name, b"x")
    raw_dir = (raw_store.root / "raw").resolve()
    assert raw_dir in path.resolve().parents
    assert raw_store.read("../pmu", "../2025-03-14", request_name).body == b"x"
    assert all(p.resolve().is_relative_to(raw_store.root.resolve()) for p in raw_store.root.parent.rglob("*"))
    dead = raw_store.dead_letter("pmu", "2025-03-14", request_name, "bad")
    assert (raw_store.root / "dead_letter").resolve() in dead.resolve().parents


@pytest.mark.parametrize("request_name", ["", "..", "///", "._."])
def test_empty_request_names_rejected(raw_store: RawStore, request_name: str) -> None:
    with pytest.raises(ValueError, match="empty request name"):
        raw_store.write("pmu", "2025-03-14", request_name, b"x")


def test_safe_name() -> None:
    assert safe_name("R1C2_participants") == "R1C2_participants"  # already safe: unchanged
    assert safe_name("2025-03-01_2025-03-31") == "2025-03-01_2025-03-31"
    assert safe_name("R1/C2/participants").startswith("R1_C2_participants-")
    assert safe_name("a b?c=1&d").startswith("a_b_c=1_d-")
    assert safe_name("../x").startswith("x-")


def test_sanitised_names_never_collide(raw_store: RawStore) -> None:
    names = ["feed_a b", "feed_a;b", "feed_a_b", "feed_a/b", "feed_a\\b"]
    assert len({safe_name(n) for n in names}) == len(names)
    for i, name in enumerate(names):
        raw_store.write("ics", "2026-06-01", name, f"body {i}".encode())
    assert [raw_store.read("ics", "2026-06-01", n).body for n in names] == [f"body {i}".encode() for i in range(5)]
    assert sorted(raw_store.requests("ics", "2026-06-01")) == sorted(names)


def test_covering_finds_the_latest_fetch_of_each_day(raw_store: RawStore) -> None:
    import datetime as dt
    import os

    day = dt.date.fromisoformat
    raw_store.write("ev", "2026-06-01_2026-06-30", "page_1", b"range")
    raw_store.write("ev", "2026-06-15", "page_1", b"daily")
    old = raw_store.root / "raw" / "ev" / "2026-06-01_2026-06-30" / "page_1.meta.json"
    os.utime(old, ns=(1, 1))  # the range was fetched before the daily run
    days = [day("2026-06-14"), day("2026-06-15"), day("2026-07-01")]
    assert raw_store.covering("ev", days) == {
        "2026-06-01_2026-06-30": [day("2026-06-14")],
        "2026-06-15": [day("2026-06-15")],
    }
    assert raw_store.labels("ev") == ["2026-06-01_2026-06-30", "2026-06-15"]


def test_dead_letter_with_exception_payload_and_context(raw_store: RawStore) -> None:
    try:
        raise ValueError("weight is not a number")
    except ValueError as exc:
        error = exc
    path = raw_store.dead_letter(
        "pmu", "2025-03-14", "R1/C1/participants", error, payload=BODY, context={"asset_key": "pmu/participants"}
    )
    assert path == raw_store.root / "dead_letter" / "pmu" / "2025-03-14" / f"{safe_name('R1/C1/participants')}.json.gz"
    [letter] = raw_store.dead_letters()
    assert (letter.source, letter.partition, letter.request) == ("pmu", "2025-03-14", "R1/C1/participants")
    assert letter.error == "ValueError: weight is not a number"
    assert letter.context == {"asset_key": "pmu/participants"}
    assert letter.payload() == BODY
    assert letter.path == path
    record = json.loads(gzip.decompress(path.read_bytes()))
    assert "Traceback" in record["traceback"] and "weight is not a number" in record["traceback"]


def test_dead_letter_with_text_error_binary_payload_or_none(raw_store: RawStore) -> None:
    binary = b"\xff\xfe not utf-8 \x80"
    raw_store.dead_letter("pmu", "2025-03-14", "binary", "could not decode", payload=binary)
    raw_store.dead_letter("pmu", "2025-03-14", "empty", "no payload at all")
    letters = {x.request: x for x in raw_store.dead_letters("pmu", "2025-03-14")}
    assert letters["binary"].error == "could not decode"
    assert letters["binary"].payload() == binary
    assert letters["empty"].payload() is None
    assert letters["empty"].context == {}


def test_dead_letters_listing_and_resolve(raw_store: RawStore) -> None:
    assert raw_store.dead_letters() == []
    raw_store.dead_letter("pmu", "2025-03-14", "a", "e1")
    raw_store.dead_letter("pmu", "2025-03-14", "b", "e2")
    raw_store.dead_letter("pmu", "2025-03-15", "a", "e3")
    raw_store.dead_letter("events", "2025-03-14", "feed", "e4")

    def listed(**kwargs: str) -> list[tuple[str, str, str]]:
        return [(x.source, x.partition, x.request) for x in raw_store.dead_letters(**kwargs)]

    assert len(listed()) == 4
    assert listed(source="pmu") == [("pmu", "2025-03-14", "a"), ("pmu", "2025-03-14", "b"), ("pmu", "2025-03-15", "a")]
    assert listed(source="pmu", partition="2025-03-14") == [("pmu", "2025-03-14", "a"), ("pmu", "2025-03-14", "b")]
    assert listed(partition="2025-03-14") == [("events", "2025-03-14", "feed"), *listed(source="pmu")[:2]]

    assert raw_store.resolve("pmu", "2025-03-14", "a") is True
    assert raw_store.resolve("pmu", "2025-03-14", "a") is False
    assert raw_store.resolve("pmu", "2025-03-14", "never") is False
    assert listed(source="pmu", partition="2025-03-14") == [("pmu", "2025-03-14", "b")]
    # Kept for the audit trail, out of the unresolved listing.
    kept = raw_store.root / "dead_letter" / "pmu" / "2025-03-14" / "_resolved" / "a.json.gz"
    assert json.loads(gzip.decompress(kept.read_bytes()))["error"] == "e1"
    assert len(listed()) == 3

    # A new failure of the same request after a resolve is a fresh dead letter.
    raw_store.dead_letter("pmu", "2025-03-14", "a", "again")
    assert [x.error for x in raw_store.dead_letters("pmu", "2025-03-14")] == ["again", "e2"]


def test_resource_and_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert RawStoreResource(data_dir=str(tmp_path / "d")).get().root == tmp_path / "d"
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path / "env"))
    assert RawStoreResource().get().root == (tmp_path / "env").resolve()
    assert RawStore().root == (tmp_path / "env").resolve()


def test_covering_tells_the_fetches_of_two_assets_apart(raw_store: RawStore) -> None:
    import datetime as dt

    raw_store.write("ev", "2026-06-01_2026-06-30", "page_1", b"a", asset_key="ev/a")
    raw_store.write("ev", "2026-06-10_2026-06-20", "page_1", b"b", asset_key="ev/b")
    day = dt.date(2026, 6, 15)
    assert raw_store.covering("ev", [day], "ev/a") == {"2026-06-01_2026-06-30": [day]}
    assert raw_store.covering("ev", [day], "ev/b") == {"2026-06-10_2026-06-20": [day]}
    assert raw_store.requests("ev", "2026-06-10_2026-06-20") == ["page_1"]  # markers are not payloads
